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

Roll-ups (``kpi_buckets``, ``email_buckets``) hold these per 15 minutes of UTC. A period is
whole days in a display timezone; every UTC offset in use since 1980 is a multiple of 15
minutes, so its bounds fall on bucket edges, and the part of a period that does not (a
zone with another offset, the half-open ends of any range) is read from the raw rows.
(``kpi_buckets`` keeps two columns of migration 21 that no page reads any more,
``intake_requests`` and ``converted_requests``: the rows the refresh writes hold 0 there.)

Exact while rows change: on PostgreSQL a trigger on each source table (migration 21) marks
the bucket of every row inserted, updated or deleted in ``rollup_dirty``, whoever writes
it (Pitwall, the platform, a console); the queries read marked buckets from the raw rows and
the rest from the roll-up, and ``refresh`` recomputes the marked buckets and clears them.
How often the refresh runs changes only how many buckets are read raw, never a figure. The
intake and email jobs refresh after each run; cron ``python -m dashboard overview`` works too.

DuckDB (the embedded demo) has no triggers: its queries read the raw rows, which its
column scans answer in milliseconds at demo sizes; only ``refresh(rebuild=True)`` fills its
roll-ups (the tests compare them with the raw rows there too).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from dashboard.core import schema as s
from dashboard.core.period import Period

BUCKET = dt.timedelta(minutes=s.ROLLUP_BUCKET_MINUTES)
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
# The Upsells page's cohort by mechanic: recommendations by the time they were **shown**, with the
# mechanic of the session they followed (none: left out), and what became of them up to now.
_rec = s.upsell_recommendations
UPSELL_MECHANIC_SOURCE = Source(
    _rec,
    _rec.c.shown_at,
    lambda: [s.sessions.c.mechanic_id.isnot(None)],
    lambda: {
        "shown": sa.func.count(),
        "clicked": sa.func.count(_rec.c.clicked_at),
        "purchased": sa.func.count(_rec.c.purchased_at),
        "revenue_cents": sa.func.sum(_rec.c.price_cents).filter(_rec.c.purchased_at.isnot(None)),
    },
    dimensions=(s.sessions.c.mechanic_id,),
    joined=lambda: _rec.join(s.sessions, s.sessions.c.id == _rec.c.session_id),
)
UPSELL_MECHANIC_METRICS = ("shown", "clicked", "purchased", "revenue_cents")


def bucket_of(ts: sa.ColumnElement) -> sa.ColumnElement:
    """The start of the 15-minute UTC bucket of ``ts`` (PostgreSQL and DuckDB)."""
    seconds = sa.literal_column(str(int(BUCKET.total_seconds())))  # inline: one expression to group by
    epoch = sa.func.floor(sa.extract("epoch", ts) / seconds) * seconds
    return sa.func.to_timestamp(sa.cast(epoch, sa.Double)).label("bucket_start")


def floor_bucket(when: dt.datetime) -> dt.datetime:
    seconds = int(BUCKET.total_seconds())
    return dt.datetime.fromtimestamp(when.timestamp() // seconds * seconds, dt.UTC)


def ceil_bucket(when: dt.datetime) -> dt.datetime:
    floor = floor_bucket(when)
    return floor if floor == when else floor + BUCKET


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


def in_buckets(source: Source, buckets: Sequence[dt.datetime]) -> list:
    """Rows of ``source`` in ``buckets`` (starts, sorted): one index range per run of adjacent buckets."""
    runs: list[list[dt.datetime]] = []
    for b in buckets:
        if runs and runs[-1][1] == b:
            runs[-1][1] = b + BUCKET
        else:
            runs.append([b, b + BUCKET])
    return [sa.or_(*[sa.and_(*in_range(source, start, end)) for start, end in runs])]


def _marked(conn: Connection, start: dt.datetime, end: dt.datetime) -> list[dt.datetime] | None:
    """In one round trip: the buckets marked between ``start`` and ``end``, or None when the
    roll-ups were never built (then they serve nothing)."""
    w, d = s.intake_watermarks, s.rollup_dirty
    one = sa.select(sa.literal(1).label("one")).subquery("one")
    query = (
        sa.select(w.c.name, d.c.bucket_start)
        .select_from(
            one.outerjoin(w, w.c.name == WATERMARK).outerjoin(
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
    return conn.execute(sa.select(w.c.updated_at).where(w.c.name == WATERMARK)).first() is not None


WATERMARK = "overview_rollups"  # its row in intake_watermarks: when the roll-ups were last refreshed


@dataclass(frozen=True)
class RefreshResult:
    rebuilt: bool
    buckets: int  # buckets recomputed

    def summary(self) -> str:
        return f"overview roll-ups: {'rebuilt' if self.rebuilt else 'refreshed'}, {self.buckets:,} buckets recomputed"


def _recompute(conn: Connection, buckets: Sequence[dt.datetime] | None) -> None:
    """Replace the roll-ups' rows of ``buckets`` (None: every bucket) with what the raw rows say."""
    k = s.kpi_buckets
    bucket_key: Key = lambda ts: [bucket_of(ts)]  # noqa: E731
    for table in (s.kpi_buckets, s.email_buckets, s.upsell_mechanic_buckets):
        conn.execute(table.delete().where(*([] if buckets is None else [table.c.bucket_start.in_(buckets)])))
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
    for table, source, metrics in (
        (s.email_buckets, EMAIL_SOURCE, ["emails"]),
        (s.upsell_mechanic_buckets, UPSELL_MECHANIC_SOURCE, list(UPSELL_MECHANIC_METRICS)),
    ):
        names = ["bucket_start", *[c.name for c in source.dimensions], *metrics]
        conn.execute(table.insert().from_select(names, source_rows(source, bucket_key, where(source), metrics)))


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
        built = conn.execute(sa.select(w.c.name).where(w.c.name == WATERMARK)).first() is not None
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
            conn.execute(w.update().where(w.c.name == WATERMARK).values(updated_at=sa.func.now()))
        else:
            conn.execute(w.insert().values(name=WATERMARK, updated_at=sa.func.now()))
    return RefreshResult(rebuild, count)


# --- reading: the roll-up where it is exact, the raw rows elsewhere ---------------------------


@dataclass(frozen=True)
class Window:
    """``[start, end)`` grouped by ``key``; ``aligned``: whether every boundary ``key`` draws inside the
    window (e.g. local midnights) falls on a bucket edge, so whole buckets can serve it."""

    start: dt.datetime
    end: dt.datetime
    key: Key
    aligned: bool = True


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
    the raw rows of ``sources`` for the marked buckets and the partial edges (or everything).
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
        return (first, last) if use_rollup and w.aligned and first < last else None

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
        keys = [*w.key(rollup.c.bucket_start), *[rollup.c[name] for name in dims]]
        clean = [rollup.c.bucket_start.not_in(dirty)] if dirty else []
        clean += [rollup.c[name].in_(values) for name, values in only.items()]
        parts.append(
            sa.select(*keys, *[sa.cast(rollup.c[m], sa.BigInteger).label(m) for m in metrics]).where(
                rollup.c.bucket_start >= first, rollup.c.bucket_start < last, *clean
            )
        )
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


def on_bucket_edges(*instants: dt.datetime) -> bool:
    return all(floor_bucket(t) == t for t in instants)


def by_local_day(period: Period) -> Window:
    """The period grouped by its local days; whole buckets serve it when every local midnight
    inside it falls on a bucket edge."""
    zone = ZoneInfo(period.tz)
    midnights = [
        dt.datetime.combine(period.start + dt.timedelta(days=i), dt.time(), zone).astimezone(dt.UTC)
        for i in range(1, period.days)
    ]
    return Window(*period.bounds(), local_day(period.tz), on_bucket_edges(*midnights))


def by_period(period: Period) -> list[Window]:
    """The period and the equal period before, keyed ``current`` and ``previous`` (column ``period``)."""
    return [Window(*p.bounds(), labelled(label)) for label, p in (("current", period), ("previous", period.previous()))]
