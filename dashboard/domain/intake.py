"""The intake job: ``python -m dashboard intake --once`` or ``--loop [--interval 10]``.

The platform may write reviews and follow-up requests to its tables directly, past the
API. This job gives those rows Pitwall's rules, once each: reviews their flags, publish or
queue and the mechanics' aggregates (``dashboard.domain.reviews.apply_review_rules``), follow-ups
their price and state (``dashboard.domain.followups.apply_follow_up_rules``) - the same code the
API's writes run.

Which rows are new: ``rules_applied_at`` is NULL on rows whose rules have not run (Pitwall's
own writes set it), and a partial index holds exactly those rows, so a run reads only
what waits. Unlike a watermark on ``created_at``, this cannot skip a row whose transaction
commits after a later row was handled. ``intake_watermarks`` records how far each source
got (the last row handled, when it ran), for monitoring.

Each row is handled in a transaction of its own, so a bad row never holds up the others;
a row the rules cannot judge (an unknown session, text with NUL characters, ...) is
handled as the rule says (queued, cancelled) and audited with the reason. Two workers at
once handle each row once: on PostgreSQL a worker skips rows another has locked
(``FOR UPDATE SKIP LOCKED``); DuckDB has no row locks, so the loser of a race retries and
finds the row handled.

One run is ``run_once``; ``--loop`` is ``jobs.intake.run_loop``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core import schema as s
from dashboard.core.actors import INTAKE_JOB
from dashboard.core.db import retry_on_conflict
from dashboard.domain.followups import FollowUpRules, apply_follow_up_rules
from dashboard.domain.reviews import apply_review_rules

log = logging.getLogger(__name__)
BATCH = 200  # rows read per query of a run


@dataclass(frozen=True)
class Source:
    name: str  # the row of intake_watermarks
    table: sa.Table
    waiting: sa.ColumnElement[bool]
    apply: Callable


SOURCES = (
    Source(
        "reviews",
        s.mechanic_reviews,
        s.mechanic_reviews.c.rules_applied_at.is_(None),
        lambda conn, row_id, rules: apply_review_rules(conn, row_id, INTAKE_JOB),
    ),
    Source(
        "follow_ups",
        s.requests,
        sa.and_(s.requests.c.is_follow_up, s.requests.c.rules_applied_at.is_(None)),
        lambda conn, row_id, rules: apply_follow_up_rules(conn, row_id, INTAKE_JOB, rules),
    ),
)


@dataclass
class IntakeRun:
    outcomes: dict[str, Counter] = field(default_factory=lambda: {source.name: Counter() for source in SOURCES})

    def summary(self) -> str:
        parts = []
        for name, counts in self.outcomes.items():
            detail = ", ".join(f"{count:,} {outcome}" for outcome, count in sorted(counts.items()))
            parts.append(f"{name}: {detail or 'none waiting'}")
        return "intake " + "; ".join(parts)


def _handle(engine: Engine, source: Source, row_id, rules: FollowUpRules) -> str | None:
    """One row's rules in a transaction of its own; its outcome, None if another worker has it."""

    def write() -> str | None:
        with engine.begin() as conn:
            return source.apply(conn, row_id, rules)

    return retry_on_conflict(write)


def _advance(engine: Engine, source: Source, last) -> None:
    """Record the source's progress (the last row a run handled) once per run, in a transaction
    of its own, not in each row's transaction, where workers would queue on the source's one row."""
    w = s.intake_watermarks
    values = {"last_seen_at": last.created_at, "last_id": last.id, "updated_at": dt.datetime.now(dt.UTC)}

    def write() -> None:
        with engine.begin() as conn:
            if conn.execute(w.update().where(w.c.name == source.name).values(**values)).rowcount == 0:
                conn.execute(w.insert().values(name=source.name, **values))

    retry_on_conflict(write)


def run_once(engine: Engine, rules: FollowUpRules = FollowUpRules()) -> IntakeRun:
    """Apply the rules to every row waiting now, oldest first; returns the outcomes."""
    run = IntakeRun()
    for source in SOURCES:
        table, skipped, last = source.table, set(), None
        while True:
            with engine.connect() as conn:
                query = (
                    sa.select(table.c.id, table.c.created_at)
                    .where(source.waiting)
                    .order_by(table.c.created_at, table.c.id)
                    .limit(BATCH + len(skipped))
                )
                rows = [row for row in conn.execute(query) if row.id not in skipped]
            if not rows:
                break
            for row in rows:
                row_id = row.id
                try:
                    outcome = _handle(engine, source, row_id, rules)
                except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
                    # a row the database refuses to change as the rules say: it stays waiting
                    # and is tried again next run; the others go on
                    outcome = "failed"
                    log.warning("intake of %s %s failed: %s", source.name, row_id, str(exc.orig or exc).splitlines()[0])
                if outcome is None or outcome == "failed":
                    skipped.add(row_id)  # another worker is on it, or it failed
                else:
                    last = row
                if outcome is not None:
                    run.outcomes[source.name][outcome] += 1
            if len(rows) < BATCH:
                break
        if last is not None:
            _advance(engine, source, last)
    return run
