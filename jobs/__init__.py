"""The jobs' entry points: ``python -m dashboard emails|intake --once`` or ``--loop`` (the loops
live here: ``jobs.emails``, ``jobs.intake``); ``python -m dashboard funnel`` and ``upsells``
call the domain directly. One run of each is the domain's (``dashboard.domain``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core.db import explain_failure


def report_run(engine: Engine, run: Callable[[], str], interval: float, report: Callable[[str], None]) -> None:
    """One run of a loop, reported in one timestamped line: ``run``'s summary, or why the
    database failed (the loop goes on and tries again after ``interval`` seconds)."""
    try:
        line = run()
    except sa.exc.DBAPIError as exc:  # the database went away: say so, and try again next time
        url = engine.url.render_as_string(hide_password=False)
        line = f"run failed, retrying in {interval:g} s: {explain_failure(exc, url)}"
    report(f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC {line}")
