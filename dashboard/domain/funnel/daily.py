"""The roll-up's daily counts: a period of whole UTC days from a few thousand rows.

``crm_funnel_progress`` has a row per entry (400,000 for 30 days at demo scale 100), and the
funnel of a period aggregates all of them, several times per page. The daily tables count those
rows per tracked funnel and UTC day of entry instead, keyed by what the queries group on:

- the step reached (1: every entry) and ``within_days``, the whole days it took from the entry
  (``ceil(seconds / 86,400)``, 0 at the entry's instant): a step is reached inside a window of W
  days iff ``within_days <= W``, so one row serves every window;
- per table: the breakdown group (``crm_funnel_daily_groups``), the bin of the time since the step
  before (``crm_funnel_daily_gaps``: bin ``floor(ln(1 + seconds) * GAP_BINS_PER_E)``, 0 for step 1),
  the from-step and bin of the time to convert (``crm_funnel_daily_durations``: DURATION_BINS), or
  the day of the customer's previous entry (``crm_funnel_daily_repeats``).

The first entry in the period
-----------------------------
A period counts each customer once, at their first entry in it: the rows whose entry is in the
period P = [start, end) and whose previous entry is not. Two ways to count that from days:

- **Day by day** (the trend): ``crm_funnel_daily_steps`` counts every entry of a day,
  ``crm_funnel_daily_repeats`` the entries of a day whose previous entry was on a given day (at most
  REPEATS_KEPT before, the longest period). A day's first entries are its entries minus its repeats
  whose previous entry is in the period.
- **Signed** (everything summed over the period: the funnel, medians, breakdowns, time to convert):
  the other tables count each row +1 on its entry's day and -1 on the day of its previous entry.
  Summed over P's days that is the entries in P minus every row whose previous entry is in P: the
  repeats in P, and also the rows that enter after P following an entry in P. Those last ones
  (customers who came back after the period: none when the period ends today) are read from
  ``crm_funnel_progress`` and added back (``Days.progress_rows``).

A period in a display timezone other than UTC starts and ends between UTC midnights: its whole
UTC days come from the counts, and the hours at its edges from ``crm_funnel_progress`` (a few
thousand rows): the entries in those hours whose previous entry is before the period are added,
and the entries of the whole days whose previous entry is in the first hours are taken away
(``Days.progress_rows``). A period holding no whole UTC day (a day in such a timezone) reads the
progress rows instead, and so does a trend whose buckets are not whole UTC days.

Medians: the gap bins give how many journeys lie below each bin, so the middle ones are found
in one bin, whose journeys the queries read from ``crm_funnel_progress`` (an index per step on
funnel, bin and entry): the exact median of the raw events, from a few thousand rows.

The refresh (``dashboard/domain/funnel/rollups.py``) applies each recomputed customer's rows to
the counts: their old rows counted -1, their new rows +1 (``add``), in the same transaction as the
rows. A rebuild recounts everything (``recount``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from dashboard.core import schema as s
from dashboard.core.period import MAX_DAYS
from dashboard.domain.funnel.interactions import (
    DIMENSIONS,
    MAX_WINDOW_DAYS,
    NO_SESSION,
    FunnelSpec,
    attribute,
    reached_at,
    seconds_between,
    step_column,
    within_window,
)

DAY_SECONDS = 86_400
GAP_BINS_PER_E = 6  # gap bins: each 18 % wider than the one before (e ** (1/6))
REPEATS_KEPT = dt.timedelta(days=MAX_DAYS)  # a repeat whose previous entry is older starts no period
# Time-to-convert bins: (lower bound in seconds, label). A bin holds durations above its lower
# bound up to and including the next one (the first from 0); the last ends at the longest window.
DURATION_BINS = (
    (0, "up to 5 min"),
    (300, "5 min – 1 h"),
    (3600, "1 – 6 h"),
    (21600, "6 – 24 h"),
    (86400, "1 – 3 days"),
    (259200, "3 – 7 days"),
    (604800, "7 – 14 days"),
    (1209600, "14 – 30 days"),
    (2592000, "30 – 90 days"),
)
LONGEST = sa.bindparam(None, dt.timedelta(days=MAX_WINDOW_DAYS), type_=sa.Interval())


def utc_day(at: sa.ColumnElement) -> sa.ColumnElement[dt.date]:
    return sa.cast(sa.func.timezone("UTC", at), sa.Date)


def days_to(since: sa.ColumnElement, at: sa.ColumnElement) -> sa.ColumnElement[int]:
    """The whole days a window needs to reach ``at`` from ``since``."""
    return sa.cast(sa.func.ceil(seconds_between(since, at) / DAY_SECONDS), sa.SmallInteger)


def gap_bin(since: sa.ColumnElement, at: sa.ColumnElement) -> sa.ColumnElement[int]:
    return sa.cast(sa.func.floor(sa.func.ln(1 + seconds_between(since, at)) * GAP_BINS_PER_E), sa.SmallInteger)


def duration_bin(seconds: sa.ColumnElement[float]) -> sa.ColumnElement[int]:
    """The number of the DURATION_BINS bin holding ``seconds``."""
    return sa.case(
        *[(seconds <= upper, i) for i, (upper, _) in enumerate(DURATION_BINS[1:])], else_=len(DURATION_BINS) - 1
    )


def _small(value: int) -> sa.ColumnElement[int]:
    return sa.cast(sa.literal(value), sa.SmallInteger)


def _reached(rows: sa.FromClause, k: int) -> sa.ColumnElement[bool]:
    """Whether a row reached step ``k`` inside the longest window (the counts keep no other)."""
    return sa.true() if k == 1 else rows.c[step_column(k)] <= rows.c.entry_at + LONGEST


def _within(rows: sa.FromClause, k: int) -> sa.ColumnElement[int]:
    return _small(0) if k == 1 else days_to(rows.c.entry_at, rows.c[step_column(k)])


# A part of a table's counts: the values of its keys (besides funnel_id and the days) for the
# rows that meet the condition.
Part = tuple[dict[str, sa.ColumnElement], sa.ColumnElement[bool]]


def _step_parts(rows: sa.FromClause, steps: int) -> list[Part]:
    return [({"step": _small(k), "within_days": _within(rows, k)}, _reached(rows, k)) for k in range(1, steps + 1)]


def _group_parts(rows: sa.FromClause, steps: int, dimensions: tuple[str, ...] = DIMENSIONS) -> list[Part]:
    """The group of each dimension; a specialty also keeps the whole days to its session when they
    exceed the step's (``session_days``; else 0: a window that holds the step holds the session)."""
    session = sa.and_(rows.c.session_at.isnot(None), rows.c.session_at <= rows.c.entry_at + LONGEST)
    to_session = days_to(rows.c.entry_at, rows.c.session_at)
    parts = []
    for dimension in dimensions:
        for step, reached in _step_parts(rows, steps):
            group, session_days = attribute(rows, dimension), _small(0)
            if dimension == "specialty":
                group = sa.case((session, group), else_=NO_SESSION)
                later = sa.and_(session, to_session > step["within_days"])
                session_days = sa.case((later, to_session), else_=_small(0))
            keys = {"dimension": sa.cast(sa.literal(dimension), sa.Text), "grp": group, "session_days": session_days}
            parts.append(({**keys, **step}, reached))
    return parts


def _gap_parts(rows: sa.FromClause, steps: int) -> list[Part]:
    return [
        ({**step, "gap_bin": _small(0) if k == 1 else rows.c[f"step{k}_gap_bin"]}, reached)
        for k, (step, reached) in enumerate(_step_parts(rows, steps), start=1)
    ]


def _duration_parts(rows: sa.FromClause, steps: int) -> list[Part]:
    return [
        (
            {
                "from_step": _small(low),
                "step": _small(k),
                "within_days": _within(rows, k),
                "duration_bin": duration_bin(seconds_between(reached_at(rows, low), reached_at(rows, k))),
            },
            _reached(rows, k),
        )
        for k in range(2, steps + 1)
        for low in range(1, k)
    ]


@dataclass(frozen=True)
class Counts:
    """A daily table and how a progress row counts in it."""

    table: sa.Table
    parts: Callable[..., list[Part]]  # (progress rows, steps): how a row counts
    signed: bool = True  # +1 on the entry's day, -1 on the previous entry's day

    @property
    def keys(self) -> list[str]:
        """The key columns the parts give (all but funnel_id and the days)."""
        return [c.name for c in self.table.primary_key.columns if c.name not in ("funnel_id", "day", "prev_day")]

    def parts_of(self, rows: sa.FromClause, steps: int, only: dict) -> list[Part]:
        """The parts, only those of the dimension ``only`` names when it names one (a breakdown)."""
        if "dimension" in only:
            return self.parts(rows, steps, dimensions=(only["dimension"],))
        return self.parts(rows, steps)


STEPS = Counts(s.crm_funnel_daily_steps, _step_parts, signed=False)
REPEATS = Counts(s.crm_funnel_daily_repeats, _step_parts, signed=False)
GROUPS = Counts(s.crm_funnel_daily_groups, _group_parts)
GAPS = Counts(s.crm_funnel_daily_gaps, _gap_parts)
DURATIONS = Counts(s.crm_funnel_daily_durations, _duration_parts)
TABLES = (STEPS, REPEATS, GROUPS, GAPS, DURATIONS)


def _sides(counts: Counts, rows: sa.Select, sign: int) -> sa.CTE:
    """``rows`` (progress rows) with the day(s) they count on and their sign."""
    source = rows.subquery("counted")
    entry = [*source.c, utc_day(source.c.entry_at).label("day")]
    if counts is REPEATS:
        return (
            sa.select(*entry, utc_day(source.c.prev_entry_at).label("prev_day"), sa.literal(sign).label("sign"))
            .where(source.c.prev_entry_at >= source.c.entry_at - sa.bindparam(None, REPEATS_KEPT, type_=sa.Interval()))
            .cte("sides")
        )
    sides = sa.select(*entry, sa.literal(sign).label("sign"))
    if counts.signed:
        before = sa.select(*source.c, utc_day(source.c.prev_entry_at).label("day"), sa.literal(-sign).label("sign"))
        sides = sa.union_all(sides, before.where(source.c.prev_entry_at.isnot(None)))
    return sides.cte("sides")


def _counted(counts: Counts, rows: sa.Select, sign: int, steps: int) -> sa.Select:
    """The net counts of ``rows`` in ``counts``' table, one row per key, zeros left out."""
    sides = _sides(counts, rows, sign)
    days = ["day", "prev_day"] if counts is REPEATS else ["day"]
    parts = [
        sa.select(
            sides.c.funnel_id, *[sides.c[d] for d in days], *[v.label(k) for k, v in keys.items()], sides.c.sign
        ).where(condition)
        for keys, condition in counts.parts(sides, steps)
    ]
    each = sa.union_all(*parts).subquery("each")
    key = [each.c.funnel_id, *[each.c[d] for d in days], *[each.c[k] for k in counts.keys]]
    net = sa.func.sum(each.c.sign)
    return sa.select(*key, sa.cast(net, sa.BigInteger).label("entries")).group_by(*key).having(net != 0)


def recount(conn: Connection, funnel_id: int, steps: int) -> None:
    """Count every progress row of the funnel ``funnel_id`` (of ``steps`` steps) afresh."""
    p = s.crm_funnel_progress
    rows = sa.select(p).where(p.c.funnel_id == funnel_id)
    for counts in TABLES:
        table = counts.table
        conn.execute(table.delete().where(table.c.funnel_id == funnel_id))
        counted = _counted(counts, rows, 1, steps)
        conn.execute(table.insert().from_select([c.name for c in counted.selected_columns], counted))


def add(conn: Connection, funnel_id: int, steps: int, rows: sa.Select, sign: int) -> None:
    """Add ``rows`` (progress rows of the funnel) to the counts (``sign`` 1), or take them away (-1)."""
    for counts in TABLES:
        table = counts.table
        counted = _counted(counts, rows, sign, steps)
        insert = pg_insert(table).from_select([c.name for c in counted.selected_columns], counted)
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=list(table.primary_key.columns),
                set_={"entries": table.c.entries + insert.excluded.entries},
            )
        )
        conn.execute(table.delete().where(table.c.funnel_id == funnel_id, table.c.entries == 0))


def agree(conn: Connection, funnel_id: int) -> bool:
    """Whether the counts hold every progress row of the funnel and no other (a deleted customer
    takes their rows with them, not their counts)."""
    p, d = s.crm_funnel_progress, s.crm_funnel_daily_steps
    rows = sa.select(sa.func.count()).where(p.c.funnel_id == funnel_id).scalar_subquery()
    counted = (
        sa.select(sa.func.coalesce(sa.func.sum(d.c.entries), 0))
        .where(d.c.funnel_id == funnel_id, d.c.step == 1)
        .scalar_subquery()
    )
    return conn.execute(sa.select(rows == counted)).scalar_one()


def built(conn: Connection, funnel_id: int) -> bool:
    """Whether the funnel's rows are counted (counts exist, or there are no rows to count)."""
    p, d = s.crm_funnel_progress, s.crm_funnel_daily_steps
    counted = sa.or_(sa.exists().where(d.c.funnel_id == funnel_id), ~sa.exists().where(p.c.funnel_id == funnel_id))
    return conn.execute(sa.select(counted)).scalar_one()


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Days:
    """The counts of the funnel ``funnel_id`` serving the spec's period: its whole UTC days
    ``[first, end)``, and its edges before and after them (module docstring)."""

    funnel_id: int
    spec: FunnelSpec
    first: dt.date
    end: dt.date

    def rows(self, counts: Counts, **only) -> sa.Subquery:
        """The period's counts in ``counts``' table (a signed one): its keys and ``entries``, several
        rows per key (sum them), for the spec's steps and the keys ``only`` gives (e.g.
        ``dimension="plan"``)."""
        table, steps = counts.table, len(self.spec.steps)
        stored = sa.select(*[table.c[k] for k in counts.keys], table.c.entries).where(
            table.c.funnel_id == self.funnel_id,
            table.c.day >= self.first,
            table.c.day < self.end,
            table.c.step <= steps,
            *[table.c[k] == v for k, v in only.items()],
        )
        added = [
            sa.select(*[values[k].label(k) for k in counts.keys], sa.literal(sign).label("entries"))
            .select_from(rows)
            .where(condition, *[values[k] == v for k, v in only.items()])
            for n, (select, sign) in enumerate(self.progress_rows())
            for rows in [select.cte(f"progress_{n}")]
            for values, condition in counts.parts_of(rows, steps, only)
        ]
        return sa.union_all(stored, *added).subquery("counts")

    def progress_rows(self) -> list[tuple[sa.Select, int]]:
        """The progress rows counted on top of the whole days, each set with its sign: those that
        enter after the days following an entry in them (+1), and for a period that starts or ends
        between UTC midnights its first entries in the edges (+1) and the entries of the days whose
        previous entry is in the first edge (-1)."""
        p = s.crm_funnel_progress
        start, end = self.spec.period.bounds()
        days_start, days_end = _midnight(self.first), _midnight(self.end)
        mine = p.c.funnel_id == self.funnel_id
        found = [
            (
                sa.select(p).where(
                    mine, p.c.entry_at >= days_end, p.c.prev_entry_at >= days_start, p.c.prev_entry_at < days_end
                ),
                1,
            )
        ]
        first_entry = sa.or_(p.c.prev_entry_at.is_(None), p.c.prev_entry_at < start)
        for low, high in ((start, days_start), (days_end, end)):
            if low < high:
                found.append((sa.select(p).where(mine, p.c.entry_at >= low, p.c.entry_at < high, first_entry), 1))
        if start < days_start:
            repeats = sa.select(p).where(
                mine,
                p.c.prev_entry_at >= start,
                p.c.prev_entry_at < days_start,
                p.c.entry_at >= days_start,
                p.c.entry_at < days_end,
            )
            found.append((repeats, -1))
        return found

    def gaps_in_bin(self, k: int, gap_bin: int, offset: int, limit: int) -> sa.Select:
        """``limit`` journeys of the period that reached step ``k`` (2..) in gap bin ``gap_bin``, from
        the ``offset``-th on in the order of ``seconds`` since the step before (also ``step``)."""
        p, spec = s.crm_funnel_progress, self.spec
        start, end = spec.period.bounds()
        seconds = seconds_between(reached_at(p, k - 1), reached_at(p, k))
        at = p.c[step_column(k)]
        return (
            sa.select(sa.literal(k).label("step"), seconds.label("seconds"))
            .where(
                p.c.funnel_id == self.funnel_id,
                p.c[f"step{k}_gap_bin"] == gap_bin,
                p.c.entry_at >= start,
                p.c.entry_at < end,
                sa.or_(p.c.prev_entry_at.is_(None), p.c.prev_entry_at < start),
                at.isnot(None),
                within_window(p, spec, at),
            )
            .order_by(seconds)
            .offset(offset)
            .limit(limit)
        )


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def serving_days(conn: Connection, spec: FunnelSpec, funnel_id: int | None) -> Days | None:
    """The daily counts of the roll-up ``funnel_id`` for ``spec``, when they serve its period: it
    holds a whole UTC day."""
    start, end = (at.astimezone(dt.UTC) for at in spec.period.bounds())
    first = start.date() if start == _midnight(start.date()) else start.date() + dt.timedelta(days=1)
    if funnel_id is None or first >= end.date() or not built(conn, funnel_id):
        return None
    return Days(funnel_id, spec, first, end.date())
