"""The intake job as a service: ``python -m dashboard intake --loop [--interval 10]``.

On PostgreSQL the loop listens on channel ``pitwall_intake`` (a trigger of migration 19
notifies it when the platform inserts such a row) and runs within a moment of the insert;
it also runs every ``--interval`` seconds in case a notification is missed (e.g. while the
connection was down). On DuckDB it polls every ``--interval`` seconds. Each run is
``dashboard.domain.intake.run_once``; a database outage is reported in one line and the
next run tries again.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine

from dashboard.domain.followups import FollowUpRules
from dashboard.domain.intake import run_once
from dashboard.domain.overview import refresh as refresh_rollups
from jobs import report_run

CHANNEL = "pitwall_intake"  # the channel migration 19's trigger notifies


def run_loop(
    engine: Engine,
    interval: float,
    stop: threading.Event,
    report: Callable[[str], None],
    rules: FollowUpRules = FollowUpRules(),
) -> None:
    """Run now and again on each notification (PostgreSQL) or every ``interval`` seconds,
    until ``stop`` is set; a failed run is reported and retried."""
    listener = None
    while not stop.is_set():
        if engine.dialect.name == "postgresql" and listener is None:
            listener = _listen(engine, report)
        report_run(engine, lambda: _run(engine, rules), interval, report)
        if listener is None:
            stop.wait(interval)
        elif not _wait_for_notification(listener, interval, stop):
            listener.close()
            listener = None
    if listener is not None:
        listener.close()


def _run(engine: Engine, rules: FollowUpRules) -> str:
    """One run, then the overview's roll-ups folded in (the marked buckets, usually a few)."""
    summary = run_once(engine, rules).summary()
    return f"{summary}; {refresh_rollups(engine).summary()}"


def _listen(engine: Engine, report: Callable[[str], None]):
    """A psycopg connection listening on CHANNEL, or None (then the loop polls)."""
    import psycopg

    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        listener = psycopg.connect(url, autocommit=True, connect_timeout=5, options="-c timezone=UTC")
        listener.execute(f"LISTEN {CHANNEL}")
        return listener
    except psycopg.Error as exc:
        report(f"cannot listen for new rows, polling instead: {str(exc).splitlines()[0]}")
        return None


def _wait_for_notification(listener, interval: float, stop: threading.Event) -> bool:
    """Wait until a notification arrives, ``interval`` passes or ``stop`` is set, checking
    ``stop`` at least every half second; False if the listening connection broke."""
    import psycopg

    deadline = dt.datetime.now() + dt.timedelta(seconds=interval)
    try:
        while not stop.is_set() and dt.datetime.now() < deadline:
            if any(True for _ in listener.notifies(timeout=0.5, stop_after=1)):
                for _ in listener.notifies(timeout=0):  # drain what else arrived meanwhile
                    pass
                return True
        return True
    except psycopg.Error:
        return False
