"""The demo data generator: determinism, the invariants the app relies on, and the CLI.

Every check runs on real databases (DuckDB and PostgreSQL) at small scales.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import datetime as dt
import hashlib
import json
import subprocess
import sys
import uuid

import numpy as np
import pytest
import sqlalchemy as sa

import queries.followups
import queries.funnel
from dashboard.__main__ import main as cli
from dashboard.core import schema as s
from dashboard.core.db import make_engine
from dashboard.core.period import Period
from dashboard.domain import followups, reviews
from dashboard.domain.calendars import slots
from dashboard.domain.emails.failures import CAUSE
from dashboard.domain.emails.settings import load_email_settings
from dashboard.domain.funnel.interactions import DEFAULT_STEPS, FunnelSpec
from dashboard.tools.demo import command as demo_command
from dashboard.tools.demo import load as demo
from dashboard.tools.demo.arrays import uuids
from dashboard.tools.demo.emails import EMAIL_BACKLOG, EMAIL_MAX_ATTEMPTS
from dashboard.tools.demo.load import TABLES
from dashboard.tools.demo.mechanics import MAX_WAIT_DAYS, Mechanics
from dashboard.tools.demo.plan import HISTORY_DAYS, UPCOMING_DAYS, Plan
from dashboard.tools.demo.vocabulary import STAFF
from tests.browser_support import DEMO_SCALE

ANCHOR = dt.date(2026, 3, 15)
NOW = dt.datetime(2026, 3, 15, tzinfo=dt.UTC)
SMALL = 0.02  # 100 customers


def _load(engine, scale=SMALL, seed=7, **kw):
    return demo.generate(engine, scale, seed, anchor=ANCHOR, progress=False, **kw)


def _scalar(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def _fingerprint(engine) -> dict:
    """Row counts, a few sums, and a digest of every id and of the JSON and array columns."""
    out: dict = {}
    with engine.connect() as conn:
        for table in TABLES:
            out[table.name] = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        out["price_cents"] = conn.execute(sa.select(sa.func.sum(s.sessions.c.price_cents))).scalar_one()
        out["ratings"] = conn.execute(sa.select(sa.func.sum(s.mechanic_reviews.c.rating))).scalar_one()
        for column in (s.users.c.id, s.sessions.c.id, s.crm_interactions.c.id, s.mechanic_reviews.c.id):
            ids = sorted(str(v) for v in conn.execute(sa.select(column)).scalars())
            out[str(column)] = hashlib.sha256("\n".join(ids).encode()).hexdigest()
        for column, key in (
            (s.crm_interactions.c.metadata, s.crm_interactions.c.id),
            (s.mechanics.c.specialties, s.mechanics.c.user_id),
            (s.mechanic_reviews.c.flags, s.mechanic_reviews.c.id),
        ):
            rows = sorted((str(k), json.dumps(v, sort_keys=True)) for k, v in conn.execute(sa.select(key, column)))
            out[str(column)] = hashlib.sha256(repr(rows).encode()).hexdigest()
        for column, key in (
            (s.sessions.c.scheduled_at, s.sessions.c.id),
            (s.requests.c.answered_at, s.requests.c.id),
            (s.email_outbox.c.next_attempt_at, s.email_outbox.c.id),
        ):
            rows = sorted(
                (str(k), v and v.astimezone(dt.UTC).isoformat()) for k, v in conn.execute(sa.select(key, column))
            )
            out[str(column)] = hashlib.sha256(repr(rows).encode()).hexdigest()
        for column in (s.requests.c.follow_up_state, s.email_outbox.c.status):
            out[str(column)] = sorted(
                (str(v), n) for v, n in conn.execute(sa.select(column, sa.func.count()).group_by(column))
            )
    return out


# --- determinism -------------------------------------------------------------------------


def test_ids_are_version_4_uuids_from_the_seeded_generator():
    ids = uuids(np.random.default_rng(3), 4).to_pylist()
    raw = np.random.default_rng(3).integers(0, 256, size=(4, 16), dtype=np.uint8)
    assert ids == [str(uuid.UUID(bytes=bytes(row), version=4)) for row in raw]


# Scale 0.05, seed 7, ANCHOR: computed when the generator was one module, kept so that
# reorganising its code cannot change the data (a deliberate change of the data updates them).
PINNED_COUNTS = {
    "users": 257,
    "profiles": 250,
    "mechanic_availability_slots": 60,
    "mechanic_availability_overrides": 33,
    "requests": 608,
    "sessions": 436,
    "session_files": 190,
    "session_extensions": 50,
    "mechanic_reviews": 233,
    "upsell_recommendations": 628,
    "crm_interactions": 9172,
    "email_outbox": 2127,
    "mechanics": 7,
    "crm_funnel_progress": 1216,
    "kpi_buckets": 655,  # the Overview's 15-minute roll-up, rebuilt at the end of the load (no intake requests)
    "staff_roles": 3,
}
PINNED_DIGESTS = {
    "users": (257, "2da337fb2ff73a9f"),
    "profiles": (250, "d51cb1c64df7fdf3"),
    "mechanic_availability_slots": (60, "8b215edb67d11e29"),
    "mechanic_availability_overrides": (33, "980b601a625cf491"),
    "requests": (608, "54e6e6659fc7721f"),
    "sessions": (436, "31991de9b0cd40ff"),
    "session_files": (190, "f1c56d7e4088d5e1"),
    "session_extensions": (50, "6b0efb0a758e2d7d"),
    "mechanic_reviews": (233, "490286d496635b0a"),
    "upsell_recommendations": (628, "6c34a7ca2b7d71a2"),
    "crm_interactions": (9172, "05e13bb8864c5443"),
    "email_outbox": (2127, "4ce0eb3296c8021b"),  # with the cause of each failed one (step 22)
    "mechanics": (7, "35062e0282b303b0"),
}


def _table_digests(engine) -> dict[str, tuple[int, str]]:
    """Per demo table: rows, and a digest of every column the generator writes, in key order."""

    def cell(value) -> str:
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.UTC).isoformat()
        return json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)

    out = {}
    with engine.connect() as conn:
        for table in TABLES:
            columns = [c for c in table.columns if c is not s.crm_interactions.c.recorded_at]  # the database's
            rows = conn.execute(sa.select(*columns).order_by(*table.primary_key.columns)).all()
            text = "\n".join("\t".join(cell(v) for v in row) for row in rows)
            out[table.name] = (len(rows), hashlib.sha256(text.encode()).hexdigest()[:16])
    return out


def test_the_data_of_a_seed_stays_what_it_was(engine):
    assert demo.generate(engine, 0.05, 7, anchor=ANCHOR, progress=False) == PINNED_COUNTS
    assert _table_digests(engine) == PINNED_DIGESTS


def test_same_seed_and_anchor_reload_identically(engine):
    counts = _load(engine)
    first = _fingerprint(engine)
    progress = _scalar(engine, "SELECT count(*) FROM crm_funnel_progress")
    buckets = _scalar(engine, "SELECT count(*) FROM kpi_buckets")
    assert counts == {
        **{t.name: first[t.name] for t in TABLES},
        "staff_roles": len(STAFF),
        "crm_funnel_progress": progress,
        "kpi_buckets": buckets,
    }
    assert _load(engine, replace=True) == counts
    assert _fingerprint(engine) == first
    _load(engine, seed=8, replace=True)
    other = _fingerprint(engine)
    assert other[str(s.sessions.c.id)] != first[str(s.sessions.c.id)]
    assert other["price_cents"] != first["price_cents"]


def test_both_backends_hold_identical_data(pg_engine, tmp_path):
    duck = make_engine(f"duckdb:///{tmp_path / 'demo.duckdb'}")
    _load(duck)
    _load(pg_engine)
    assert _fingerprint(duck) == _fingerprint(pg_engine)
    duck.dispose()


# --- invariants ------------------------------------------------------------------------------


def _violations(engine, checks: dict[str, str], **params) -> dict[str, int]:
    with engine.connect() as conn:
        found = {name: conn.execute(sa.text(sql), {"now": NOW, **params}).scalar_one() for name, sql in checks.items()}
    return {name: n for name, n in found.items() if n}


def test_mechanic_ratings_match_published_reviews(engine):
    _load(engine)
    assert _scalar(engine, "SELECT count(*) FROM mechanic_reviews WHERE status = 'published'") > 0
    assert not _violations(
        engine,
        {
            "rating aggregate": """
        SELECT count(*) FROM mechanics m LEFT JOIN (
            SELECT mechanic_id, count(*) AS n, sum(rating) AS total
            FROM mechanic_reviews WHERE status = 'published' GROUP BY mechanic_id
        ) r ON r.mechanic_id = m.user_id
        WHERE m.total_reviews <> coalesce(r.n, 0)
           OR abs(m.avg_rating * coalesce(r.n, 0) - coalesce(r.total, 0)) > 0.005 * coalesce(r.n, 0)
           OR (r.n IS NULL AND m.avg_rating <> 0)"""
        },
    )


def test_slots_and_overrides_are_valid(engine):
    _load(engine)
    assert not _violations(
        engine,
        {
            "overlapping slots": """
            SELECT count(*) FROM mechanic_availability_slots a JOIN mechanic_availability_slots b
              ON a.mechanic_id = b.mechanic_id AND a.day_of_week = b.day_of_week AND a.id <> b.id
             AND a.start_time < b.end_time AND b.start_time < a.end_time""",
            "multiplier out of range or not two decimals": """
            SELECT count(*) FROM mechanic_availability_slots
            WHERE price_multiplier < 0.5 OR price_multiplier > 3
               OR price_multiplier * 100 <> round(price_multiplier * 100)""",
            "slot of an unknown mechanic": """
            SELECT count(*) FROM mechanic_availability_slots a
            LEFT JOIN mechanics m ON m.user_id = a.mechanic_id WHERE m.user_id IS NULL""",
            "duplicate override": """
            SELECT count(*) FROM (SELECT mechanic_id, date FROM mechanic_availability_overrides
                                  GROUP BY 1, 2 HAVING count(*) > 1) d""",
            "override without reason": "SELECT count(*) FROM mechanic_availability_overrides WHERE reason IS NULL",
        },
    )
    peak = _scalar(engine, "SELECT count(*) FROM mechanic_availability_slots WHERE price_multiplier > 1")
    assert peak > 0


def test_references_resolve(engine):
    """DuckDB has no foreign keys, so the generator must get every reference right itself."""
    _load(engine)
    orphans = {
        f"{table}.{column}": f"""SELECT count(*) FROM {table} c LEFT JOIN {parent} p ON p.{key} = c.{column}
                                  WHERE c.{column} IS NOT NULL AND p.{key} IS NULL"""
        for table, column, parent, key in (
            ("sessions", "customer_id", "users", "id"),
            ("sessions", "request_id", "requests", "id"),
            ("sessions", "mechanic_id", "mechanics", "user_id"),
            ("requests", "customer_id", "users", "id"),
            ("profiles", "id", "users", "id"),
            ("mechanics", "user_id", "users", "id"),
            ("crm_interactions", "customer_id", "users", "id"),
            ("crm_interactions", "session_id", "sessions", "id"),
            ("mechanic_reviews", "session_id", "sessions", "id"),
            ("email_outbox", "session_id", "sessions", "id"),
            ("upsell_recommendations", "session_id", "sessions", "id"),
            ("session_files", "session_id", "sessions", "id"),
            ("session_extensions", "session_id", "sessions", "id"),
        )
    }
    if engine.dialect.name == "postgresql":  # auth.users lives in its own schema there
        orphans = {k: v.replace("JOIN users", "JOIN auth.users") for k, v in orphans.items()}
    assert not _violations(engine, orphans)


def test_journeys_are_consistent(engine):
    _load(engine, scale=0.1)
    with engine.connect() as conn:
        funnel = conn.execute(
            sa.text("""
            SELECT count(DISTINCT CASE WHEN interaction_type = 'intake' THEN customer_id END),
                   count(DISTINCT CASE WHEN interaction_type = 'session' THEN customer_id END),
                   count(DISTINCT CASE WHEN interaction_type = 'purchase' THEN customer_id END)
            FROM crm_interactions""")
        ).one()
    assert funnel[0] >= funnel[1] >= funnel[2] > 0
    assert not _violations(
        engine,
        {
            "session timestamps out of order": """
            SELECT count(*) FROM sessions WHERE accepted_at < created_at OR started_at < scheduled_at
               OR started_at < accepted_at OR ended_at < started_at OR summary_submitted_at < ended_at""",
            "status and timestamps disagree": """
            SELECT count(*) FROM sessions WHERE
                (status = 'completed' AND (ended_at IS NULL OR ended_at >= :now))
             OR (status IN ('pending', 'scheduled', 'accepted') AND (started_at IS NOT NULL))
             OR (status IN ('pending', 'scheduled') AND accepted_at IS NOT NULL)
             OR (status = 'pending' AND mechanic_id IS NOT NULL)
             OR (status = 'live' AND (started_at IS NULL OR started_at > :now OR ended_at IS NOT NULL))
             OR (status = 'cancelled' AND started_at IS NOT NULL)
             OR (findings IS NULL) <> (summary_submitted_at IS NULL)
             OR scheduled_at >= :now + INTERVAL '14 days'""",
            "request status disagrees with its session": """
            SELECT count(*) FROM sessions x JOIN requests r ON r.id = x.request_id
            WHERE (x.status = 'completed') <> (r.status = 'completed')
               OR (x.status = 'cancelled' AND r.status <> 'cancelled')""",
            "follow-up parent not a completed session of the same customer": """
            SELECT count(*) FROM requests r LEFT JOIN sessions p ON p.id = r.parent_session_id
            WHERE r.is_follow_up AND (p.id IS NULL OR p.status <> 'completed'
                  OR p.customer_id <> r.customer_id OR r.created_at <= p.ended_at)""",
            "event in the future": """
            SELECT (SELECT count(*) FROM crm_interactions WHERE created_at >= :now)
                 + (SELECT count(*) FROM requests WHERE created_at >= :now)
                 + (SELECT count(*) FROM mechanic_reviews WHERE created_at >= :now)
                 + (SELECT count(*) FROM email_outbox WHERE created_at >= :now)""",
            "review before its session ended": """
            SELECT count(*) FROM mechanic_reviews v JOIN sessions x ON x.id = v.session_id
            WHERE x.status <> 'completed' OR v.created_at < x.ended_at OR v.mechanic_id <> x.mechanic_id""",
            "'session' interaction not at the end of a completed session": """
            SELECT count(*) FROM crm_interactions i JOIN sessions x ON x.id = i.session_id
            WHERE i.interaction_type = 'session' AND (x.status <> 'completed' OR i.created_at <> x.ended_at)""",
            "upsell before the summary": """
            SELECT count(*) FROM upsell_recommendations u JOIN sessions x ON x.id = u.session_id
            WHERE x.summary_submitted_at IS NULL OR u.shown_at < x.summary_submitted_at
               OR u.clicked_at < u.shown_at OR u.purchased_at < u.clicked_at
               OR (u.purchased_at IS NOT NULL AND u.clicked_at IS NULL)""",
            "purchase without its interaction": """
            SELECT count(*) FROM upsell_recommendations u
            WHERE u.purchased_at IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM crm_interactions i WHERE i.interaction_type = 'purchase'
                   AND i.session_id = u.session_id AND i.created_at = u.purchased_at)""",
            "purchase interaction without a purchase": """
            SELECT (SELECT count(*) FROM crm_interactions
                    WHERE interaction_type = 'purchase' AND metadata->>'follow_up_id' IS NULL)
                 - (SELECT count(*) FROM upsell_recommendations WHERE purchased_at IS NOT NULL)""",
        },
    )
    assert _scalar(engine, "SELECT count(*) FROM requests WHERE is_follow_up") > 0


def test_emails_staff_and_settings(engine):
    _load(engine)
    assert not _violations(
        engine,
        {
            "skipped for a customer who did not opt out": """
            SELECT count(*) FROM email_outbox e JOIN sessions x ON x.id = e.session_id
            JOIN profiles p ON p.id = x.customer_id
            WHERE e.status = 'skipped' AND (NOT p.email_opt_out OR e.skip_reason IS NULL)""",
            "sent without a send time or provider id": """
            SELECT count(*) FROM email_outbox WHERE status = 'sent'
               AND (sent_at IS NULL OR provider_message_id IS NULL OR sent_at < created_at)""",
            "failed without an error": """
            SELECT count(*) FROM email_outbox WHERE status = 'failed' AND (last_error IS NULL OR attempts = 0)""",
            "milestone before its event": """
            SELECT count(*) FROM email_outbox e JOIN sessions x ON x.id = e.session_id
            WHERE (e.milestone = 'session_ended' AND e.created_at <> x.ended_at)
               OR (e.milestone = 'summary_delivered' AND e.created_at <> x.summary_submitted_at)""",
        },
    )
    assert _scalar(engine, "SELECT count(*) FROM email_outbox WHERE status = 'skipped'") > 0
    with engine.connect() as conn:  # the cause the job stores with a failure, as its error reads
        stored = conn.execute(
            sa.select(s.email_outbox.c.status, s.email_outbox.c.failure_cause, CAUSE.label("read"))
            .distinct()
            .where(s.email_outbox.c.failure_cause.is_not(None) | (s.email_outbox.c.status == "failed"))
        ).all()
    assert stored and all(status == "failed" and cause == read for status, cause, read in stored)
    assert _scalar(engine, "SELECT count(*) FROM audit_log") == 0
    assert _scalar(engine, "SELECT role FROM staff_roles WHERE email = 'admin@pitwall.demo'") == "admin"
    assert _scalar(engine, "SELECT count(*) FROM session_base_prices") == len(s.SESSION_TYPES)
    assert (
        _scalar(engine, "SELECT count(DISTINCT recommendation_type) FROM upsell_services WHERE is_active")
        == _scalar(engine, "SELECT count(*) FROM upsell_services WHERE is_active")
        == len(s.RECOMMENDATION_TYPES)
    )


def test_flagged_reviews_contain_what_is_flagged(engine):
    _load(engine, scale=0.3)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                s.mechanic_reviews.c.id,
                s.mechanic_reviews.c.flags,
                s.mechanic_reviews.c.review_text,
                s.mechanic_reviews.c.rating,
                s.mechanic_reviews.c.status,
            ).where(s.mechanic_reviews.c.flags.isnot(None))
        ).all()
    seen = set()
    for _, flags, text, rating, _status in rows:
        seen.update(flags)
        found = reviews.flags_for(text, rating)  # the app's own rule, on the text alone
        assert set(flags) - {"duplicate_text", "review_burst"} <= set(found), (flags, text, rating)
    assert seen == {"personal_data", "link_or_promo", "profanity", "short_negative", "duplicate_text", "review_burst"}
    assert {r.status for r in rows} >= {"pending"}
    assert not _violations(
        engine,
        {
            "duplicate_text without a twin": """
            SELECT count(*) FROM mechanic_reviews r WHERE r.flags IS NOT NULL
              AND array_to_string(r.flags, ',') LIKE '%duplicate_text%'
              AND NOT EXISTS (SELECT 1 FROM mechanic_reviews o WHERE o.id <> r.id
                              AND o.review_text = r.review_text AND o.text_fingerprint = r.text_fingerprint)""",
            "review_burst without three reviews by the customer in the day before": """
            SELECT count(*) FROM mechanic_reviews r WHERE r.flags IS NOT NULL
              AND array_to_string(r.flags, ',') LIKE '%review_burst%'
              AND (SELECT count(*) FROM mechanic_reviews o WHERE o.customer_id = r.customer_id
                   AND o.created_at >= r.created_at - INTERVAL '24 hours' AND o.created_at < r.created_at) < 3""",
            "hidden without moderation": """
            SELECT count(*) FROM mechanic_reviews WHERE status = 'hidden'
               AND (moderated_by IS NULL OR moderated_at IS NULL OR moderated_at < created_at)""",
        },
    )
    assert _scalar(engine, "SELECT count(*) FROM mechanic_reviews WHERE status = 'hidden'") > 0


# --- what the feature pages rely on: bookings, follow-ups, the outbox ----------------------------

MID = 0.3  # 1,500 customers and 25 mechanics: enough bookings, follow-ups and emails to check


def test_booking_never_gives_two_sessions_one_start_even_when_demand_exceeds_capacity():
    plan = Plan(SMALL, 7, ANCHOR)
    mechanics = Mechanics(plan)
    wanted = np.full(2000, plan.now - np.timedelta64(3, "D"))  # everyone at once, for right now
    mech, at, _ = mechanics.book(np.random.default_rng(1), wanted, np.zeros(2000, int), np.ones(2000, bool))
    booked = mech >= 0
    assert 0 < booked.sum() < 2000  # the others found no mechanic free within the wait: no session
    assert (at[booked] >= wanted[booked]).all()
    assert (at[booked] <= wanted[booked] + np.timedelta64(MAX_WAIT_DAYS, "D")).all()
    order = np.lexsort((at[booked], mech[booked]))
    same_mechanic = np.diff(mech[booked][order]) == 0
    rules = slots.SlotRules()
    hold = np.timedelta64(rules.session_minutes + 2 * rules.buffer_minutes, "m")
    assert (np.diff(at[booked][order])[same_mechanic] >= hold).all()


def test_bookings_never_overlap_and_cost_the_apps_price(engine):
    _load(engine, scale=MID)
    rules = slots.SlotRules()
    assert not _violations(
        engine,
        {
            "sessions of a mechanic whose windows with buffers overlap": """
        SELECT count(*) FROM sessions a JOIN sessions b ON b.mechanic_id = a.mechanic_id AND a.id < b.id
        WHERE a.status <> 'cancelled' AND b.status <> 'cancelled'
          AND b.scheduled_at < a.scheduled_at + :hold AND a.scheduled_at < b.scheduled_at + :hold"""
        },
        hold=dt.timedelta(minutes=rules.session_minutes + 2 * rules.buffer_minutes),
    )
    first, days = ANCHOR - dt.timedelta(days=HISTORY_DAYS + 2), HISTORY_DAYS + UPCOMING_DAYS + 4
    x = s.sessions
    with engine.connect() as conn:
        base = slots.base_prices(conn)
        rows = conn.execute(
            sa.select(x.c.mechanic_id, x.c.session_type, x.c.scheduled_at, x.c.price_cents).where(
                x.c.mechanic_id.isnot(None)
            )
        ).all()
        calendars = slots.load_calendars(conn, list({r.mechanic_id for r in rows}), first, days, bookings=False)
    windows = {m: slots.availability_windows(cal, first, days) for m, cal in calendars.items()}
    starts = {m: [w.start for w in found] for m, found in windows.items()}
    outside, mispriced, peak = 0, 0, 0
    for row in rows:  # the app's slot rules: each start lies in an availability window, at its price
        i = bisect.bisect_right(starts[row.mechanic_id], row.scheduled_at) - 1
        window = windows[row.mechanic_id][i] if i >= 0 else None
        if window is None or row.scheduled_at >= window.end:
            outside += 1
            continue
        mispriced += row.price_cents != slots.price_cents(base[row.session_type], window.multiplier)
        peak += window.multiplier != 1
    assert (outside, mispriced) == (0, 0)
    assert len(rows) > 1000 and peak > 100


def test_follow_ups_move_through_the_lifecycle(engine):
    _load(engine, scale=1)  # enough follow-ups for some to wait at the anchor
    rules = followups.FollowUpRules()
    r, p, x = s.requests, s.profiles, s.sessions
    with engine.connect() as conn:
        prices = followups.prices(conn)
        rows = conn.execute(
            sa.select(r, p.c.plan, x.c.mechanic_id.label("parent_mechanic_id"))
            .join(p, p.c.id == r.c.customer_id)
            .join(x, x.c.id == r.c.parent_session_id)
            .where(r.c.is_follow_up)
        ).all()
        summary = queries.followups.summary(conn, now=NOW).iloc[0]
    steps = ("assigned_at", "answered_at", "closed_at", "cancelled_at")
    taken = {  # the steps each state has taken; a cancelled follow-up may have been assigned first
        "open": set(),
        "assigned": {"assigned_at"},
        "answered": {"assigned_at", "answered_at"},
        "closed": {"assigned_at", "answered_at", "closed_at"},
        "cancelled": {"cancelled_at"},
    }
    wrong = []
    oldest_waiting = NOW - dt.timedelta(days=rules.window_days)
    for row in rows:
        state = row.follow_up_state
        done = {step for step in steps if getattr(row, step)}
        times = [row.created_at, *(getattr(row, step) for step in steps if step in done)]
        problems = {
            "status": row.status != followups.PLATFORM_STATUS[state],
            "steps": done - ({"assigned_at"} if state == "cancelled" else set()) != taken[state],
            "assignee": (row.assigned_at is None) != (row.assigned_mechanic_id is None),
            "order": times != sorted(times) or times[-1] >= NOW or row.updated_at != times[-1],
            "reason": (row.cancel_reason is None) == (state == "cancelled"),
            "waiting too long": state in followups.WAITING and row.created_at < oldest_waiting,
            "price": row.follow_up_price_cents != prices[row.plan, row.follow_up_type].cents,
        }
        if any(problems.values()):
            wrong.append((row.id, row.follow_up_state, [k for k, v in problems.items() if v]))
    assert not wrong
    states = collections.Counter(row.follow_up_state for row in rows)
    answered = [row for row in rows if row.answered_at]
    on_time = sum(
        row.answered_at <= row.created_at + dt.timedelta(minutes=rules.sla(row.follow_up_type)) for row in answered
    )
    assigned = [row for row in rows if row.assigned_at]
    assert states["closed"] > len(rows) / 2 and states["cancelled"] > 0 and on_time > 0.7 * len(answered)
    assert sum(row.assigned_mechanic_id == row.parent_mechanic_id for row in assigned) > 0.8 * len(assigned)
    assert summary.waiting > summary.breached > 0


def test_paid_answered_follow_ups_have_one_purchase_each(engine):
    _load(engine, scale=MID)
    assert not _violations(
        engine,
        {
            "paid answered follow-up without exactly one purchase": """
            SELECT count(*) FROM requests r
            WHERE r.is_follow_up AND r.follow_up_state IN ('answered', 'closed') AND r.follow_up_price_cents > 0
              AND (SELECT count(*) FROM crm_interactions i WHERE i.interaction_type = 'purchase'
                     AND i.metadata->>'follow_up_id' = CAST(r.id AS TEXT) AND i.customer_id = r.customer_id
                     AND i.session_id = r.parent_session_id AND i.created_at = r.answered_at
                     AND i.metadata->>'follow_up_type' = r.follow_up_type
                     AND CAST(i.metadata->>'price_cents' AS INTEGER) = r.follow_up_price_cents) <> 1""",
            "purchase of a follow-up that is free or not answered": """
            SELECT count(*) FROM crm_interactions i
            LEFT JOIN requests r ON CAST(r.id AS TEXT) = i.metadata->>'follow_up_id'
            WHERE i.interaction_type = 'purchase' AND i.metadata->>'follow_up_id' IS NOT NULL
              AND (r.id IS NULL OR r.follow_up_state NOT IN ('answered', 'closed') OR r.follow_up_price_cents = 0)""",
        },
    )
    assert _scalar(engine, "SELECT count(*) FROM crm_interactions WHERE metadata->>'follow_up_id' IS NOT NULL") > 0


def test_outbox_has_work_waiting_around_now(engine):
    _load(engine, scale=MID)
    attempts = load_email_settings({}, {}).max_attempts
    assert EMAIL_MAX_ATTEMPTS == attempts
    assert not _violations(
        engine,
        {
            "two rows for one email": """
            SELECT count(*) FROM (SELECT session_id, milestone, recipient FROM email_outbox
                                  GROUP BY session_id, milestone, recipient HAVING count(*) > 1) d""",
            "pending row not due around now, tried too often or half sent": """
            SELECT count(*) FROM email_outbox WHERE status = 'pending'
               AND (created_at < :now - :backlog OR attempts >= :attempts OR next_attempt_at < created_at
                    OR (attempts = 0) <> (last_error IS NULL) OR sent_at IS NOT NULL
                    OR provider_message_id IS NOT NULL)""",
            "failed after too many or no attempts": """
            SELECT count(*) FROM email_outbox WHERE status = 'failed' AND (attempts < 1 OR attempts > :attempts)""",
        },
        backlog=EMAIL_BACKLOG.item(),
        attempts=attempts,
    )
    with engine.connect() as conn:
        found = dict(
            conn.execute(
                sa.text("""
            SELECT CASE WHEN status = 'failed' AND attempts < :attempts THEN 'refused' ELSE status END, count(*)
            FROM email_outbox GROUP BY 1"""),
                {"attempts": attempts},
            ).all()
        )
    assert min(found.get(k, 0) for k in ("pending", "refused", "failed", "sent", "skipped")) > 0


# --- whatever the date: the rows the pages and journeys need -------------------------------------

# Anchors with a daylight-saving change in Europe and in America, a new year and a leap day.
ANCHORS = [dt.date(2026, 3, 29), dt.date(2026, 11, 1), dt.date(2027, 1, 1), dt.date(2028, 2, 29)]
TEST_SCALE = float(DEMO_SCALE)  # what the app, browser and journey tests load
RECENT = """(SELECT count(*) FROM {table} WHERE {column} >= :since AND {column} < :now{also})"""
NEEDED_AT_ANY_SCALE = {  # kind of row -> the page or journey that shows it
    "completed sessions in the default 30 days (overview chart)": RECENT.format(
        table="sessions", column="ended_at", also=" AND status = 'completed'"
    ),
    "intakes in the default 30 days (funnel)": RECENT.format(
        table="crm_interactions", column="created_at", also=" AND interaction_type = 'intake'"
    ),
    "intakes in the default 30 days that got no session (drop-off list)": """
        SELECT count(*) FROM crm_interactions i WHERE i.interaction_type = 'intake'
           AND i.created_at >= :since AND i.created_at < :now AND NOT EXISTS (
               SELECT 1 FROM crm_interactions x WHERE x.customer_id = i.customer_id
                  AND x.interaction_type = 'session')""",
    "upsells shown in the default 30 days (upsells)": RECENT.format(
        table="upsell_recommendations", column="shown_at", also=""
    ),
    "upsells clicked in the default 30 days (upsells click rate)": RECENT.format(
        table="upsell_recommendations", column="clicked_at", also=""
    ),
    "flagged reviews waiting (review moderation)": (
        "SELECT count(*) FROM mechanic_reviews WHERE status = 'pending' AND flags IS NOT NULL"
    ),
    "published reviews in the default 30 days (overview, mechanic profiles)": RECENT.format(
        table="mechanic_reviews", column="created_at", also=" AND status = 'published'"
    ),
    "emails queued in the default 30 days (emails)": RECENT.format(table="email_outbox", column="created_at", also=""),
    "failed emails (emails retry)": "SELECT count(*) FROM email_outbox WHERE status = 'failed'",
    "follow-ups asked in the default 30 days (follow-ups chart)": RECENT.format(
        table="requests", column="created_at", also=" AND is_follow_up"
    ),
    "days off in the coming two weeks (calendars)": """
        SELECT count(*) FROM mechanic_availability_overrides WHERE date >= :today AND date < :today + 14""",
    "customers with a completed session (customer lookup)": (
        "SELECT count(DISTINCT customer_id) FROM sessions WHERE status = 'completed'"
    ),
}
NEEDED_AT_SCALE_1 = {  # what `make run` shows besides (the tests create their own such rows)
    "follow-ups waiting for an answer (follow-ups queue)": (
        "SELECT count(*) FROM requests WHERE is_follow_up AND follow_up_state IN ('open', 'assigned')"
    ),
    "emails due in the outbox (emails run now)": "SELECT count(*) FROM email_outbox WHERE status = 'pending'",
    "sessions booked ahead (calendars)": "SELECT count(*) FROM sessions WHERE scheduled_at >= :now",
    "hidden reviews (moderation, hidden)": "SELECT count(*) FROM mechanic_reviews WHERE status = 'hidden'",
}


def _missing_kinds(engine, anchor: dt.date, checks: dict[str, str]) -> list[str]:
    now = dt.datetime(anchor.year, anchor.month, anchor.day, tzinfo=dt.UTC)
    params = {"now": now, "since": now - dt.timedelta(days=30), "today": anchor}
    with engine.connect() as conn:
        missing = [kind for kind, sql in checks.items() if not conn.execute(sa.text(sql), params).scalar_one()]
        without_slots = conn.execute(
            sa.text("""
            SELECT count(*) FROM mechanics m WHERE m.is_active AND NOT EXISTS (
                SELECT 1 FROM mechanic_availability_slots a WHERE a.mechanic_id = m.user_id)""")
        ).scalar_one()
        roles = set(conn.execute(sa.select(s.staff_roles.c.role)).scalars())
    if without_slots:
        missing.append(f"weekly slots of {without_slots} active mechanics (calendars)")
    if roles != {"admin", "support", "manager"}:
        missing.append("a demo staff member of every role")
    return missing


@pytest.mark.parametrize("anchor", ANCHORS, ids=str)
def test_every_kind_of_row_the_pages_and_journeys_need_is_there_on_any_day(duckdb_engine, anchor):
    """At the tests' scale; one backend is enough, as both hold identical data."""
    demo.generate(duckdb_engine, TEST_SCALE, anchor=anchor, progress=False)
    assert _missing_kinds(duckdb_engine, anchor, NEEDED_AT_ANY_SCALE) == []


def test_the_default_demo_has_work_waiting_right_now(duckdb_engine):
    """Scale 1 is slower to load: one more anchor than the follow-up lifecycle test's."""
    anchor = ANCHORS[1]
    demo.generate(duckdb_engine, 1, anchor=anchor, progress=False)
    assert _missing_kinds(duckdb_engine, anchor, NEEDED_AT_SCALE_1) == []


# --- loading once, and the command line ---------------------------------------------------------


def test_the_funnel_roll_up_is_built_with_the_data(engine):
    """The funnel page reads the roll-up; right after a load it must agree with the raw events."""
    counts = _load(engine)
    with engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(s.crm_funnel_progress)).scalar_one()
        spec = FunnelSpec(DEFAULT_STEPS, Period(ANCHOR - dt.timedelta(days=60), ANCHOR, "America/New_York"))
        rolled = queries.funnel.funnel(conn, spec=spec, source="rollup")
        raw = queries.funnel.funnel(conn, spec=spec, source="events")
    assert counts["crm_funnel_progress"] == stored > 0
    assert rolled.customers.tolist() == raw.customers.tolist() and raw.customers.iloc[0] > 0


def test_load_if_empty_loads_once(engine):
    assert demo.load_if_empty(engine, SMALL, progress=False) is True
    users = _scalar(engine, "SELECT count(*) FROM mechanic_reviews")
    assert demo.load_if_empty(engine, SMALL, progress=False) is False
    assert _scalar(engine, "SELECT count(*) FROM mechanic_reviews") == users


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    demo_command.add_arguments(parser)
    return parser


def _cli(url: str, *args: str) -> int:
    """``python -m dashboard demo`` on ``url``, in this process."""
    return cli(["demo", "--database", url, "--scale", str(SMALL), "--anchor", ANCHOR.isoformat(), *args])


def _session_ids(url: str) -> list[str]:
    engine = make_engine(url)
    with engine.connect() as conn:
        ids = sorted(str(v) for v in conn.execute(sa.select(s.sessions.c.id)).scalars())
    engine.dispose()
    return ids


def test_cli_refuses_a_database_with_data_unless_replace(empty_url, capsys):
    assert _cli(empty_url) == 0
    before = _session_ids(empty_url)
    capsys.readouterr()
    assert _cli(empty_url, "--seed", "8") == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and "--replace" in err
    assert _session_ids(empty_url) == before
    assert _cli(empty_url, "--seed", "8", "--replace") == 0
    assert _session_ids(empty_url) != before


# The command line checks the connection before the run: one line, exit 2.
def test_cli_one_line_error_when_postgres_is_unreachable(capsys):
    assert _cli("postgresql+psycopg://postgres@127.0.0.1:1/none") == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and "Traceback" not in err


def test_cli_one_line_error_when_duckdb_file_is_locked(tmp_path, capsys):
    path = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('ok', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ok"
        assert _cli(f"duckdb:///{path}") == 2
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and "another process" in err


@pytest.mark.parametrize("scale", ["0", "-1", "1001", "abc", "nan"])
def test_cli_rejects_bad_scale(scale, capsys):
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args(["--scale", scale])
    assert exit_.value.code == 2
    assert "--scale" in capsys.readouterr().err
