"""The headline counts and their roll-ups: ``python -m dashboard overview [--rebuild]``.

Each headline metric is defined once here, as a *source*: a table, the time that places a
row in a period, which rows count and what they add. The queries
(``queries/overview.py``, ``queries/emails.py``, ``queries/upsells.py``) and the roll-up
refresh all build their SQL from these definitions, so a figure read from the roll-up and
the same figure read from the raw rows cannot drift apart.

- sessions completed: sessions with status ``completed``, placed by ``ended_at``;
- reviews published: reviews whose status is ``published``, by ``created_at``, with the sum
  of their ratings (average rating = rating sum / reviews);
- upsell revenue: the price of the upsell recommendations **purchased** in the period, by
  ``purchased_at`` (money is counted when it comes in; the Upsells page's cohort view,
  recommendations shown in the period, counts their purchases up to now instead);
- emails: outbox rows by ``created_at``, milestone and status.

Roll-ups (``kpi_buckets``, ``email_buckets``, the Upsells page's cohort per mechanic and per
service) hold these per 15 minutes of UTC. A period is whole days in a display timezone; every
UTC offset in use since 1980 is a multiple of 15 minutes, so its bounds fall on bucket edges, and
the part of a period that does not (a zone with another offset, the half-open ends of any range)
is read from the raw rows. The upsell cohort's roll-ups also keep a level per UTC day
(``DAY_LEVELS``, the 15-minute rows summed): a query grouped by something that changes only at
UTC midnights (the whole period, a day in UTC) reads the whole clean UTC days there and only its
partial first and last days, and the days holding a marked bucket, per 15 minutes.
(``kpi_buckets`` keeps two columns of migration 21 that no page reads any more,
``intake_requests`` and ``converted_requests``: the rows the refresh writes hold 0 there.)

Exact while rows change: on PostgreSQL a trigger on each source table (migrations 21, 22) marks
the bucket of every row inserted, updated or deleted in ``rollup_dirty``, whoever writes
it (Pitwall, the platform, a console); the queries read marked buckets from the raw rows and
the rest from the roll-up, and ``refresh`` recomputes the marked buckets (and the days holding
them) and clears them.
How often the refresh runs changes only how many buckets are read raw, never a figure. The
intake and email jobs refresh after each run; cron ``python -m dashboard overview`` works too.

DuckDB (the embedded demo) has no triggers: its queries read the raw rows, which its
column scans answer in milliseconds at demo sizes; only ``refresh(rebuild=True)`` fills its
roll-ups (the tests compare them with the raw rows there too).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dashboard.core import schema as s
from dashboard.core.period import Period

BUCKET = dt.timedelta(minutes=s.ROLLUP_BUCKET_MINUTES)
DAY = dt.timedelta(days=1)
LOCK_KEY = 7_160_021  # pg_advisory_xact_lock key of the refresh
BULK_LOAD = sa.text(f"SET LOCAL {s.ROLLUP_BULK_LOAD_SETTING} = 'on'")  # in a bulk load: mark nothing, rebuild after


@dataclass(frozen=True)
class Source:
    """Rows of ``table`` placed in time by ``time``, those matching ``where``, adding ``values``."""

    table: sa.Table
    time: sa.Column
    where: Callable[[], list[sa.ColumnElement[bool]]]
    values: Callable[[], dict[str, sa.ColumnElement]]
    dimensions: tuple[sa.Column, ...] = field(default=())  # grouping columns kept in the roll-up (by name)
    joined: Callable[[], sa.FromClause] | None = None  # what to read from, when not ``table`` alone

    def column(self, name: str) -> sa.Column:
        return next(c for c in self.dimensions if c.name == name)


KPI_SOURCES = (
    Source(
        s.sessions,
        s.sessions.c.ended_at,
        lambda: [s.sessions.c.status == "completed"],
        lambda: {"sessions_completed": sa.func.count()},
    ),
    Source(
        s.mechanic_reviews,
        s.mechanic_reviews.c.created_at,
        lambda: [s.mechanic_reviews.c.status == "published"],
        lambda: {"reviews_published": sa.func.count(), "rating_sum": sa.func.sum(s.mechanic_reviews.c.rating)},
    ),
    Source(
        s.upsell_recommendations,
        s.upsell_recommendations.c.purchased_at,
        lambda: [s.upsell_recommendations.c.purchased_at.isnot(None)],
        lambda: {
            "upsell_purchases": sa.func.count(),
            "upsell_revenue_cents": sa.func.sum(s.upsell_recommendations.c.price_cents),
        },
    ),
)
SESSIONS_SOURCE, REVIEWS_SOURCE, UPSELL_SOURCE = KPI_SOURCES
KPI_METRICS = tuple(name for source in KPI_SOURCES for name in source.values())  # kpi_buckets' columns filled
EMAIL_SOURCE = Source(
    s.email_outbox,
    s.email_outbox.c.created_at,
    lambda: [],
    lambda: {"emails": sa.func.count()},
    dimensions=(s.email_outbox.c.milestone, s.email_outbox.c.status),
)
# The Upsells page's cohort: recommendations by the time they were **shown**, and what became of
# them up to now; per type and service title, and per mechanic of the session they followed
# (none: left out).
_rec = s.upsell_recommendations
UPSELL_COHORT_METRICS = ("shown", "clicked", "purchased", "revenue_cents")


def _cohort_values() -> dict[str, sa.ColumnElement]:
    return {
        "shown": sa.func.count(),
        "clicked": sa.func.count(_rec.c.clicked_at),
        "purchased": sa.func.count(_rec.c.purchased_at),
        "revenue_cents": sa.func.sum(_rec.c.price_cents).filter(_rec.c.purchased_at.isnot(None)),
    }


UPSELL_SERVICE_SOURCE = Source(
    _rec, _rec.c.shown_at, lambda: [], _cohort_values, dimensions=(_rec.c.recommendation_type, _rec.c.service_title)
)
UPSELL_MECHANIC_SOURCE = Source(
    _rec,
    _rec.c.shown_at,
    lambda: [s.sessions.c.mechanic_id.isnot(None)],
    _cohort_values,
    dimensions=(s.sessions.c.mechanic_id,),
    joined=lambda: _rec.join(s.sessions, s.sessions.c.id == _rec.c.session_id),
)
# The roll-ups with dimensions: table, source, metrics.
DIMENSIONED_ROLLUPS = (
    (s.email_buckets, EMAIL_SOURCE, ("emails",)),
    (s.upsell_mechanic_buckets, UPSELL_MECHANIC_SOURCE, UPSELL_COHORT_METRICS),
    (s.upsell_service_buckets, UPSELL_SERVICE_SOURCE, UPSELL_COHORT_METRICS),
)
# The 15-minute roll-ups that also have a level per UTC day (``schema._per_day``): a window whose
# key changes only at UTC midnights reads its whole days there, a 96th of the rows.
DAY_LEVELS = {
    s.upsell_mechanic_buckets: s.upsell_mechanic_days,
    s.upsell_service_buckets: s.upsell_service_days,
}


def bucket_of(ts: sa.ColumnElement, grain: dt.timedelta = BUCKET) -> sa.ColumnElement:
    """The start of the UTC bucket of ``ts`` (15 minutes, or ``grain``; PostgreSQL and DuckDB)."""
    seconds = sa.literal_column(str(int(grain.total_seconds())))  # inline: one expression to group by
    epoch = sa.func.floor(sa.extract("epoch", ts) / seconds) * seconds
    return sa.func.to_timestamp(sa.cast(epoch, sa.Double)).label("bucket_start")


def floor_bucket(when: dt.datetime, grain: dt.timedelta = BUCKET) -> dt.datetime:
    seconds = int(grain.total_seconds())
    return dt.datetime.fromtimestamp(when.timestamp() // seconds * seconds, dt.UTC)


def ceil_bucket(when: dt.datetime, grain: dt.timedelta = BUCKET) -> dt.datetime:
    floor = floor_bucket(when, grain)
    return floor if floor == when else floor + grain


Key = Callable[[sa.ColumnElement], list[sa.ColumnElement]]
"""What to group by, from a timestamp: e.g. its bucket, its local day, a period's label."""


def source_rows(
    source: Source,
    key: Key,
    where: Sequence[sa.ColumnElement[bool]],
    metrics: Sequence[str],
    select_from: sa.FromClause | None = None,
) -> sa.Select:
    """``source`` aggregated by ``key`` (and its dimensions) over the rows matching ``where``,
    one column per name of ``metrics`` (0 for the metrics of other sources)."""
    values = source.values()
    keys = [*key(source.time), *source.dimensions]
    columns = [
        sa.cast(sa.func.coalesce(values[m], 0) if m in values else sa.literal(0), sa.BigInteger).label(m)
        for m in metrics
    ]
    varying = [k for k in keys if not getattr(getattr(k, "element", k), "is_literal", False)]  # no constant
    query = sa.select(*keys, *columns).where(source.time.isnot(None), *source.where(), *where).group_by(*varying)
    if select_from is None and source.joined is not None:
        select_from = source.joined()
    return query.select_from(select_from) if select_from is not None else query


def in_range(source: Source, start: dt.datetime, end: dt.datetime) -> list[sa.ColumnElement[bool]]:
    return [source.time >= start, source.time < end]


def _in_runs(column: sa.ColumnElement, starts: Sequence[dt.datetime], grain: dt.timedelta) -> sa.ColumnElement[bool]:
    """``column`` in the buckets of ``grain`` starting at ``starts`` (sorted): one index range per
    run of adjacent buckets."""
    runs: list[list[dt.datetime]] = []
    for b in starts:
        if runs and runs[-1][1] == b:
            runs[-1][1] = b + grain
        else:
            runs.append([b, b + grain])
    return sa.or_(*[sa.and_(column >= start, column < end) for start, end in runs])


def in_buckets(source: Source, buckets: Sequence[dt.datetime]) -> list:
    """Rows of ``source`` in ``buckets`` (starts, sorted)."""
    return [_in_runs(source.time, buckets, BUCKET)]


def _marked(conn: Connection, start: dt.datetime, end: dt.datetime) -> list[dt.datetime] | None:
    """In one round trip: the buckets marked between ``start`` and ``end``, or None when the
    roll-ups were never built (then they serve nothing)."""
    w, d = s.intake_watermarks, s.rollup_dirty
    one = sa.select(sa.literal(1).label("one")).subquery("one")
    query = (
        sa.select(w.c.name, d.c.bucket_start)
        .select_from(
            one.outerjoin(w, w.c.name == s.ROLLUP_WATERMARK).outerjoin(
                d, sa.and_(d.c.bucket_start >= start, d.c.bucket_start < end)
            )
        )
        .order_by(d.c.bucket_start)
    )
    rows = conn.execute(query).all()
    if rows[0].name is None:
        return None
    return [row.bucket_start for row in rows if row.bucket_start is not None]


def rollup_ready(conn: Connection) -> bool:
    """Whether the queries may read the roll-ups: PostgreSQL (whose triggers keep them exact)
    and built at least once."""
    if conn.dialect.name != "postgresql":
        return False
    w = s.intake_watermarks
    return conn.execute(sa.select(w.c.updated_at).where(w.c.name == s.ROLLUP_WATERMARK)).first() is not None


@dataclass(frozen=True)
class RefreshResult:
    rebuilt: bool
    buckets: int  # buckets recomputed

    def summary(self) -> str:
        return f"overview roll-ups: {'rebuilt' if self.rebuilt else 'refreshed'}, {self.buckets:,} buckets recomputed"


def _recompute(conn: Connection, buckets: Sequence[dt.datetime] | None) -> None:
    """Replace the roll-ups' rows of ``buckets`` (None: every bucket) with what the raw rows say,
    and the day levels' rows of their days with the sum of their 15-minute rows."""
    k = s.kpi_buckets
    bucket_key: Key = lambda ts: [bucket_of(ts)]  # noqa: E731
    for table in (s.kpi_buckets, *[table for table, _, _ in DIMENSIONED_ROLLUPS]):
        conn.execute(table.delete().where(*([] if buckets is None else [table.c.bucket_start.in_(buckets)])))
    days = None if buckets is None else sorted({floor_bucket(b, DAY) for b in buckets})
    for table in DAY_LEVELS.values():
        conn.execute(table.delete().where(*([] if days is None else [table.c.bucket_start.in_(days)])))
    if buckets is None:
        where = lambda source: []  # noqa: E731
    else:
        where = lambda source: in_buckets(source, buckets)  # noqa: E731
    if buckets == []:
        return
    parts = [source_rows(src, bucket_key, where(src), KPI_METRICS) for src in KPI_SOURCES]
    rows = sa.union_all(*parts).subquery("rows")
    conn.execute(
        k.insert().from_select(
            ["bucket_start", *KPI_METRICS],
            sa.select(rows.c.bucket_start, *[sa.func.sum(rows.c[m]) for m in KPI_METRICS]).group_by(
                rows.c.bucket_start
            ),
        )
    )
    for table, source, metrics in DIMENSIONED_ROLLUPS:
        names = ["bucket_start", *[c.name for c in source.dimensions], *metrics]
        in_time_order = source_rows(source, bucket_key, where(source), metrics).order_by("bucket_start")
        conn.execute(table.insert().from_select(names, in_time_order))
    for quarters, per_day in DAY_LEVELS.items():
        dims = [c for c in quarters.primary_key.columns if c.name != "bucket_start"]
        sums = [c for c in quarters.columns if not c.primary_key]
        day = bucket_of(quarters.c.bucket_start, DAY)
        conn.execute(
            per_day.insert().from_select(
                ["bucket_start", *[c.name for c in (*dims, *sums)]],
                sa.select(day, *dims, *[sa.func.sum(c) for c in sums])
                .where(*([] if days is None else [_in_runs(quarters.c.bucket_start, days, DAY)]))
                .group_by(day, *dims)
                .order_by(day),  # in time order: a period's rows on adjacent pages
            )
        )


MAX_BUCKETS_PER_RUN = 500  # more marked buckets than this: recompute everything in one pass


def refresh(engine: Engine, *, rebuild: bool = False) -> RefreshResult:
    """Recompute the marked buckets (every bucket on ``rebuild`` or the first run), in one
    transaction; two runs at once take turns (PostgreSQL advisory lock). On DuckDB only a
    rebuild does anything (its queries read the raw rows)."""
    w, d = s.intake_watermarks, s.rollup_dirty
    if engine.dialect.name != "postgresql" and not rebuild:
        return RefreshResult(False, 0)  # DuckDB's queries read the raw rows: nothing to keep up
    with engine.begin() as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
        built = conn.execute(sa.select(w.c.name).where(w.c.name == s.ROLLUP_WATERMARK)).first() is not None
        rebuild = rebuild or not built or not postgres
        # Take the marks first: a change committed after this statement marks its bucket again
        # (for the next run), and every change committed before it is in the recomputation below.
        if rebuild:
            conn.execute(d.delete())
            marked = None
        else:
            marked = sorted(conn.execute(d.delete().returning(d.c.bucket_start)).scalars())
            if len(marked) > MAX_BUCKETS_PER_RUN:
                marked, rebuild = None, True
        _recompute(conn, marked)
        count = (
            len(marked)
            if marked is not None
            else conn.execute(sa.select(sa.func.count()).select_from(s.kpi_buckets)).scalar_one()
        )
        if built:
            conn.execute(w.update().where(w.c.name == s.ROLLUP_WATERMARK).values(updated_at=sa.func.now()))
        else:
            conn.execute(w.insert().values(name=s.ROLLUP_WATERMARK, updated_at=sa.func.now()))
    return RefreshResult(rebuild, count)


# --- reading: the roll-up where it is exact, the raw rows elsewhere ---------------------------


@dataclass(frozen=True)
class Window:
    """``[start, end)`` grouped by ``key``; ``inner``: the instants inside it where ``key`` changes
    (e.g. local midnights). Whole buckets of a grain serve it where those fall on the grain's edges."""

    start: dt.datetime
    end: dt.datetime
    key: Key
    inner: tuple[dt.datetime, ...] = ()

    def served_by(self, grain: dt.timedelta) -> bool:
        return on_bucket_edges(*self.inner, grain=grain)


def windows_rows(
    conn: Connection,
    sources: Sequence[Source],
    rollup: sa.Table,
    metrics: Sequence[str],
    windows: Sequence[Window],
    only: dict[str, Sequence[str]] | None = None,
) -> sa.Subquery:
    """Partial sums of ``metrics`` per key (and dimensions) over ``windows``, for the caller to add up
    by key: from ``rollup`` for the clean whole buckets of each window (when ``rollup_ready``), and from
    the raw rows of ``sources`` for the marked buckets and the partial edges (or everything). Where
    ``rollup`` has a day level (``DAY_LEVELS``) and the window's key changes only at UTC midnights,
    its whole clean UTC days are read there, the rest of its buckets from ``rollup``.
    ``only``: the values of dimensions to keep, e.g. ``{"status": ["failed"]}``."""
    only = {name: values for name, values in (only or {}).items() if values}
    use_rollup = conn.dialect.name == "postgresql"
    dims = [c.name for c in sources[0].dimensions]
    parts: list[sa.Select] = []

    def raw(where: Callable[[Source], list], key: Key) -> None:
        for src in sources:
            kept = [src.column(name).in_(values) for name, values in only.items()]
            parts.append(source_rows(src, key, [*where(src), *kept], metrics))

    def whole(w: Window) -> tuple[dt.datetime, dt.datetime] | None:
        first, last = ceil_bucket(w.start), floor_bucket(w.end)
        return (first, last) if use_rollup and w.served_by(BUCKET) and first < last else None

    def rolled_up(table: sa.Table, key: Key, ranges: list[tuple[dt.datetime, dt.datetime]], dirty: list) -> None:
        """The rows of ``table`` in ``ranges`` but not in ``dirty`` (bucket starts)."""
        ranges = [(start, end) for start, end in ranges if start < end]
        if not ranges:
            return
        keys = [*key(table.c.bucket_start), *[table.c[name] for name in dims]]
        where = [sa.or_(*[sa.and_(table.c.bucket_start >= start, table.c.bucket_start < end) for start, end in ranges])]
        where += [table.c.bucket_start.not_in(dirty)] if dirty else []
        where += [table.c[name].in_(values) for name, values in only.items()]
        parts.append(sa.select(*keys, *[sa.cast(table.c[m], sa.BigInteger).label(m) for m in metrics]).where(*where))

    spans = [span for span in map(whole, windows) if span]
    marked = _marked(conn, min(a for a, _ in spans), max(b for _, b in spans)) if spans else []
    if marked is None:  # not built yet
        spans, use_rollup = [], False
    for w in windows:
        span = whole(w)
        if span is None:
            raw(lambda src, w=w: in_range(src, w.start, w.end), w.key)
            continue
        first, last = span
        for start, end in ((w.start, first), (last, w.end)):  # the partial edges
            if start < end:
                raw(lambda src, start=start, end=end: in_range(src, start, end), w.key)
        dirty = [b for b in marked if first <= b < last]
        if dirty:  # changed since the last refresh: from the raw rows
            raw(lambda src, dirty=dirty: in_buckets(src, dirty), w.key)
        fine = [(first, last)]
        day_first, day_last = ceil_bucket(first, DAY), floor_bucket(last, DAY)
        if rollup in DAY_LEVELS and w.served_by(DAY) and day_first < day_last:
            dirty_days = sorted({floor_bucket(b, DAY) for b in dirty if day_first <= b < day_last})
            rolled_up(DAY_LEVELS[rollup], w.key, [(day_first, day_last)], dirty_days)
            fine = [(first, day_first), *[(day, day + DAY) for day in dirty_days], (day_last, last)]
        rolled_up(rollup, w.key, fine, dirty)
    return sa.union_all(*parts).subquery("parts")


def summed(parts: sa.Subquery, metrics: Sequence[str]) -> sa.Select:
    """``parts`` (of ``windows_rows``) added up by their key and dimension columns."""
    keys = [c for c in parts.c if c.name not in metrics]
    return sa.select(*keys, *[sa.func.sum(parts.c[m]).label(m) for m in metrics]).group_by(*keys)


def local_day(tz: str) -> Key:
    return lambda ts: [sa.cast(sa.func.timezone(tz, ts), sa.Date).label("day")]


def labelled(label: str) -> Key:
    """A constant key (inline SQL text: DuckDB groups by no parameter), e.g. ``current``."""
    if not label.isidentifier():
        raise ValueError(f"not a label: {label!r}")
    return lambda ts: [sa.literal_column(f"'{label}'", sa.Text).label("period")]


def on_bucket_edges(*instants: dt.datetime, grain: dt.timedelta = BUCKET) -> bool:
    return all(floor_bucket(t, grain) == t for t in instants)


def local_midnights(days: Iterable[dt.date], tz: str) -> tuple[dt.datetime, ...]:
    """The UTC instants at which ``days`` start in ``tz``."""
    zone = ZoneInfo(tz)
    return tuple(dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC) for day in days)


def by_local_day(period: Period) -> Window:
    """The period grouped by its local days."""
    days = [period.start + dt.timedelta(days=i) for i in range(1, period.days)]
    return Window(*period.bounds(), local_day(period.tz), local_midnights(days, period.tz))


def by_period(period: Period) -> list[Window]:
    """The period and the equal period before, keyed ``current`` and ``previous`` (column ``period``)."""
    return [Window(*p.bounds(), labelled(label)) for label, p in (("current", period), ("previous", period.previous()))]
