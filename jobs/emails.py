"""The email job as a service: ``python -m dashboard emails --loop [--interval 60]``.

Each run is ``dashboard.domain.emails.worker.run_once``; a database outage is reported in
one line and the next run tries again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine

from dashboard.domain.emails.settings import EmailSettings
from dashboard.domain.emails.worker import run_once
from jobs import report_run


def run_loop(
    engine: Engine, settings: EmailSettings, interval: float, stop: threading.Event, report: Callable[[str], None]
) -> None:
    """Run every ``interval`` seconds until ``stop`` is set; a failed run is reported and retried."""
    while not stop.is_set():
        report_run(engine, lambda: run_once(engine, settings).summary(), interval, report)
        stop.wait(interval)
