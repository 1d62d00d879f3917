"""The ordered conversion funnel: steps, breakdown, time to convert, trend, drop-off list.

Every function takes a validated ``dashboard.domain.funnel.interactions.FunnelSpec`` (the rules are in that
module's docstring) and aggregates in SQL over the spec's journeys: one row per entered
customer, read from the roll-up when one serves the steps, else computed from raw events
(``source`` forces one: ``"rollup"`` or ``"events"``). A roll-up serves a period of whole UTC days
from its daily counts (``dashboard.domain.funnel.daily``), any other from its rows. All give the
same numbers.

Names of breakdown dimensions and trend grains come only from ``BREAKDOWNS`` and ``GRAINS``.
Times come back in UTC; the page shows them in the display timezone.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.core import schema as s
from dashboard.core.period import Period, next_bucket
from dashboard.domain.funnel import daily
from dashboard.domain.funnel.daily import DURATION_BINS, Days, duration_bin
from dashboard.domain.funnel.interactions import (
    DIMENSIONS,
    NO_SESSION,
    STEP_LABELS,
    CrmInputError,
    FunnelSpec,
    attribute,
    journeys,
    reached,
    reached_at,
    seconds_between,
    serving_rollup,
    usable_rollup,
    within_window,
)

BREAKDOWNS = dict(zip(DIMENSIONS, ("Plan", "Acquisition channel", "Vehicle make", "Mechanic specialty"), strict=True))
OTHER = "(other)"
MAX_TOP_N = 20
GRAINS = ("day", "week", "month")


def _frame(conn: Connection, query: sa.Select, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(conn.execute(query).all(), columns=columns)


def _sources(conn: Connection, spec: FunnelSpec, source: str) -> tuple[int | None, Days | None]:
    """The roll-up serving ``spec`` (None: raw events) and its daily counts when they serve the period."""
    funnel_id = serving_rollup(conn, spec, source)
    return funnel_id, daily.serving_days(conn, spec, funnel_id)


def _total(entries: sa.ColumnElement, *when: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.cast(sa.func.coalesce(sa.func.sum(entries).filter(*when), 0), sa.BigInteger)


def funnel(conn: Connection, *, spec: FunnelSpec, source: str = "auto") -> pd.DataFrame:
    """One row per step: step (1-based), interaction_type, label, customers, from_first and
    from_previous (ratios, NaN without customers), median_seconds from the previous step."""
    funnel_id, days = _sources(conn, spec, source)
    n = len(spec.steps)
    if days is None:
        reached_counts, medians = _steps_from_journeys(conn, journeys(spec, funnel_id), spec)
    else:
        reached_counts, medians = _steps_from_days(conn, days)
    customers = pd.Series(reached_counts, dtype="int64")
    first = customers.iloc[0]
    return pd.DataFrame(
        {
            "step": range(1, n + 1),
            "interaction_type": list(spec.steps),
            "label": [STEP_LABELS[step] for step in spec.steps],
            "customers": customers,
            "from_first": customers / first if first else float("nan"),
            "from_previous": customers / customers.shift(1).where(customers.shift(1) > 0),
            "median_seconds": [float("nan")] + [float("nan") if m is None else float(m) for m in medians],
        }
    )


def _steps_from_journeys(conn: Connection, j: sa.FromClause, spec: FunnelSpec) -> tuple[list[int], list]:
    """Customers per step and the median seconds from the previous step (steps 2..N)."""
    n = len(spec.steps)
    counts = [sa.func.count().filter(reached(j, spec, k)).label(f"reached_{k}") for k in range(1, n + 1)]
    medians = [
        sa.func.percentile_cont(0.5)
        .within_group(sa.case((reached(j, spec, k), seconds_between(reached_at(j, k - 1), reached_at(j, k)))))
        .label(f"median_{k}")
        for k in range(2, n + 1)
    ]
    row = conn.execute(sa.select(*counts, *medians).select_from(j)).one()
    return list(row[:n]), list(row[n:])


def _steps_from_days(conn: Connection, days: Days) -> tuple[list[int], list]:
    """``_steps_from_journeys`` from the daily gap counts: customers per step and, per step, the
    bin of each middle journey; then the middle journeys themselves, read in their bin."""
    g, n = days.rows(daily.GAPS), len(days.spec.steps)
    bins = sa.select(g.c.step, g.c.gap_bin, sa.func.sum(g.c.entries)).where(g.c.within_days <= days.spec.window_days)
    per_step: dict[int, dict[int, int]] = {k: {} for k in range(1, n + 1)}
    for step, gap_bin, entries in conn.execute(bins.group_by(g.c.step, g.c.gap_bin)):
        if entries:
            per_step[step][gap_bin] = int(entries)
    customers = [sum(per_step[k].values()) for k in range(1, n + 1)]
    middles = [
        days.gaps_in_bin(k, gap_bin, offset, limit).subquery(f"middle_{k}_{gap_bin}")
        for k in range(2, n + 1)
        for gap_bin, offset, limit in _middle_bins(per_step[k])
    ]
    medians: dict[int, float] = {}
    if middles:
        values = sa.union_all(*[sa.select(m.c.step, m.c.seconds) for m in middles]).subquery("middles")
        median = sa.func.percentile_cont(0.5).within_group(values.c.seconds)
        medians = dict(conn.execute(sa.select(values.c.step, median).group_by(values.c.step)).all())
    return customers, [medians.get(k) for k in range(2, n + 1)]


def _middle_bins(counts: dict[int, int]) -> list[tuple[int, int, int]]:
    """Where the middle one or two of the journeys counted per bin in ``counts`` lie, as
    (bin, offset in the bin, how many), in bin order (what percentile_cont(0.5) interpolates)."""
    total = sum(counts.values())
    if not total:
        return []
    wanted, found, before = sorted({(total - 1) // 2, total // 2}), [], 0
    for gap_bin in sorted(counts):
        here = [rank - before for rank in wanted if before <= rank < before + counts[gap_bin]]
        if here:
            found.append((gap_bin, here[0], len(here)))
        before += counts[gap_bin]
    return found


def _dimension(j: sa.FromClause, spec: FunnelSpec, dimension: str) -> sa.ColumnElement[str]:
    if dimension == "specialty":
        return sa.case((within_window(j, spec, j.c.session_at), attribute(j, dimension)), else_=NO_SESSION)
    return attribute(j, dimension)


def _groups_from_journeys(j: sa.FromClause, spec: FunnelSpec, dimension: str) -> sa.Subquery:
    """Per group of ``dimension``: ``grp`` and the customers reaching each step, ``reached_1``..."""
    n = len(spec.steps)
    flags = (
        sa.select(
            _dimension(j, spec, dimension).label("grp"), *[reached(j, spec, k).label(f"r{k}") for k in range(2, n + 1)]
        )
        .select_from(j)
        .subquery("flags")
    )
    return (
        sa.select(
            flags.c.grp,
            sa.func.count().label("reached_1"),
            *[sa.func.count().filter(flags.c[f"r{k}"]).label(f"reached_{k}") for k in range(2, n + 1)],
        )
        .group_by(flags.c.grp)
        .subquery("grouped")
    )


def _groups_from_days(days: Days, dimension: str) -> sa.Subquery:
    """``_groups_from_journeys`` from the daily group counts."""
    g, spec = days.rows(daily.GROUPS, dimension=dimension), days.spec
    window = spec.window_days
    group = sa.case((g.c.session_days <= window, g.c.grp), else_=NO_SESSION).label("grp")
    counts = [
        _total(g.c.entries, g.c.step == k, g.c.within_days <= window).label(f"reached_{k}")
        for k in range(1, len(spec.steps) + 1)
    ]
    # a group's +1 and -1 can cancel out: such a group holds no customer of the period
    return sa.select(group, *counts).group_by(group).having(counts[0] > 0).subquery("grouped")


def breakdown(
    conn: Connection, *, spec: FunnelSpec, dimension: str, top_n: int = 8, source: str = "auto"
) -> pd.DataFrame:
    """Per group of ``dimension`` (a key of BREAKDOWNS): ``group``, one count column per step
    (named by interaction type) and ``conversion`` (last step / first). The ``top_n`` groups
    with most entered customers are kept and the rest summed as "(other)"; groups sum to the totals."""
    if dimension not in BREAKDOWNS:
        raise CrmInputError(f"Unknown breakdown {str(dimension)[:40]!r}; choose from {', '.join(BREAKDOWNS)}.")
    if isinstance(top_n, bool) or not isinstance(top_n, int) or not 1 <= top_n <= MAX_TOP_N:
        raise CrmInputError(f"Top N must be a whole number from 1 to {MAX_TOP_N}.")
    funnel_id, days = _sources(conn, spec, source)
    if days is None:
        grouped = _groups_from_journeys(journeys(spec, funnel_id, attributes=True), spec, dimension)
    else:
        grouped = _groups_from_days(days, dimension)
    counts = [f"reached_{k}" for k in range(1, len(spec.steps) + 1)]
    rank = sa.func.row_number().over(order_by=[grouped.c.reached_1.desc(), grouped.c.grp])
    ranked = sa.select(grouped, rank.label("rank")).subquery("ranked")
    labelled = sa.select(
        sa.case((ranked.c.rank <= top_n, ranked.c.grp), else_=OTHER).label("grp"),
        ranked.c.rank,
        *[ranked.c[c] for c in counts],
    ).subquery("labelled")
    query = (
        sa.select(labelled.c.grp, *[sa.cast(sa.func.sum(labelled.c[c]), sa.BigInteger) for c in counts])
        .group_by(labelled.c.grp)
        .order_by(sa.func.min(labelled.c.rank))
    )
    frame = _frame(conn, query, ["group", *spec.steps]).astype({step: "int64" for step in spec.steps})
    first, last = frame[spec.steps[0]], frame[spec.steps[-1]]
    frame["conversion"] = last / first.where(first > 0)
    return frame


def time_to_convert(
    conn: Connection, *, spec: FunnelSpec, from_step: int, to_step: int, source: str = "auto"
) -> pd.DataFrame:
    """Journeys that reached ``to_step``, by the time from ``from_step`` to ``to_step``
    (1-based, from before to): ``bin`` label, ``lower_seconds``, ``customers``; every bin that
    starts inside the window is listed, with zeros."""
    low, high = spec.step_index(from_step), spec.step_index(to_step)
    if low >= high:
        raise CrmInputError("The first step of the time to convert must come before the second.")
    funnel_id, days = _sources(conn, spec, source)
    if days is None:
        j = journeys(spec, funnel_id)
        seconds = seconds_between(reached_at(j, low), reached_at(j, high))
        numbered = (
            sa.select(duration_bin(seconds).label("bin"))
            .select_from(j)
            .where(reached(j, spec, high))
            .subquery("numbered")
        )
        query = sa.select(numbered.c.bin, sa.func.count()).group_by(numbered.c.bin)
    else:
        d = days.rows(daily.DURATIONS, from_step=low, step=high)
        query = (
            sa.select(d.c.duration_bin, sa.func.sum(d.c.entries))
            .where(d.c.within_days <= spec.window_days)
            .group_by(d.c.duration_bin)
        )
    counts = dict(conn.execute(query).all())
    window = spec.window.total_seconds()
    bins = [(i, lower, label) for i, (lower, label) in enumerate(DURATION_BINS) if lower < window]
    return pd.DataFrame(
        {
            "bin": [label for _, _, label in bins],
            "lower_seconds": [lower for _, lower, _ in bins],
            "customers": pd.Series([counts.get(i, 0) for i, _, _ in bins], dtype="int64"),
        }
    )


def bucket_starts(period: Period, grain: str) -> list[dt.date]:
    """The first day of every day, week (from Monday) or month that overlaps the period."""

    def floor(day: dt.date) -> dt.date:
        if grain == "week":
            return day - dt.timedelta(days=day.weekday())
        return day.replace(day=1) if grain == "month" else day

    starts, day = [], floor(period.start)
    while day <= period.end:
        starts.append(day)
        day = next_bucket(day, grain)
    return starts


def _trend_from_journeys(j: sa.FromClause, spec: FunnelSpec, grain: str) -> sa.Select:
    """(bucket, entered, converted) per local bucket of entry."""
    local = sa.func.timezone(spec.period.tz, j.c.entry_at)
    flags = (
        sa.select(
            sa.cast(sa.func.date_trunc(grain, local), sa.Date).label("bucket"),
            reached(j, spec, len(spec.steps)).label("converted"),
        )
        .select_from(j)
        .subquery("flags")
    )
    return sa.select(flags.c.bucket, sa.func.count(), sa.func.count().filter(flags.c.converted)).group_by(
        flags.c.bucket
    )


def _trend_from_days(days: Days, grain: str) -> sa.Select:
    """``_trend_from_journeys`` from the daily step counts: each day's entries minus those whose
    previous entry is in the period."""
    st, rp, spec = s.crm_funnel_daily_steps, s.crm_funnel_daily_repeats, days.spec
    n = len(spec.steps)

    def counts(table: sa.Table, sign: int, *where: sa.ColumnElement[bool]) -> sa.Select:
        return sa.select(
            table.c.day, table.c.step, table.c.within_days, (table.c.entries * sign).label("entries")
        ).where(
            table.c.funnel_id == days.funnel_id,
            table.c.day >= days.first,
            table.c.day < days.end,
            table.c.step.in_([1, n]),
            *where,
        )

    u = sa.union_all(counts(st, 1), counts(rp, -1, rp.c.prev_day >= days.first)).subquery("counts")
    bucket = sa.cast(sa.func.date_trunc(grain, sa.cast(u.c.day, sa.DateTime)), sa.Date).label("bucket")
    entered = _total(u.c.entries, u.c.step == 1)
    converted = _total(u.c.entries, u.c.step == n, u.c.within_days <= spec.window_days)
    return sa.select(bucket, entered, converted).group_by(bucket)


def _utc_days(period: Period, starts: list[dt.date]) -> bool:
    """Whether every bucket starts at the UTC midnight of its first day (a UTC day is a local day)."""
    return all(Period(day, day, period.tz).bounds()[0] == dt.datetime.combine(day, dt.time(), dt.UTC) for day in starts)


def trend(
    conn: Connection, *, spec: FunnelSpec, grain: str = "week", source: str = "auto", now: dt.datetime | None = None
) -> pd.DataFrame:
    """Conversion from the first to the last step by local ``grain`` of entry (a day, a week
    starting Monday, or a month in the display timezone), every bucket of the period listed:
    ``bucket`` (its first day), ``entered``, ``converted``, ``conversion`` (NaN without
    entries) and ``complete`` (False while the window of its latest possible entry is still
    open at ``now``, so its conversion can still grow)."""
    if grain not in GRAINS:
        raise CrmInputError(f"Unknown trend grain {str(grain)[:20]!r}; choose from {', '.join(GRAINS)}.")
    funnel_id, days = _sources(conn, spec, source)
    starts = bucket_starts(spec.period, grain)
    if days is not None and _utc_days(spec.period, starts):
        query = _trend_from_days(days, grain)
    else:
        query = _trend_from_journeys(journeys(spec, funnel_id), spec, grain)
    counts = {bucket: (entered, converted) for bucket, entered, converted in conn.execute(query)}
    entered = pd.Series([counts.get(day, (0, 0))[0] for day in starts], dtype="int64")
    converted = pd.Series([counts.get(day, (0, 0))[1] for day in starts], dtype="int64")
    now = now or dt.datetime.now(dt.UTC)
    last_entry = [
        Period(day, min(next_bucket(day, grain) - dt.timedelta(days=1), spec.period.end), spec.period.tz).bounds()[1]
        for day in starts
    ]
    return pd.DataFrame(
        {
            "bucket": starts,
            "entered": entered,
            "converted": converted,
            "conversion": converted / entered.where(entered > 0),
            "complete": [end + spec.window <= now for end in last_entry],
        }
    )


DROP_OFF_COLUMNS = ["customer_id", "email", "full_name", "plan", "acquisition_channel", "entered_at", "reached_at"]


def drop_off(
    conn: Connection, *, spec: FunnelSpec, step: int, limit: int | None = None, source: str = "auto"
) -> pd.DataFrame:
    """Customers who reached ``step`` (1-based) but not the next one inside the window, latest
    first: the columns of DROP_OFF_COLUMNS (``reached_at``: when they reached ``step``)."""
    k = spec.step_index(step)
    if k == len(spec.steps):
        raise CrmInputError("The last step has no next step to drop off before.")
    j = journeys(spec, serving_rollup(conn, spec, source))
    u, p = s.users, s.profiles
    at = reached_at(j, k).label("reached_at")
    query = (
        sa.select(
            sa.cast(j.c.customer_id, sa.Text),
            u.c.email,
            p.c.full_name,
            p.c.plan,
            p.c.acquisition_channel,
            j.c.entry_at,
            at,
        )
        .select_from(j.join(u, u.c.id == j.c.customer_id).outerjoin(p, p.c.id == j.c.customer_id))
        .where(reached(j, spec, k), sa.not_(sa.func.coalesce(reached(j, spec, k + 1), sa.false())))
        .order_by(at.desc(), j.c.customer_id)
        .limit(limit)
    )
    frame = _frame(conn, query, DROP_OFF_COLUMNS)
    for column in ("entered_at", "reached_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def rollup_status(conn: Connection, *, steps: tuple[str, ...]) -> pd.DataFrame:
    """The roll-up that serves ``steps`` (``dashboard.domain.funnel.interactions.usable_rollup``): one row (``funnel``,
    ``refreshed_at``, ``processed_until``, ``pending_events``: interactions recorded after the
    refresh), or no rows."""
    r, i = s.crm_funnel_rollups, s.crm_interactions
    pending = sa.select(sa.func.count()).select_from(i).where(i.c.recorded_at > r.c.refreshed_at).scalar_subquery()
    query = sa.select(r.c.steps, r.c.refreshed_at, r.c.processed_until, pending).where(usable_rollup(steps))
    return _frame(conn, query, ["funnel", "refreshed_at", "processed_until", "pending_events"])


# --- the pandas peer (benchmark): the same funnel computed in pandas from raw events ----------


def funnel_in_pandas(conn: Connection, *, spec: FunnelSpec) -> pd.DataFrame:
    """``funnel()``'s ``customers`` per step, computed in pandas: read the events of the steps
    in [period start, period end + window], then take each step with ``merge_asof``."""
    i = s.crm_interactions
    start, end = spec.period.bounds()
    query = sa.select(i.c.customer_id, i.c.interaction_type, i.c.created_at).where(
        i.c.interaction_type.in_(spec.steps), i.c.created_at >= start, i.c.created_at <= end + spec.window
    )
    events = pd.read_sql(query, conn)
    events["created_at"] = pd.to_datetime(events["created_at"], utc=True)
    events["customer_id"] = events["customer_id"].astype(str)
    first = events[(events.interaction_type == spec.steps[0]) & (events.created_at < end)]
    current = first.groupby("customer_id", as_index=False)["created_at"].min()
    current = current.assign(entry_at=current.created_at, at=current.created_at)[["customer_id", "entry_at", "at"]]
    customers = [len(current)]
    for step in spec.steps[1:]:
        later = events.loc[events.interaction_type == step, ["customer_id", "created_at"]].sort_values("created_at")
        matched = pd.merge_asof(
            current.sort_values("at"), later, left_on="at", right_on="created_at", by="customer_id", direction="forward"
        )
        matched = matched[matched.created_at <= matched.entry_at + spec.window]
        current = matched.assign(at=matched.created_at)[["customer_id", "entry_at", "at"]]
        customers.append(len(current))
    return pd.DataFrame(
        {
            "step": range(1, len(spec.steps) + 1),
            "interaction_type": list(spec.steps),
            "customers": pd.Series(customers, dtype="int64"),
        }
    )
