"""The email job as a service: ``python -m dashboard emails --loop [--interval 60]``.

Each run is ``dashboard.domain.emails.worker.run_once``; a database outage is reported in
one line and the next run tries again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core.db import explain_failure
from dashboard.domain.emails.settings import EmailSettings
from dashboard.domain.emails.worker import run_once, utc_now


def run_loop(
    engine: Engine, settings: EmailSettings, interval: float, stop: threading.Event, report: Callable[[str], None]
) -> None:
    """Run every ``interval`` seconds until ``stop`` is set; a failed run is reported and retried."""
    while not stop.is_set():
        try:
            report(f"{utc_now():%Y-%m-%d %H:%M:%S} UTC {run_once(engine, settings).summary()}")
        except sa.exc.DBAPIError as exc:  # the database went away: say so, and try again next time
            url = engine.url.render_as_string(hide_password=False)
            report(
                f"{utc_now():%Y-%m-%d %H:%M:%S} UTC run failed, retrying in {interval:g} s: {explain_failure(exc, url)}"
            )
        stop.wait(interval)
