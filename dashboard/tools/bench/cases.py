"""The cases of the query benchmark: which query of ``queries/`` runs with which arguments.

A case names one query function and builds its arguments from the connection and a
``BenchContext`` describing the loaded demo data (its period and a few sample ids), so
that each query runs with realistic filters::

    Case("reviews.mechanic_history", reviews.recent_reviews,
         lambda conn, ctx: {"mechanic_id": ctx.sample["mechanic_id"]})

Every public query function (a function of ``queries/`` taking ``conn`` first) has at
least one case; ``tests/test_bench.py`` checks it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.core import schema as s
from dashboard.core.period import Period
from dashboard.domain.emails import due
from dashboard.domain.followups import WAITING
from dashboard.domain.funnel.interactions import DEFAULT_STEPS, FunnelSpec
from queries import calendars, customers, emails, followups, funnel, mechanics, overview, reviews, upsells


@dataclass(frozen=True)
class BenchContext:
    start: dt.datetime  # first day of the demo period, UTC
    end: dt.datetime  # the demo's "now", UTC
    sample: dict = field(default_factory=dict)  # e.g. {"mechanic_id": ..., "customer_id": ...}

    @property
    def period(self) -> Period:
        """The benchmark's period as whole UTC days, the filter most pages take."""
        return Period(self.start.date(), self.end.date(), "UTC")


def bench_context(conn: Connection, days: int = 30) -> BenchContext:
    """The last ``days`` of the data, and the busiest mechanic and customer as samples."""
    end = conn.execute(sa.select(sa.func.max(s.sessions.c.created_at))).scalar() or dt.datetime.now(dt.UTC)
    mechanic = conn.execute(
        sa.select(s.mechanics.c.user_id).order_by(s.mechanics.c.total_reviews.desc()).limit(1)
    ).scalar()
    customer = conn.execute(
        sa.select(s.sessions.c.customer_id)
        .group_by(s.sessions.c.customer_id)
        .order_by(sa.func.count().desc(), s.sessions.c.customer_id)
        .limit(1)
    ).scalar()
    return BenchContext(
        start=end - dt.timedelta(days=days), end=end, sample={"mechanic_id": mechanic, "customer_id": customer}
    )


def _none(conn: Connection, ctx: BenchContext) -> dict:
    return {}


def _count(result: Any) -> int:
    """Rows of a result: a frame's or a list's length; one for a found dict or a True, else none."""
    if isinstance(result, (bool, dict)) or result is None:
        return int(bool(result))
    return len(result)


@dataclass(frozen=True)
class Case:
    name: str
    query: Callable
    arguments: Callable[[Connection, BenchContext], dict] = _none
    rows: Callable[[Any], int] = _count

    def run(self, conn: Connection, arguments: dict) -> int:
        """Run the query once with ``arguments`` (made beforehand, untimed); the rows it returned."""
        return self.rows(self.query(conn, **arguments))


def _week(ctx: BenchContext) -> dt.date:
    day = ctx.end.date()
    return day - dt.timedelta(days=day.weekday())


def _bounds(ctx: BenchContext) -> dict:
    start, end = calendars.week_bounds(_week(ctx), "UTC")
    return {"start": start, "end": end}


def _mechanics(conn: Connection, count: int) -> tuple[str, ...]:
    return tuple(calendars.mechanics(conn)["mechanic_id"].head(count))


def _mechanic(ctx: BenchContext) -> str:
    return str(ctx.sample["mechanic_id"])


def _spec(ctx: BenchContext) -> FunnelSpec:
    return FunnelSpec(DEFAULT_STEPS, ctx.period)


CASES: tuple[Case, ...] = (
    Case("calendars.mechanics", calendars.mechanics),
    Case("calendars.weekly_slots", calendars.weekly_slots, lambda conn, ctx: {"mechanic_id": _mechanic(ctx)}),
    Case(
        "calendars.overrides",
        calendars.overrides,
        lambda conn, ctx: {"mechanic_id": _mechanic(ctx), "first_day": ctx.start.date()},
    ),
    Case("calendars.base_prices", calendars.base_prices),
    Case("calendars.busiest_mechanics", calendars.busiest_mechanics, lambda conn, ctx: {**_bounds(ctx), "limit": 25}),
    Case(
        "calendars.booked_sessions_mechanic",
        calendars.booked_sessions,
        lambda conn, ctx: {"mechanic_ids": (_mechanic(ctx),), **_bounds(ctx)},
    ),
    Case(
        "calendars.booked_sessions_25",
        calendars.booked_sessions,
        lambda conn, ctx: {"mechanic_ids": _mechanics(conn, 25), **_bounds(ctx)},
    ),
    Case(
        "calendars.booked_by_hour_25",
        calendars.booked_by_hour,
        lambda conn, ctx: {"mechanic_ids": _mechanics(conn, 25), **_bounds(ctx), "tz": "America/New_York"},
    ),
    Case(
        "calendars.availability_25",
        calendars.availability,
        lambda conn, ctx: {"mechanic_ids": _mechanics(conn, 25), **_bounds(ctx)},
    ),
    Case(
        "calendars.hour_grid_all",
        calendars.hour_grid,
        lambda conn, ctx: {
            "mechanic_ids": None,
            "week_start": _week(ctx),
            "tz": "America/New_York",
            "session_minutes": 30,
        },
    ),
    Case(
        "calendars.hour_grid_mechanic",
        calendars.hour_grid,
        lambda conn, ctx: {
            "mechanic_ids": (_mechanic(ctx),),
            "week_start": _week(ctx),
            "tz": "UTC",
            "session_minutes": 30,
        },
    ),
    Case(
        "calendars.bookable_200x14",
        calendars.bookable,
        lambda conn, ctx: {"mechanic_ids": _mechanics(conn, 200), "days": 14, "session_type": "video", "now": ctx.end},
    ),
    Case(
        "calendars.preview",
        calendars.preview,
        lambda conn, ctx: {"mechanic_id": _mechanic(ctx), "days": 14, "session_type": "video", "now": ctx.end},
    ),
    Case(
        "calendars.peak_preview_25",
        calendars.peak_preview,
        lambda conn, ctx: {
            "mechanic_ids": _mechanics(conn, 25),
            "days": (0, 1, 2, 3, 4),
            "start": dt.time(17),
            "end": dt.time(20),
            "multiplier": Decimal("1.25"),
        },
    ),
    Case("calendars.pricing_audit", calendars.pricing_audit),
    Case(
        "calendars.week_prices",
        calendars.week_prices,
        lambda conn, ctx: {
            "mechanic_id": _mechanic(ctx),
            "week_start": _week(ctx),
            "tz": "America/New_York",
            "session_type": "video",
        },
    ),
    Case("customers.search_name", customers.search, lambda conn, ctx: {"text": "smith"}),
    Case("customers.search_email", customers.search, lambda conn, ctx: {"text": "james.smith1"}),
    Case("customers.customer", customers.customer, lambda conn, ctx: {"customer_id": ctx.sample["customer_id"]}),
    Case("customers.timeline", customers.timeline, lambda conn, ctx: {"customer_id": ctx.sample["customer_id"]}),
    Case(
        "customers.recommended_next",
        customers.recommended_next,
        lambda conn, ctx: {"customer_id": ctx.sample["customer_id"], "now": ctx.end},
    ),
    *(
        Case(
            f"emails.due.{milestone}",
            due.due_milestones,
            lambda conn, ctx, m=milestone: {"milestone": m, "now": ctx.end, "since": ctx.end - due.DEFAULT_LOOKBACK},
        )
        for milestone in s.EMAIL_MILESTONES
    ),
    Case("emails.outbox", emails.outbox, lambda conn, ctx: {"period": ctx.period}),
    Case("emails.status_counts_per_day", emails.status_counts_per_day, lambda conn, ctx: {"period": ctx.period}),
    *(
        Case(f"emails.{status}", emails.awaiting_decision, lambda conn, ctx, status=status: {"status": status})
        for status in emails.DECISION_STATUSES
    ),
    Case("emails.failure_groups", emails.failure_groups),
    Case(
        "emails.failed_outage",
        emails.awaiting_decision,
        lambda conn, ctx: {"status": "failed", "cause": "outage", "limit": 20},
    ),
    Case("emails.job_state", emails.job_state, lambda conn, ctx: {"now": ctx.end, "lookback": dt.timedelta(days=2)}),
    Case("followups.queue", followups.queue, lambda conn, ctx: {"now": ctx.end, "limit": 20}),
    Case(
        "followups.queue_filtered",
        followups.queue,
        lambda conn, ctx: {
            "now": ctx.end,
            "types": ("quick_question",),
            "plans": ("standard",),
            "order": "oldest",
            "limit": 20,
        },
    ),
    Case(
        "followups.queue_mechanic",
        followups.queue,
        lambda conn, ctx: {
            "now": ctx.end,
            "states": (*WAITING, "answered"),
            "mechanic_id": ctx.sample["mechanic_id"],
            "limit": 20,
        },
    ),
    Case("followups.queue_due_soon", followups.queue, lambda conn, ctx: {"now": ctx.end, "due": "soon", "limit": 20}),
    Case(
        "followups.queue_page_50",
        followups.queue,
        lambda conn, ctx: {"now": ctx.end, "order": "oldest", "limit": 10, "offset": 490},
    ),
    Case("followups.queue_size", followups.queue_size, lambda conn, ctx: {"now": ctx.end}),
    Case("followups.queue_size_overdue", followups.queue_size, lambda conn, ctx: {"now": ctx.end, "due": "overdue"}),
    Case("followups.summary", followups.summary, lambda conn, ctx: {"now": ctx.end}),
    Case("followups.assignee_options", followups.assignee_options, lambda conn, ctx: {"now": ctx.end}),
    Case(
        "followups.assignee_options_category",
        followups.assignee_options,
        lambda conn, ctx: {"now": ctx.end, "category": s.REQUEST_CATEGORIES[0]},
    ),
    Case("followups.weekly", followups.weekly, lambda conn, ctx: {"period": ctx.period}),
    Case("funnel.steps", funnel.funnel, lambda conn, ctx: {"spec": _spec(ctx)}),
    Case("funnel.steps_from_events", funnel.funnel, lambda conn, ctx: {"spec": _spec(ctx), "source": "events"}),
    Case("funnel.steps_pandas_peer", funnel.funnel_in_pandas, lambda conn, ctx: {"spec": _spec(ctx)}),
    Case(
        "funnel.breakdown_channel",
        funnel.breakdown,
        lambda conn, ctx: {"spec": _spec(ctx), "dimension": "acquisition_channel"},
    ),
    Case(
        "funnel.breakdown_specialty", funnel.breakdown, lambda conn, ctx: {"spec": _spec(ctx), "dimension": "specialty"}
    ),
    Case(
        "funnel.time_to_convert",
        funnel.time_to_convert,
        lambda conn, ctx: {"spec": _spec(ctx), "from_step": 1, "to_step": 5},
    ),
    Case("funnel.trend_day", funnel.trend, lambda conn, ctx: {"spec": _spec(ctx), "grain": "day"}),
    Case("funnel.drop_off_1000", funnel.drop_off, lambda conn, ctx: {"spec": _spec(ctx), "step": 2, "limit": 1000}),
    Case("funnel.rollup_status", funnel.rollup_status, lambda conn, ctx: {"steps": DEFAULT_STEPS}),
    Case("mechanics.leaderboard", mechanics.leaderboard),
    Case(
        "mechanics.leaderboard_specialty",
        mechanics.leaderboard,
        lambda conn, ctx: {"specialty": (mechanics.specialties(conn) or [None])[0]},
    ),
    Case("mechanics.specialties", mechanics.specialties),
    Case("mechanics.mechanic_options", mechanics.mechanic_options),
    Case("mechanics.profile", mechanics.profile, lambda conn, ctx: {"mechanic_id": ctx.sample["mechanic_id"]}),
    Case("mechanics.is_public", mechanics.is_public, lambda conn, ctx: {"mechanic_id": ctx.sample["mechanic_id"]}),
    Case(
        "mechanics.public_profile",
        mechanics.public_profile,
        lambda conn, ctx: {"mechanic_id": ctx.sample["mechanic_id"]},
    ),
    Case(
        "mechanics.published_reviews_page",
        mechanics.published_reviews_page,
        lambda conn, ctx: {"mechanic_id": ctx.sample["mechanic_id"]},
        rows=lambda page: len(page[0]),
    ),
    Case(
        "mechanics.rating_distribution",
        mechanics.rating_distribution,
        lambda conn, ctx: {"mechanic_id": ctx.sample["mechanic_id"]},
    ),
    Case(
        "mechanics.response_times",
        mechanics.response_times,
        lambda conn, ctx: {"mechanic_id": ctx.sample["mechanic_id"], "period": ctx.period},
    ),
    Case(
        "mechanics.response_summary",
        mechanics.response_summary,
        lambda conn, ctx: {"mechanic_id": ctx.sample["mechanic_id"], "period": ctx.period},
    ),
    Case("overview.kpis", overview.kpis, lambda conn, ctx: {"period": ctx.period}),
    Case("overview.sessions_per_day", overview.sessions_completed_per_day, lambda conn, ctx: {"period": ctx.period}),
    Case("overview.uncertain_emails", overview.uncertain_emails),
    Case(
        "overview.week_capacity",
        overview.week_capacity,
        lambda conn, ctx: {"week_start": _week(ctx), "tz": "UTC", "session_minutes": 30, "now": ctx.end},
    ),
    Case("reviews.queue", reviews.moderation_queue),
    Case(
        "reviews.queue_flagged_low_ratings",
        reviews.moderation_queue,
        lambda conn, ctx: {"flags": ("profanity", "personal_data"), "ratings": (1, 2)},
    ),
    Case("reviews.queue_page_50", reviews.moderation_queue, lambda conn, ctx: {"limit": 20, "offset": 980}),
    Case("reviews.queue_size", reviews.queue_size),
    Case("reviews.queue_size_published", reviews.queue_size, lambda conn, ctx: {"status": "published"}),
    Case("reviews.queue_flag_counts", reviews.queue_flag_counts),
    Case(
        "reviews.customer_history", reviews.recent_reviews, lambda conn, ctx: {"customer_id": ctx.sample["customer_id"]}
    ),
    Case(
        "reviews.mechanic_history", reviews.recent_reviews, lambda conn, ctx: {"mechanic_id": ctx.sample["mechanic_id"]}
    ),
    Case("upsells.summary", upsells.summary, lambda conn, ctx: {"period": ctx.period}),
    Case("upsells.by_service", upsells.performance, lambda conn, ctx: {"period": ctx.period, "by": "service"}),
    Case("upsells.trend_week", upsells.trend, lambda conn, ctx: {"period": ctx.period}),
    Case("upsells.by_mechanic", upsells.by_mechanic, lambda conn, ctx: {"period": ctx.period}),
    Case("upsells.revenue", upsells.revenue, lambda conn, ctx: {"period": ctx.period}),
    Case(
        "upsells.customer_cards",
        upsells.customer_cards,
        lambda conn, ctx: {"customer_id": ctx.sample["customer_id"], "now": ctx.end},
    ),
    Case(
        "upsells.recommended_next_service",
        upsells.recommended_next_service,
        lambda conn, ctx: {"customer_id": ctx.sample["customer_id"], "now": ctx.end},
    ),
    Case("upsells.catalogue", upsells.catalogue),
)
