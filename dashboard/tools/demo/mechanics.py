"""Mechanics, their weekly slots, days off and bookable timeline."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from dashboard.core import schema as s
from dashboard.domain.calendars.slots import SlotRules
from dashboard.tools.demo.arrays import (
    NAT,
    US,
    day_of_week,
    join,
    local_to_utc,
    minutes,
    pick,
    take,
    text,
    ts,
    utc_offset_minutes,
    utc_to_local,
    uuids,
    weighted_order,
)
from dashboard.tools.demo.plan import HISTORY_DAYS, UPCOMING_DAYS, Plan
from dashboard.tools.demo.vocabulary import (
    CATEGORY_LABELS,
    CATEGORY_WEIGHTS,
    FIRST_NAMES,
    LAST_NAMES,
    MECHANIC_ROLES,
    MECHANIC_STYLES,
    MECHANIC_ZONES,
    OVERRIDE_REASONS,
)

RULES = SlotRules()  # the app's session length and buffer
# A booked session holds its length plus a buffer either side (50 minutes), so bookable starts
# an hour apart never clash, and an instant session may start up to 10 minutes after one.
HOLD_MINUTES = RULES.session_minutes + 2 * RULES.buffer_minutes
START_STEP = -(-HOLD_MINUTES // 30)  # half-hours between bookable starts
START_SLACK = np.timedelta64(START_STEP * 30 - HOLD_MINUTES, "m").astype("timedelta64[us]")
MAX_WAIT_DAYS = 2  # a mechanic without a free start this soon after the wanted time is passed over
PICKS = 3  # mechanics asked per session; a request none of them can take gets no session


class Mechanics:
    """Every mechanic with the bookable starts sessions are booked into.

    A mechanic's timeline counts local half-hours from local midnight of ``origin``.
    ``start_key`` (mechanic x ``halves`` + half-hour, sorted) lists the bookable starts,
    ``taken`` marks the booked ones; ``multiplier[m, dow, half_hour]`` is the price multiplier.
    """

    def __init__(self, plan: Plan):
        rng = np.random.default_rng([plan.seed, 0])
        m = plan.mechanics
        self.n = m
        self.ids = uuids(rng, m)
        self.first_names = pick(rng, FIRST_NAMES, m)
        last = pick(rng, LAST_NAMES, m)
        self.names = join(self.first_names, " ", last)
        self.emails = pc.utf8_lower(
            join(
                self.first_names,
                ".",
                pc.replace_substring(last, "'", ""),
                text(np.arange(1, m + 1)),
                "@mechanics.example.com",
            )
        )
        self.zone = rng.choice(len(MECHANIC_ZONES), size=m, p=[z[1] for z in MECHANIC_ZONES])
        self.region = np.array([z[2] for z in MECHANIC_ZONES])[self.zone]
        self.quality = rng.beta(5, 2, size=m)  # share of "good mechanic" in the rating mix
        self.popularity = rng.lognormal(0, 0.5, size=m)
        self.is_active = rng.random(m) > 0.08

        self.origin = (plan.now - np.timedelta64(HISTORY_DAYS + 2, "D")).astype("datetime64[D]")
        self.days = HISTORY_DAYS + UPCOMING_DAYS + 5
        # A quarter joined during the history; inactive ones left at some point of it.
        joined_late = rng.random(m) < 0.25
        self.join_day = np.where(joined_late, rng.integers(2, HISTORY_DAYS - 30, m), -rng.integers(60, 1500, m))
        self.leave_day = np.where(
            self.is_active, self.days, rng.integers(np.maximum(self.join_day, 0) + 20, HISTORY_DAYS + 2)
        )
        self.created_at = (self.origin + self.join_day.astype("timedelta64[D]")).astype("datetime64[us]") + minutes(
            rng.uniform(8 * 60, 18 * 60, m)
        )

        self._slots(rng)
        self._days_off(rng, plan)
        self._starts()
        self._pick_table(plan)
        self._details(rng)
        self.rating_sum = np.zeros(m, np.int64)
        self.rating_count = np.zeros(m, np.int64)

    def _slots(self, rng):
        """Weekly slots: per working day a quiet morning, the day and often a peak evening."""
        m = self.n
        patterns = np.array(
            [  # working days, Sunday first
                [0, 1, 1, 1, 1, 1, 0],
                [0, 1, 1, 1, 1, 1, 1],
                [0, 0, 1, 1, 1, 1, 1],
                [1, 1, 0, 0, 1, 1, 1],
                [1, 1, 1, 1, 1, 1, 1],
            ],
            bool,
        )
        works = patterns[rng.choice(len(patterns), m, p=[0.35, 0.25, 0.15, 0.15, 0.10])]  # (m, 7)
        shift = rng.choice([-2, -1, 0, 1, 2], m)[:, None]  # half-hours, per mechanic
        weekend = np.array([1, 0, 0, 0, 0, 0, 1], bool)
        day_start = np.where(weekend, 18, 18 + shift) + rng.choice([0, 0, 1, 2], (m, 7))
        day_end = np.where(weekend, 28 + rng.choice([0, 4, 8], (m, 1)), 34 + shift)
        morning = ~weekend & (rng.random((m, 1)) < 0.4)
        evening = ~weekend & (rng.random((m, 1)) < 0.7)
        evening_end = day_end + rng.choice([4, 6, 8], (m, 1))
        peak = rng.choice([1.25, 1.5], (m, 1), p=[0.6, 0.4])
        segments = (  # (exists, start, end, multiplier), half-hours of the local day
            (works & morning, day_start - 4, day_start, np.full((m, 7), 0.9)),
            (works, day_start, day_end, np.where(weekend, peak, 1.0)),
            (works & evening, day_end, np.minimum(evening_end, 47), np.broadcast_to(peak, (m, 7))),
        )
        mech, dow, seg = np.nonzero(np.stack([e for e, *_ in segments], axis=2))
        start = np.stack([np.broadcast_to(x, (m, 7)) for _, x, _, _ in segments], axis=2)[mech, dow, seg]
        end = np.stack([np.broadcast_to(x, (m, 7)) for _, _, x, _ in segments], axis=2)[mech, dow, seg]
        mult = np.stack([np.broadcast_to(x, (m, 7)) for *_, x in segments], axis=2)[mech, dow, seg]
        available = rng.random(len(mech)) > 0.03
        self.slots = dict(mech=mech, dow=dow, start=start, end=end, mult=mult, available=available)

        half = np.arange(48)
        inside = (half >= start[:, None]) & (half < end[:, None]) & available[:, None]
        where = (mech[:, None], dow[:, None], half[None, :])
        self.weekly = np.zeros((m, 7, 48), bool)
        np.logical_or.at(self.weekly, where, inside)
        extra = np.zeros((m, 7, 48))  # slots never overlap, so adding places each multiplier
        np.add.at(extra, where, inside * (mult[:, None] - 1))
        self.multiplier = 1 + extra

    def _days_off(self, rng, plan: Plan):
        """Single days off plus, for some, a block of vacation; unique per mechanic and date."""
        m = self.n
        singles = rng.poisson(3, m)
        mech = np.repeat(np.arange(m), singles)
        day = rng.integers(0, self.days + 45, len(mech))
        reason_idx = rng.integers(0, len(OVERRIDE_REASONS), len(mech))
        vacation = np.nonzero(rng.random(m) < 0.3)[0]
        length = rng.integers(3, 11, len(vacation))
        v_mech = np.repeat(vacation, length)
        v_day = (
            np.repeat(rng.integers(0, self.days + 30, len(vacation)), length)
            + np.arange(length.sum())
            - np.repeat(np.cumsum(length) - length, length)
        )
        mech, day = np.concatenate([mech, v_mech]), np.concatenate([day, v_day])
        reasons = np.concatenate(
            [np.array(OVERRIDE_REASONS, object)[reason_idx], np.full(len(v_mech), "Vacation", object)]
        )
        _, first = np.unique(mech * 100_000 + day, return_index=True)
        self.days_off = dict(mech=mech[first], day=day[first], reason=reasons[first])

    def _starts(self):
        """A start every START_STEP half-hours from the beginning of each run of open half-hours
        (working hours, while employed, outside days off): starts that far apart never clash."""
        d = np.arange(self.days)
        dow = day_of_week(self.origin + d.astype("timedelta64[D]"))
        employed = (d >= self.join_day[:, None]) & (d < self.leave_day[:, None])
        open_ = self.weekly[:, dow, :] & employed[:, :, None]  # (m, days, 48)
        off = self.days_off
        inside = off["day"] < self.days
        open_[off["mech"][inside], off["day"][inside], :] = False
        flat = open_.reshape(self.n, -1)
        self.halves = flat.shape[1]
        half = np.arange(self.halves, dtype=np.int32)
        first = flat.copy()
        first[:, 1:] &= ~flat[:, :-1]
        run_start = np.maximum.accumulate(np.where(first, half, 0), axis=1)
        mech, at = np.nonzero(flat & ((half - run_start) % START_STEP == 0))
        self.start_key = mech.astype(np.int64) * self.halves + at
        self.taken = np.zeros(len(mech), bool)

    def _details(self, rng):
        m = self.n
        self.years = np.clip(np.round(rng.gamma(2.2, 6, m)), 1, 45).astype(np.int64)
        self.sla = rng.choice([5, 10, 15, 20, 30], m, p=[0.3, 0.3, 0.2, 0.1, 0.1])
        k = rng.choice([1, 2, 3, 4], m, p=[0.2, 0.4, 0.3, 0.1])
        order = weighted_order(rng, m, CATEGORY_WEIGHTS[:-1])
        values = np.concatenate([order[i, : k[i]] for i in range(m)])
        offsets = np.concatenate([[0], np.cumsum(k)]).astype(np.int32)
        self.specialties = pa.ListArray.from_arrays(pa.array(offsets), take(s.REQUEST_CATEGORIES, values))
        role = take(MECHANIC_ROLES, rng.integers(0, len(MECHANIC_ROLES), m))
        main = take(CATEGORY_LABELS, order[:, 0])
        style = take(MECHANIC_STYLES, rng.integers(0, len(MECHANIC_STYLES), m))
        self.bio = join(
            role, " with ", text(self.years), " years on the tools. Most of my work is ", main, " problems. ", style
        )

    def _pick_table(self, plan: Plan):
        """Cumulative pick weights per (fortnight, customer region, UTC two-hour slot of the week).

        Mechanics are favoured when employed, popular, in the customer's region and open at
        that time; row ``key`` is stored as ``key + cdf`` so one searchsorted serves all rows.
        """
        m = self.n
        offset = np.array([utc_offset_minutes(z[0], plan.anchor) for z in MECHANIC_ZONES])[self.zone]
        shift = (offset // 30).astype(np.int64)
        local = self.weekly.reshape(m, 7 * 48)  # Sunday 00:00 local first
        utc = local[np.arange(m)[:, None], (np.arange(7 * 48)[None, :] + shift[:, None]) % (7 * 48)]
        open_share = utc.reshape(m, 7 * 12, 4).mean(axis=2)  # (m, 84)
        self.fortnights = self.days // 14 + 1
        mid = np.arange(self.fortnights) * 14 + 7
        employed = (mid[:, None] >= self.join_day) & (mid[:, None] < self.leave_day)  # (fortnights, m)
        near = np.where(np.arange(3)[:, None] == self.region, 3.0, 0.35)  # (regions, m)
        w = (
            self.popularity
            * employed[:, None, None, :]
            * near[None, :, None, :]
            * (0.03 + open_share.T)[None, None, :, :]
            + 1e-9
        ).reshape(-1, m)
        cdf = np.cumsum(w, axis=1)
        self._pick_cdf = (cdf / cdf[:, -1:] + np.arange(len(w))[:, None]).ravel()

    def pick(self, rng, wanted: np.ndarray, region: np.ndarray) -> np.ndarray:
        """A mechanic for each booking wanted at ``wanted`` (UTC) by a customer of ``region``."""
        day = (wanted - self.origin.astype("datetime64[us]")) // np.timedelta64(1, "D")
        fortnight = np.clip(day // 14, 0, self.fortnights - 1)
        utc_day = wanted.astype("datetime64[D]")
        hour = (wanted - utc_day.astype("datetime64[us]")) // np.timedelta64(1, "h")
        key = (fortnight * 3 + region) * 84 + day_of_week(utc_day) * 12 + hour // 2
        return np.searchsorted(self._pick_cdf, key + rng.random(len(key)), side="right") - key * self.n

    def book(self, rng, wanted: np.ndarray, region: np.ndarray, exact: np.ndarray, preferred=None):
        """Book each session wanted at ``wanted`` (UTC) by a customer of ``region``.

        Each mechanic asked offers the first free start from ``wanted`` on, within
        MAX_WAIT_DAYS; ``exact`` rows (instant sessions) keep the wanted minute when it is
        less than START_SLACK after a free start. The ``preferred`` mechanics are asked first,
        then picked ones, PICKS mechanics in all. Returns (mechanic or -1, scheduled UTC or NaT, multiplier).
        """
        mech, scheduled, mult = np.full(len(wanted), -1), np.full(len(wanted), NAT), np.ones(len(wanted))
        rows = np.arange(len(wanted))
        first_asked = self.pick(rng, wanted, region) if preferred is None else preferred
        for attempt in range(PICKS):
            asked = first_asked if attempt == 0 else self.pick(rng, wanted[rows], region[rows])
            start, local = self._claim(asked, wanted[rows], exact[rows])
            ok = start >= 0
            booked, asked, start, local = rows[ok], asked[ok], start[ok], local[ok]
            half = self.start_key[start] - asked * self.halves
            dow = day_of_week(self.origin + (half // 48).astype("timedelta64[D]"))
            at = np.maximum(local, self.origin.astype("datetime64[us]") + minutes(half * 30))
            mech[booked], mult[booked] = asked, self.multiplier[asked, dow, half % 48]
            scheduled[booked] = self._in_zones(asked, at, local_to_utc)
            rows = rows[~ok]
        return mech, scheduled, mult

    def _in_zones(self, mech: np.ndarray, values: np.ndarray, convert) -> np.ndarray:
        """``convert(values, zone)`` in each mechanic's zone."""
        out = np.empty_like(values)
        zone = self.zone[mech]
        for z in np.unique(zone):
            rows = zone == z
            out[rows] = convert(values[rows], MECHANIC_ZONES[z][0])
        return out

    def _claim(self, mech: np.ndarray, wanted: np.ndarray, exact: np.ndarray):
        """Take the first free start of each row's mechanic at or after ``wanted`` (see ``book``),
        earliest wanted first; returns (index into ``start_key`` or -1, wanted in local time)."""
        local = self._in_zones(mech, wanted, utc_to_local)
        since = (local - self.origin.astype("datetime64[us]")) // US
        slack = np.where(exact, START_SLACK // US - 1, 0)
        first = -((slack - since) // (30 * 60_000_000))  # the first half-hour a start may be on
        free = np.nonzero(~self.taken)[0]
        keys = self.start_key[free]
        base = mech.astype(np.int64) * self.halves
        lo = np.searchsorted(keys, base + np.minimum(first, self.halves))
        hi = np.searchsorted(keys, base + np.minimum(first + MAX_WAIT_DAYS * 48, self.halves - 1), side="right")
        # Per mechanic, earliest first: row i of n gets free start max(lo_i, start of row i-1 + 1).
        order = np.lexsort((lo, mech))
        m = mech[order].astype(np.int64)
        position = np.arange(len(m)) - np.searchsorted(m, m)
        group = m * (len(keys) + len(m) + 1)  # keeps each mechanic's running maximum apart
        got = np.maximum.accumulate(lo[order] - position + group) - group + position
        ok = got < hi[order]
        start = np.full(len(mech), -1)
        start[order[ok]] = free[got[ok]]
        self.taken[start[start >= 0]] = True
        return start, local

    def tables(self, plan: Plan) -> dict[sa.Table, pa.Table]:
        """users, slots and days off (the mechanics rows come last, with their ratings)."""
        rng = np.random.default_rng([plan.seed, 2])
        sl = self.slots
        n = len(sl["mech"])
        half_hour = (sl["start"] * 30 * 60e6).astype(np.int64)
        slots = pa.table(
            {
                "id": uuids(rng, n),
                "mechanic_id": self.ids.take(pa.array(sl["mech"])),
                "day_of_week": pa.array(sl["dow"], pa.int32()),
                "start_time": pa.array(half_hour, pa.time64("us")),
                "end_time": pa.array((sl["end"] * 30 * 60e6).astype(np.int64), pa.time64("us")),
                "is_available": pa.array(sl["available"]),
                "price_multiplier": pc.cast(pa.array(sl["mult"]), pa.decimal128(3, 2)),
                "created_at": ts(self.created_at[sl["mech"]]),
            }
        )
        off = self.days_off
        dates = self.origin + off["day"].astype("timedelta64[D]")
        overrides = pa.table(
            {
                "id": uuids(rng, len(dates)),
                "mechanic_id": self.ids.take(pa.array(off["mech"])),
                "date": pa.array(dates, pa.date32()),
                "is_available": pa.array(np.zeros(len(dates), bool)),
                "reason": pa.array(off["reason"].tolist(), pa.string()),
                "created_at": ts(np.minimum(dates.astype("datetime64[us]") - np.timedelta64(14, "D"), plan.now)),
            }
        )
        users = pa.table({"id": self.ids, "email": self.emails, "created_at": ts(self.created_at)})
        return {s.users: users, s.mechanic_availability_slots: slots, s.mechanic_availability_overrides: overrides}

    def mechanics_table(self) -> pa.Table:
        count = self.rating_count
        # Round half up to cents in integers, so both backends hold the same value.
        cents = (200 * self.rating_sum + count) // np.maximum(2 * count, 1)
        return pa.table(
            {
                "user_id": self.ids,
                "display_name": self.names,
                "timezone": take([z[0] for z in MECHANIC_ZONES], self.zone),
                "is_active": pa.array(self.is_active),
                "created_at": ts(self.created_at),
                "specialties": self.specialties,
                "avg_rating": pc.cast(pa.array(cents / 100), pa.decimal128(3, 2)),
                "total_reviews": pa.array(count, pa.int32()),
                "response_sla_minutes": pa.array(self.sla, pa.int32()),
                "bio": self.bio,
                "years_experience": pa.array(self.years, pa.int32()),
            }
        )
