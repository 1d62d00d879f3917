"""Customers and their journeys: intake requests, sessions, follow-up requests and their
lifecycle; the rows of users, profiles, requests, sessions, session files and extensions."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from dashboard.core import schema as s
from dashboard.domain import followups
from dashboard.domain.calendars.slots import price_cents
from dashboard.tools.demo.arrays import (
    NAT,
    day_of_week,
    fill,
    flat,
    join,
    minutes,
    null_unless,
    pick,
    take,
    take_or_null,
    text,
    ts,
    utc_offset_minutes,
    uuids,
)
from dashboard.tools.demo.mechanics import Mechanics
from dashboard.tools.demo.plan import HISTORY_DAYS, Plan
from dashboard.tools.demo.vocabulary import (
    BASE_PRICE_CENTS,
    CATEGORY_LABELS,
    CATEGORY_WEIGHTS,
    CHANNEL_WEIGHTS,
    CLASSICS,
    CONTEXTS,
    CUSTOMER_FILES,
    CUSTOMER_ZONES,
    FINDINGS,
    FIRST_NAMES,
    FOLLOW_UP_CANCEL_REASONS,
    FOLLOW_UP_TEXTS,
    HOUR_WEIGHTS,
    LAST_NAMES,
    MECHANIC_FILES,
    NEXT_STEPS,
    PARTS,
    STEPS_TAKEN,
    SYMPTOMS,
    VEHICLES,
)

FOLLOW_UP_RULES = followups.FollowUpRules()  # the app's window and SLA targets


def customers(rng, plan: Plan, first: int, n: int) -> dict:
    c: dict = {"n": n, "ids": uuids(rng, n)}
    c["first"] = pick(rng, FIRST_NAMES, n)
    c["last"] = pick(rng, LAST_NAMES, n)
    c["emails"] = pc.utf8_lower(
        join(
            c["first"],
            ".",
            pc.replace_substring(c["last"], "'", ""),
            text(np.arange(first + 1, first + n + 1)),
            "@example.com",
        )
    )
    c["zone"] = rng.choice(len(CUSTOMER_ZONES), n, p=[z[1] for z in CUSTOMER_ZONES])
    c["region"] = np.array([z[2] for z in CUSTOMER_ZONES])[c["zone"]]
    c["premium"] = rng.random(n) < 0.2
    c["opt_out"] = rng.random(n) < 0.05
    c["channel"] = rng.choice(len(s.ACQUISITION_CHANNELS), n, p=CHANNEL_WEIGHTS)
    c["activity"] = rng.gamma(1.5, 1 / 1.5, n) * np.where(c["premium"], 1.4, 1.0)
    c["vehicle"], c["year"] = _vehicles(rng, plan, n)
    return c


def _vehicles(rng, plan: Plan, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Index into VEHICLES + CLASSICS and model year: mostly recent, a tail of old cars and classics."""
    classic = rng.random(n) < 0.02
    vehicle = np.where(classic, len(VEHICLES) + rng.integers(0, len(CLASSICS), n), rng.integers(0, len(VEHICLES), n))
    age = np.round(rng.gamma(1.6, 4.5, n))
    year = np.where(classic, rng.integers(1962, 1986, n), np.clip(plan.anchor.year + 1 - age, 1985, None))
    return vehicle, year.astype(np.int64)


def _local_times(rng, plan: Plan, zone_offsets: np.ndarray, day: np.ndarray) -> np.ndarray:
    """UTC instants on local ``day`` (index into the history) at a typical hour for the customer."""
    hour_p = np.asarray(HOUR_WEIGHTS) / sum(HOUR_WEIGHTS)
    minute = rng.choice(24, len(day), p=hour_p) * 60 + rng.uniform(0, 60, len(day))
    return plan.start + day.astype("timedelta64[D]") + minutes(minute - zone_offsets)


def requests(rng, plan: Plan, c: dict) -> dict:
    """Intake requests: the first at sign-up, more for active customers; growth and weekends favoured."""
    days = np.arange(HISTORY_DAYS)
    weights = (1 + 1.5 * days / HISTORY_DAYS) * np.where(
        np.isin(day_of_week(plan.start.astype("datetime64[D]") + days.astype("timedelta64[D]")), (0, 6)), 1.3, 1.0
    )
    cdf = np.cumsum(weights) / weights.sum()
    offsets = np.array([utc_offset_minutes(z[0], plan.anchor) for z in CUSTOMER_ZONES])[c["zone"]]
    n = c["n"]
    first_day = np.searchsorted(cdf, rng.random(n), side="right")
    first_at = _local_times(rng, plan, offsets, first_day)
    c["signup"] = np.clip(first_at - minutes(rng.uniform(2, 40, n)), plan.start, plan.now - minutes(60))
    has_intake = rng.random(n) < 0.96
    remaining = (HISTORY_DAYS - first_day) / HISTORY_DAYS
    extra = np.where(has_intake, rng.poisson(3.0 * c["activity"] * remaining), 0)
    cust = np.repeat(np.arange(n), extra)
    low = cdf[first_day[cust]]
    day = np.minimum(np.searchsorted(cdf, low + rng.random(len(cust)) * (1 - low), side="right"), HISTORY_DAYS - 1)
    created = np.concatenate([first_at[has_intake], _local_times(rng, plan, offsets[cust], day)])
    cust = np.concatenate([np.nonzero(has_intake)[0], cust])
    created = np.maximum(created, c["signup"][cust] + minutes(1))
    keep = created < plan.now
    cust, created = cust[keep], created[keep]
    k = len(cust)
    second = rng.random(k) < 0.15
    other_vehicle, other_year = _vehicles(rng, plan, k)
    return {
        "cust": cust,
        "created": created,
        "category": rng.choice(len(s.REQUEST_CATEGORIES), k, p=CATEGORY_WEIGHTS),
        "vehicle": np.where(second, other_vehicle, c["vehicle"][cust]),
        "year": np.where(second, other_year, c["year"][cust]),
        "follow_up": np.full(k, -1),
        "parent": np.full(k, -1),
    }


def sessions(
    rng, plan: Plan, mech: Mechanics, c: dict, req: dict, take, booked_share, video_share, preferred=None
) -> dict:
    """Sessions from requests (``take`` = chance per request), booked ahead (``booked_share``)
    or for now, with the ``preferred`` mechanic per request if given; consistent timestamps.
    Requests no mechanic can take get no session."""
    r = np.nonzero(rng.random(len(req["cust"])) < take)[0]
    k = len(r)
    created = req["created"][r] + minutes(rng.uniform(1, 15, k))
    booked = rng.random(k) < np.broadcast_to(booked_share, len(req["cust"]))[r]
    lead = np.where(booked, np.clip(rng.lognormal(np.log(20 * 60), 1.0, k), 60, 6 * 1440), rng.uniform(1, 10, k))
    wanted = created + minutes(lead)
    m, scheduled, mult = mech.book(
        rng, wanted, c["region"][req["cust"][r]], ~booked, None if preferred is None else preferred[r]
    )
    keep = m >= 0
    r, created, m, scheduled, mult = r[keep], created[keep], m[keep], scheduled[keep], mult[keep]
    k = len(r)
    video = rng.random(k) < np.broadcast_to(video_share, len(req["cust"]))[r]
    accepted = created + minutes(mech.sla[m] * rng.lognormal(-0.5, 0.6, k))
    late = np.where(rng.random(k) < 0.85, rng.uniform(0, 3, k), rng.uniform(3, 15, k))
    started = np.maximum(scheduled, accepted) + minutes(late)
    extension = np.where(rng.random(k) < 0.1, rng.choice([10, 15, 20], k), 0)
    ext_status = np.where(extension > 0, rng.choice(len(s.EXTENSION_STATUSES), k, p=[0, 0.1, 0.25, 0.65]), -1)
    extended = np.isin(ext_status, (1, 3))
    duration = np.where(video, 15 + rng.gamma(2, 10, k), 10 + rng.gamma(2, 8, k)) + extension * extended
    ended = started + minutes(duration)

    status = np.full(k, "completed", object)
    pick = rng.random(k)
    future = scheduled >= plan.now
    status[future] = np.select([pick < 0.2, pick < 0.55], ["pending", "scheduled"], "accepted")[future]
    status[~future & (pick < 0.08)] = "cancelled"
    status[(status == "completed") & (started >= plan.now)] = "accepted"  # booked just before now
    status[(status == "completed") & (ended >= plan.now)] = "live"
    status[(status == "accepted") & (accepted >= plan.now)] = "scheduled"
    was_accepted = np.isin(status, ("accepted", "live", "completed")) | (
        (status == "cancelled") & (pick < 0.04) & (accepted < plan.now)
    )
    done = status == "completed"
    went_ahead = done | (status == "live")
    summary = np.where(done & (rng.random(k) < 0.93), ended + minutes(rng.lognormal(np.log(25), 0.8, k)), NAT)
    summary = np.where(summary < plan.now, summary, NAT)
    cancelled = np.where(status == "cancelled", created + (scheduled - created) * rng.uniform(0.2, 1, k), NAT)
    return {
        "req": r,
        "cust": req["cust"][r],
        "mech": np.where(status == "pending", -1, m),
        "video": video,
        "status": status,
        "created": created,
        "scheduled": scheduled,
        "accepted": np.where(was_accepted, accepted, NAT),
        "started": np.where(went_ahead, started, NAT),
        "ended": np.where(done, ended, NAT),
        "summary": summary,
        "cancelled": cancelled,
        "price": _prices(video, mult),
        "ext_minutes": np.where(went_ahead, extension, 0),
        "ext_status": ext_status,
    }


def _prices(video: np.ndarray, mult: np.ndarray) -> np.ndarray:
    """The app's price of each session (``calendars.slots.price_cents`` of the base price and the
    slot's multiplier), computed once per distinct pair."""
    key = np.round(mult * 100).astype(np.int64) * 2 + video
    distinct, inverse = np.unique(key, return_inverse=True)
    cents = [price_cents(BASE_PRICE_CENTS[s.SESSION_TYPES[k % 2]], Decimal(int(k // 2)) / 100) for k in distinct]
    return np.asarray(cents, np.int64)[inverse]


def follow_ups(rng, plan: Plan, req: dict, ses: dict) -> dict:
    """Follow-up requests on ~15% of completed, summarised sessions, by the same customer,
    within the app's window after the session ended."""
    parent = np.nonzero(~np.isnat(ses["summary"]) & (rng.random(len(ses["summary"])) < 0.15))[0]
    created = ses["summary"][parent] + minutes(rng.lognormal(np.log(2 * 1440), 1.0, len(parent)))
    keep = (created < plan.now) & (created <= ses["ended"][parent] + np.timedelta64(FOLLOW_UP_RULES.window_days, "D"))
    parent, created = parent[keep], created[keep]
    k = len(parent)
    kind = rng.choice(len(s.FOLLOW_UP_TYPES), k, p=[0.55, 0.25, 0.20])
    base = ses["req"][parent]
    return {
        "cust": ses["cust"][parent],
        "created": created,
        "category": np.where(
            kind == 2, rng.choice(len(s.REQUEST_CATEGORIES), k, p=CATEGORY_WEIGHTS), req["category"][base]
        ),
        "vehicle": req["vehicle"][base],
        "year": req["year"][base],
        "follow_up": kind,
        "parent": parent,
    }


def lifecycle(rng, plan: Plan, mech: Mechanics, c: dict, req: dict, ses: dict) -> dict:
    """The follow-ups' lifecycle as ``dashboard.domain.followups`` records it, per request (empty for
    the others): state, assignee (-1: none), assigned, answered, closed and cancelled times,
    cancel reason (index into FOLLOW_UP_CANCEL_REASONS, -1: none) and the price fixed at creation.

    A follow-up with a session follows it: assigned to its mechanic when booked, answered when
    it ends, cancelled with it. The others are assigned to the parent session's mechanic while
    employed (else a picked one) and answered in writing, mostly within the type's SLA target
    and always within 6 days, or cancelled on the way. Answered ones are closed a day or so
    later. The state is the last step taken before now, so only recent follow-ups still wait.
    """
    f = np.nonzero(req["follow_up"] >= 0)[0]
    n = len(f)
    kind, created, cust, session = req["follow_up"][f], req["created"][f], req["cust"][f], req["session"][f]
    has = session >= 0
    at = np.maximum(session, 0)

    # Most are answered well within the type's target, some late, a few only after days.
    target = np.array([FOLLOW_UP_RULES.sla(t) for t in s.FOLLOW_UP_TYPES])[kind]
    pace = rng.choice(3, n, p=[0.8, 0.14, 0.06])
    median = np.select([pace == 0, pace == 1], [0.3 * target, 1.2 * target], 1.5 * 1440)
    response = minutes(np.minimum(median * rng.lognormal(0, np.where(pace == 0, 0.6, 0.5)), 6 * 1440))
    written = created + response * rng.uniform(0.05, 0.4, n)  # assigned to write the answer
    parent = ses["mech"][req["parent"][f]]
    day = (written - mech.origin.astype("datetime64[us]")) // np.timedelta64(1, "D")
    stays = (rng.random(n) < 0.9) & (day >= mech.join_day[parent]) & (day < mech.leave_day[parent])
    writer = np.where(stays, parent, mech.pick(rng, written, c["region"][cust]))
    cancel = ~has & (rng.random(n) < np.array([0.06, 0.4, 0.5])[kind])

    cancelled = np.where(has, ses["cancelled"][at], np.where(cancel, created + response * rng.uniform(0.1, 1, n), NAT))
    assignee = np.where(has, ses["mech"][at], writer)
    assigned = np.where(has, ses["created"][at], written)
    assigned = np.where((assignee >= 0) & ~(assigned >= cancelled), assigned, NAT)  # not if cancelled first
    answered = np.where(
        has,
        np.where(ses["status"][at] == "completed", ses["ended"][at], NAT),
        np.where(cancel, NAT, created + response),
    )
    closed = answered + minutes(np.minimum(rng.lognormal(np.log(1440), 0.8, n), 7 * 1440))
    assigned, answered, closed, cancelled = (
        np.where(x < plan.now, x, NAT) for x in (assigned, answered, closed, cancelled)
    )
    state = np.select(
        [~np.isnat(closed), ~np.isnat(answered), ~np.isnat(cancelled), ~np.isnat(assigned)],
        ["closed", "answered", "cancelled", "assigned"],
        "open",
    )
    reason = np.where(has, 0, rng.integers(1, len(FOLLOW_UP_CANCEL_REASONS), n))
    prices = np.array(
        [
            [
                followups.DEFAULT_PRICES.get((p, t), BASE_PRICE_CENTS[followups.NEW_SESSION_TYPE])
                for t in s.FOLLOW_UP_TYPES
            ]
            for p in s.PLANS
        ]
    )

    k = len(req["cust"])
    out = {
        "state": np.full(k, "", object),
        "assignee": np.full(k, -1),
        "reason": np.full(k, -1),
        "price": np.full(k, -1),
        **{x: np.full(k, NAT) for x in ("assigned", "answered", "closed", "cancelled")},
    }
    out["state"][f], out["price"][f] = state, prices[c["premium"][cust].astype(int), kind]
    out["assignee"][f] = np.where(np.isnat(assigned), -1, assignee)
    out["reason"][f] = np.where(state == "cancelled", reason, -1)
    for name, values in (("assigned", assigned), ("answered", answered), ("closed", closed), ("cancelled", cancelled)):
        out[name][f] = values
    return out


def requests_table(rng, plan: Plan, c: dict, req: dict, ses: dict, mech: Mechanics) -> pa.Table:
    k = len(req["cust"])
    has = req["session"] >= 0
    at = np.maximum(req["session"], 0)
    sst = np.where(has, ses["status"][at], "")
    age_days = (plan.now - req["created"]) / np.timedelta64(1, "D")
    status = np.select(
        [
            sst == "completed",
            sst == "cancelled",
            np.isin(sst, ("scheduled", "accepted", "live")),
            sst == "pending",
            age_days <= 7,
        ],
        ["completed", "cancelled", "matched", "open", "open"],
        np.where(rng.random(k) < 0.65, "cancelled", "open"),
    )
    updated = np.select(
        [
            has & (status == "completed"),
            has & (status == "cancelled"),
            status == "cancelled",
            has & ~np.isnat(ses["accepted"][at]),
            has,
        ],
        [
            ses["ended"][at],
            ses["cancelled"][at],
            req["created"] + minutes(rng.uniform(3, 7, k) * 1440),
            ses["accepted"][at],
            ses["created"][at],
        ],
        NAT,
    )
    # Follow-ups: the platform status of their state, updated at their last step.
    status = np.select(
        [req["state"] == state for state in followups.PLATFORM_STATUS], list(followups.PLATFORM_STATUS.values()), status
    )
    last_step = np.fmax.reduce(np.stack([req[x] for x in ("created", "assigned", "answered", "closed", "cancelled")]))
    updated = np.where(req["state"] != "", last_step, updated)

    label = take(CATEGORY_LABELS, req["category"])
    make, model = zip(*(VEHICLES + CLASSICS))
    vehicle = join(text(req["year"]), " ", take(make, req["vehicle"]), " ", take(model, req["vehicle"]))
    symptom = take(flat(SYMPTOMS), req["category"] * 4 + rng.integers(0, 4, k))
    context = take(CONTEXTS, rng.integers(0, len(CONTEXTS), k))
    description = join("My ", vehicle, " ", symptom, ".", context)
    fu = req["follow_up"]
    question = fill(FOLLOW_UP_TEXTS[0], rng.integers(0, 3, k), label)
    extension = fill(FOLLOW_UP_TEXTS[1], rng.integers(0, 2, k), label)
    description = pc.if_else(
        pa.array(fu == 0),
        question,
        pc.if_else(
            pa.array(fu == 1), extension, pc.if_else(pa.array(fu == 2), join("New issue: ", description), description)
        ),
    )
    follow_up_type = null_unless(fu >= 0, take(s.FOLLOW_UP_TYPES, np.maximum(fu, 0)))
    return pa.table(
        {
            "id": req["ids"],
            "customer_id": c["ids"].take(pa.array(req["cust"])),
            "vehicle_make": take(make, req["vehicle"]),
            "vehicle_model": take(model, req["vehicle"]),
            "vehicle_year": pa.array(req["year"], pa.int32()),
            "category": take(s.REQUEST_CATEGORIES, req["category"]),
            "description": description,
            "status": pa.array(status.tolist(), pa.string()),
            "created_at": ts(req["created"]),
            "updated_at": ts(updated),
            "parent_session_id": take_or_null(ses["ids"], req["parent"]),
            "is_follow_up": pa.array(fu >= 0),
            "follow_up_type": follow_up_type,
            "follow_up_state": null_unless(fu >= 0, pa.array(req["state"].tolist(), pa.string())),
            "assigned_mechanic_id": take_or_null(mech.ids, req["assignee"]),
            "assigned_at": ts(req["assigned"]),
            "answered_at": ts(req["answered"]),
            "closed_at": ts(req["closed"]),
            "cancelled_at": ts(req["cancelled"]),
            "cancel_reason": take_or_null(pa.array(FOLLOW_UP_CANCEL_REASONS), req["reason"]),
            "follow_up_price_cents": null_unless(fu >= 0, pa.array(req["price"], pa.int32())),
            "rules_applied_at": null_unless(fu >= 0, ts(req["created"])),  # priced when created
        }
    )


def sessions_table(rng, c: dict, req: dict, ses: dict, mech: Mechanics) -> pa.Table:
    k = len(ses["cust"])
    category = req["category"][ses["req"]]
    has_summary = ~np.isnat(ses["summary"])
    finding = category * 3 + rng.integers(0, 3, k)
    steps = join(
        take(STEPS_TAKEN, rng.integers(0, len(STEPS_TAKEN), k)),
        " ",
        take(STEPS_TAKEN, rng.integers(0, len(STEPS_TAKEN), k)),
    )
    return pa.table(
        {
            "id": ses["ids"],
            "request_id": req["ids"].take(pa.array(ses["req"])),
            "customer_id": c["ids"].take(pa.array(ses["cust"])),
            "mechanic_id": take_or_null(mech.ids, ses["mech"]),
            "session_type": pa.array(np.where(ses["video"], "video", "chat").tolist(), pa.string()),
            "status": pa.array(ses["status"].tolist(), pa.string()),
            "scheduled_at": ts(ses["scheduled"]),
            "accepted_at": ts(ses["accepted"]),
            "started_at": ts(ses["started"]),
            "ended_at": ts(ses["ended"]),
            "price_cents": pa.array(ses["price"], pa.int32()),
            "findings": null_unless(has_summary, take(flat(FINDINGS), finding)),
            "steps_taken": null_unless(has_summary, steps),
            "parts_needed": null_unless(has_summary, take(flat(PARTS), finding)),
            "next_steps": null_unless(has_summary, take(NEXT_STEPS, rng.integers(0, len(NEXT_STEPS), k))),
            "summary_submitted_at": ts(ses["summary"]),
            "created_at": ts(ses["created"]),
        }
    )


def files_table(rng, c: dict, ses: dict, mech: Mechanics) -> pa.Table:
    went_ahead = np.nonzero(~np.isnat(ses["started"]) & (rng.random(len(ses["cust"])) < 0.3))[0]
    row = np.repeat(went_ahead, rng.choice([1, 2, 3], len(went_ahead), p=[0.6, 0.3, 0.1]))
    k = len(row)
    by_customer = rng.random(k) < 0.8
    pool = np.where(
        by_customer,
        rng.integers(0, len(CUSTOMER_FILES), k),
        len(CUSTOMER_FILES) + rng.integers(0, len(MECHANIC_FILES), k),
    )
    name, kind, size = zip(*(CUSTOMER_FILES + MECHANIC_FILES))
    ids = uuids(rng, k)
    session_ids = ses["ids"].take(pa.array(row))
    names = take(name, pool)
    started = ses["started"][row]
    created = np.where(
        by_customer,
        ses["created"][row] + (started - ses["created"][row]) * rng.random(k),
        started + minutes(rng.uniform(2, 10, k)),
    )
    uploader = pc.if_else(
        pa.array(by_customer), c["ids"].take(pa.array(ses["cust"][row])), take_or_null(mech.ids, ses["mech"][row])
    )
    return pa.table(
        {
            "id": ids,
            "session_id": session_ids,
            "uploaded_by": uploader,
            "file_name": names,
            "storage_path": join("sessions/", session_ids, "/", ids, "/", names),
            "content_type": take(kind, pool),
            "size_bytes": pa.array((np.asarray(size)[pool] * rng.lognormal(0, 0.5, k)).astype(np.int64)),
            "created_at": ts(created),
        }
    )


def extensions_table(rng, ses: dict) -> pa.Table:
    row = np.nonzero(ses["ext_minutes"] > 0)[0]
    k = len(row)
    live = ses["status"][row] == "live"
    status = np.where(live, 0, ses["ext_status"][row])
    ext_minutes = ses["ext_minutes"][row]
    started = ses["started"][row]
    created = started + minutes(rng.uniform(8, 14, k))
    ended = ses["ended"][row]
    created = np.where(np.isnat(ended), created, np.minimum(created, ended))
    return pa.table(
        {
            "id": uuids(rng, k),
            "session_id": ses["ids"].take(pa.array(row)),
            "minutes": pa.array(ext_minutes, pa.int32()),
            "price_cents": pa.array(ext_minutes * np.where(ses["video"][row], 150, 100), pa.int32()),
            "status": take(s.EXTENSION_STATUSES, status),
            "created_at": ts(created),
        }
    )


def customer_tables(c: dict) -> dict[sa.Table, pa.Table]:
    signup = ts(c["signup"])
    return {
        s.users: pa.table({"id": c["ids"], "email": c["emails"], "created_at": signup}),
        s.profiles: pa.table(
            {
                "id": c["ids"],
                "full_name": join(c["first"], " ", c["last"]),
                "plan": take(s.PLANS, c["premium"].astype(int)),
                "timezone": take([z[0] for z in CUSTOMER_ZONES], c["zone"]),
                "email_opt_out": pa.array(c["opt_out"]),
                "acquisition_channel": take(s.ACQUISITION_CHANNELS, c["channel"]),
                "created_at": signup,
            }
        ),
    }
