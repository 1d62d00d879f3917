"""The funnel roll-up: ``python -m dashboard funnel [--rebuild]``.

Keeps ``crm_funnel_progress`` (what it holds: ``dashboard.domain.funnel.interactions``) and its
daily counts (``dashboard.domain.funnel.daily``) fresh for every tracked funnel, so the funnel
page reads a few thousand counts, or a few columns of one row per entered customer, instead of
ordering millions of raw events:

- the first run for a funnel (or ``--rebuild``, or a run that finds the counts missing) computes
  the rows of every customer and counts them;
- a later run recomputes the rows of the customers with interactions recorded since the
  previous run, and of those whose profile (plan, channel) or first session's mechanic
  (specialty) changed, from those customers' whole history (an ordered funnel depends on it),
  taking their old rows out of the counts and adding the new ones. Rows of other customers are
  untouched.

"Recorded since" uses ``crm_interactions.recorded_at`` (the inserting transaction's start).
A transaction that started before a run but committed after it is not in that run, so each
run marks as processed only what was recorded up to ``OVERLAP`` before it started
(``processed_until``); the next run reads those last minutes again, which is harmless.
Transactions writing interactions must be shorter than ``OVERLAP``.

When more than 10,000 customers and a tenth of the rows changed (a bulk load), the run rebuilds.
Deleted interactions are noticed only by ``--rebuild``; a deleted customer's rows go with
the customer (foreign key, PostgreSQL) and the next run recounts the funnel. A run is one
transaction; on PostgreSQL an advisory lock makes two runs take turns, DuckDB allows one
writer anyway.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dashboard.core import schema as s
from dashboard.core.audit import record_audit
from dashboard.core.auth import Actor, require_current_role, require_role
from dashboard.domain.funnel import daily
from dashboard.domain.funnel.interactions import (
    ATTRIBUTES,
    TRACKED_FUNNELS,
    journeys_from_entries,
    reached_at,
    rollup_id,
    step_column,
    steps_key,
)

OVERLAP = dt.timedelta(minutes=10)
# A run that finds more changed customers than this many and this share of the rows rebuilds.
REBUILD_CUSTOMERS, REBUILD_SHARE = 10_000, 0.1
LOCK_KEY = 7_160_016  # pg_advisory_xact_lock key of this job


@dataclass(frozen=True)
class RefreshResult:
    funnel: str
    rebuilt: bool
    new_events: int  # interactions read (recorded since the previous run, or all on a rebuild)
    customers: int  # customers whose rows were recomputed
    rows: int  # progress rows the funnel has now

    def summary(self) -> str:
        how = "rebuilt" if self.rebuilt else "refreshed"
        return (
            f"funnel {self.funnel}: {how} from {self.new_events:,} interactions, "
            f"{self.customers:,} customers recomputed, {self.rows:,} rows"
        )


def progress_rows(funnel_id: int, steps: Sequence[str], customers: sa.Select | None) -> sa.Select:
    """The progress rows of ``steps`` for ``customers`` (a select of ids; None: everyone),
    one per distinct step-1 time, in the order of the columns of ``progress_columns``."""
    i = s.crm_interactions
    entry_events = (
        sa.select(i.c.customer_id, i.c.created_at.label("entry_at")).where(i.c.interaction_type == steps[0]).distinct()
    )
    if customers is not None:
        entry_events = entry_events.where(i.c.customer_id.in_(customers))
    events = entry_events.subquery("entry_events")
    entries = sa.select(
        events.c.customer_id,
        events.c.entry_at,
        sa.func.lag(events.c.entry_at)
        .over(partition_by=events.c.customer_id, order_by=events.c.entry_at)
        .label("prev_entry_at"),
    ).cte("entries")
    journeys = journeys_from_entries(entries, steps, attributes=True).subquery("journeys")
    later = range(2, len(steps) + 1)
    return sa.select(
        sa.literal(funnel_id, sa.Integer).label("funnel_id"),
        *[journeys.c[name] for name in ("customer_id", "entry_at", "prev_entry_at", *map(step_column, later))],
        *[journeys.c[name] for name in ATTRIBUTES],
        *[daily.gap_bin(reached_at(journeys, k - 1), reached_at(journeys, k)).label(_gap_bin(k)) for k in later],
    ).order_by(journeys.c.entry_at)


def _gap_bin(k: int) -> str:
    return f"step{k}_gap_bin"


def progress_columns(steps: Sequence[str]) -> list[str]:
    later = range(2, len(steps) + 1)
    return [
        "funnel_id",
        "customer_id",
        "entry_at",
        "prev_entry_at",
        *map(step_column, later),
        *ATTRIBUTES,
        *map(_gap_bin, later),
    ]


def _stale(funnel_id: int) -> sa.Select:
    """The customers whose rows hold a plan, channel or specialty that is no longer theirs."""
    p, pr, m = s.crm_funnel_progress, s.profiles, s.mechanics
    return (
        sa.select(p.c.customer_id)
        .select_from(p.outerjoin(pr, pr.c.id == p.c.customer_id).outerjoin(m, m.c.user_id == p.c.mechanic_id))
        .where(
            p.c.funnel_id == funnel_id,
            sa.or_(
                pr.c.plan.is_distinct_from(p.c.plan),
                pr.c.acquisition_channel.is_distinct_from(p.c.acquisition_channel),
                m.c.specialties[1].is_distinct_from(p.c.specialty),
            ),
        )
    )


def _funnel_row(conn: Connection, steps: Sequence[str]) -> tuple[int, dt.datetime | None]:
    """The roll-up's id and how far it has read, registering the funnel on its first run."""
    r = s.crm_funnel_rollups
    row = conn.execute(sa.select(r.c.id, r.c.processed_until).where(r.c.steps == steps_key(steps))).first()
    if row is not None:
        return row.id, row.processed_until
    new_id = conn.execute(sa.select(sa.func.coalesce(sa.func.max(r.c.id), 0) + 1)).scalar_one()
    conn.execute(r.insert().values(id=new_id, steps=steps_key(steps)))
    return new_id, None


def _rows(conn: Connection, funnel_id: int) -> int:
    p = s.crm_funnel_progress
    return conn.execute(sa.select(sa.func.count()).select_from(p).where(p.c.funnel_id == funnel_id)).scalar_one()


def _recompute(conn: Connection, funnel_id: int, steps: Sequence[str], customers: sa.Select) -> None:
    """Replace the rows of ``customers`` (a select of ids) and their counts."""
    p = s.crm_funnel_progress
    theirs = sa.select(p).where(p.c.funnel_id == funnel_id, p.c.customer_id.in_(customers))
    daily.add(conn, funnel_id, len(steps), theirs, -1)
    conn.execute(p.delete().where(p.c.funnel_id == funnel_id, p.c.customer_id.in_(customers)))
    conn.execute(p.insert().from_select(progress_columns(steps), progress_rows(funnel_id, steps, customers)))
    daily.add(conn, funnel_id, len(steps), theirs, 1)


# The customers a run recomputes (a temporary table: the list is read four times).
_CHANGED = sa.Table(
    "funnel_changed_customers",
    sa.MetaData(),
    sa.Column("customer_id", sa.Uuid, primary_key=True),
    prefixes=["TEMPORARY"],
)


def _refresh_one(conn: Connection, steps: Sequence[str], rebuild: bool) -> RefreshResult:
    i, p, r = s.crm_interactions, s.crm_funnel_progress, s.crm_funnel_rollups
    funnel_id, processed_until = _funnel_row(conn, steps)
    # never refreshed, emptied since (as reloading the demo data does), or not counted yet: start over
    rebuild = (
        rebuild or processed_until is None or rollup_id(conn, steps) != funnel_id or not daily.built(conn, funnel_id)
    )
    new = [] if rebuild else [i.c.recorded_at > processed_until]
    new_events = conn.execute(sa.select(sa.func.count()).select_from(i).where(*new)).scalar_one()
    if not rebuild:
        _CHANGED.create(conn)
        changed = sa.union(sa.select(i.c.customer_id).where(*new), _stale(funnel_id))
        conn.execute(_CHANGED.insert().from_select(["customer_id"], changed))
        customers = conn.execute(sa.select(sa.func.count()).select_from(_CHANGED)).scalar_one()
        # After a bulk load most customers changed: computing everyone at once is faster.
        rebuild = customers > max(REBUILD_CUSTOMERS, REBUILD_SHARE * _rows(conn, funnel_id))
        if customers and not rebuild:
            _recompute(conn, funnel_id, steps, sa.select(_CHANGED.c.customer_id))
        _CHANGED.drop(conn)
        if not rebuild and not daily.agree(conn, funnel_id):
            daily.recount(conn, funnel_id, len(steps))
    if rebuild:
        customers = conn.execute(sa.select(sa.func.count(sa.distinct(i.c.customer_id)))).scalar_one()
        conn.execute(p.delete().where(p.c.funnel_id == funnel_id))
        conn.execute(p.insert().from_select(progress_columns(steps), progress_rows(funnel_id, steps, None)))
        daily.recount(conn, funnel_id, len(steps))
    conn.execute(
        r.update()
        .where(r.c.id == funnel_id)
        .values(
            processed_until=sa.func.now() - sa.bindparam(None, OVERLAP, type_=sa.Interval()), refreshed_at=sa.func.now()
        )
    )
    return RefreshResult(steps_key(steps), rebuild, new_events, customers, _rows(conn, funnel_id))


def refresh(
    engine: Engine,
    *,
    rebuild: bool = False,
    funnels: Sequence[Sequence[str]] = TRACKED_FUNNELS,
    actor: Actor | None = None,
) -> list[RefreshResult]:
    """Bring the roll-up of every tracked funnel up to date, in one transaction.

    The scheduled job runs without an ``actor``; a refresh asked for in the app passes the
    staff member, who must be an admin, and is audited.
    """
    if actor is not None:
        require_role(actor, "admin")
    with engine.begin() as conn:
        if actor is not None:
            actor = require_current_role(conn, actor, "admin")
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
        results = [_refresh_one(conn, steps, rebuild) for steps in funnels]
        if actor is not None:
            record_audit(
                conn,
                actor,
                "funnel_rollup.refresh",
                "crm_funnel_rollups",
                "tracked funnels",
                after={r.funnel: r.rows for r in results},
            )
    if engine.dialect.name == "postgresql" and any(r.rebuilt for r in results):
        # A rebuild replaced every row: reclaim the old ones now, so scans stay short.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in (s.crm_funnel_progress, *[counts.table for counts in daily.TABLES]):
                conn.execute(sa.text(f"VACUUM (ANALYZE) {table.name}"))
    return results
