"""Deterministic demo data: ``python -m dashboard.tools.demo --scale N [--seed S] [--database URL] [--replace]``.

Scale 1 is about 5,000 customers, 60 mechanics and 200,000 CRM interactions; customers and
their activity grow linearly with the scale, mechanics more slowly (about 1,650 at scale 100).

Time model: the demo's "now" is midnight UTC at the start of ``anchor`` (default: today, UTC).
History covers the 180 days before it; booked sessions reach up to 14 days after it. The same
seed and anchor give the same rows, ids included, on both backends.

Generation is vectorised (numpy + Arrow compute) in chunks of customers, each chunk with its
own generator seeded from (seed, chunk), so memory stays flat at any scale. A chunk holds a
customer's whole journey: intake requests, sessions, follow-up requests, files, extensions,
reviews, upsells, CRM interactions and emails. Mechanics, their weekly slots and days off
come first. Sessions are booked into free starts an hour apart, so no two sessions of a
mechanic clash with the app's session length and buffer (``scheduling.SlotRules``); a
request that no mechanic can take soon enough gets no session. Prices are the app's
(``scheduling.price_cents``). Follow-ups go through the app's lifecycle
(``dashboard.domain.followups``), and the email outbox holds the emails due in the last two hours
as pending work for the email job.

Loading is one transaction: PostgreSQL through ``COPY ... FROM STDIN (FORMAT csv, FREEZE)``
with the tables' keys, indexes and foreign keys dropped during the load and rebuilt after it
(faster than maintaining them row by row); DuckDB through ``INSERT ... SELECT`` from Arrow
relations, with its memory capped for the load. The next chunk is generated in a thread while
the current one loads.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import sys
import time
import uuid
import zoneinfo
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from tqdm import tqdm

from dashboard.domain import followups
from dashboard.core import schema as s
from dashboard.core.db import is_duckdb
from dashboard.core.migrate import upgrade
from dashboard.domain.reviews import text_fingerprint
from dashboard.domain.calendars.slots import SlotRules, price_cents
from dashboard.domain.funnel.rollups import refresh as refresh_funnel_rollups

HISTORY_DAYS = 180
UPCOMING_DAYS = 14
RULES = SlotRules()  # the app's session length and buffer
# A booked session holds its length plus a buffer either side (50 minutes), so bookable starts
# an hour apart never clash, and an instant session may start up to 10 minutes after one.
HOLD_MINUTES = RULES.session_minutes + 2 * RULES.buffer_minutes
START_STEP = -(-HOLD_MINUTES // 30)  # half-hours between bookable starts
START_SLACK = np.timedelta64(START_STEP * 30 - HOLD_MINUTES, "m").astype("timedelta64[us]")
MAX_WAIT_DAYS = 2  # a mechanic without a free start this soon after the wanted time is passed over
PICKS = 3  # mechanics asked per session; a request none of them can take gets no session
CHUNK_CUSTOMERS = 25_000
DUCKDB_LOAD_MEMORY = "3GB"
FOLLOW_UP_RULES = followups.FollowUpRules()  # the app's window and SLA targets
STAFF = (
    ("admin@pitwall.demo", "admin", "Demo Admin"),
    ("support@pitwall.demo", "support", "Demo Support"),
    ("manager@pitwall.demo", "manager", "Demo Manager"),
)
SUPPORT_EMAIL = "support@pitwall.demo"
BASE_PRICE_CENTS = {"chat": 2900, "video": 4900}

# Tables the generator fills, in load order (parents before children).
TABLES = (
    s.users, s.profiles, s.mechanic_availability_slots, s.mechanic_availability_overrides,
    s.requests, s.sessions, s.session_files, s.session_extensions, s.mechanic_reviews,
    s.upsell_recommendations, s.crm_interactions, s.email_outbox, s.mechanics,
)

# --- vocabulary ---------------------------------------------------------------------

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Chris", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley",
    "Steven", "Emily", "Andrew", "Michelle", "Joshua", "Amanda", "Kevin", "Melissa", "Brian",
    "Stephanie", "Jason", "Rebecca", "Ryan", "Laura", "Jacob", "Hannah", "Luis", "Sofia", "Carlos",
    "Maria", "Priya", "Arjun", "Wei", "Mei", "Omar", "Fatima", "Liam", "Olivia", "Noah", "Emma",
    "Ethan", "Chloe",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark",
    "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres",
    "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell",
    "Mitchell", "Carter", "Roberts", "Patel", "Shah", "Chen", "Wang", "Kim", "Murphy", "O'Brien",
    "Kowalski", "Schmidt", "Rossi",
)
# (IANA zone, weight, region: 0 Americas, 1 Europe, 2 Asia-Pacific)
CUSTOMER_ZONES = (
    ("America/New_York", .28, 0), ("America/Chicago", .17, 0), ("America/Denver", .06, 0),
    ("America/Phoenix", .03, 0), ("America/Los_Angeles", .19, 0), ("America/Toronto", .04, 0),
    ("America/Vancouver", .02, 0), ("Pacific/Honolulu", .01, 0), ("America/Anchorage", .01, 0),
    ("Europe/London", .08, 1), ("Europe/Dublin", .02, 1), ("Australia/Sydney", .05, 2),
    ("Australia/Melbourne", .02, 2), ("Pacific/Auckland", .02, 2),
)
MECHANIC_ZONES = (
    ("America/New_York", .22, 0), ("America/Chicago", .14, 0), ("America/Denver", .05, 0),
    ("America/Los_Angeles", .18, 0), ("America/Toronto", .04, 0), ("Europe/London", .12, 1),
    ("Europe/Berlin", .07, 1), ("Asia/Kolkata", .10, 2), ("Australia/Sydney", .08, 2),
)
CHANNEL_WEIGHTS = (.34, .22, .16, .12, .06, .10)  # order of s.ACQUISITION_CHANNELS
CATEGORY_WEIGHTS = (.19, .12, .14, .08, .08, .07, .20, .06, .06)  # order of s.REQUEST_CATEGORIES
CATEGORY_LABELS = (
    "engine", "brake", "electrical", "transmission", "suspension", "A/C and heating",
    "diagnostic", "tyre", "general",
)
VEHICLES = (
    ("Toyota", "Camry"), ("Toyota", "Corolla"), ("Toyota", "RAV4"), ("Toyota", "Tacoma"),
    ("Honda", "Civic"), ("Honda", "Accord"), ("Honda", "CR-V"), ("Ford", "F-150"), ("Ford", "Focus"),
    ("Ford", "Escape"), ("Ford", "Mustang"), ("Chevrolet", "Silverado"), ("Chevrolet", "Malibu"),
    ("Chevrolet", "Equinox"), ("Nissan", "Altima"), ("Nissan", "Rogue"), ("Jeep", "Wrangler"),
    ("Jeep", "Grand Cherokee"), ("Hyundai", "Elantra"), ("Hyundai", "Tucson"), ("Kia", "Sorento"),
    ("Subaru", "Outback"), ("Subaru", "Forester"), ("Volkswagen", "Jetta"), ("Volkswagen", "Golf"),
    ("BMW", "3 Series"), ("Mercedes-Benz", "C-Class"), ("Audi", "A4"), ("Tesla", "Model 3"),
    ("Mazda", "CX-5"), ("Ram", "1500"), ("GMC", "Sierra"),
)
CLASSICS = (("Volkswagen", "Beetle"), ("Ford", "Mustang"), ("Chevrolet", "Camaro"),
            ("Porsche", "911"), ("Datsun", "240Z"), ("Mercedes-Benz", "280SL"))
SYMPTOMS = (  # per category, same order as s.REQUEST_CATEGORIES
    ("makes a knocking noise when accelerating", "idles rough with the check engine light on",
     "loses power going uphill", "stalls at stop lights"),
    ("squeals every time I brake", "has a spongy brake pedal", "pulls to the left when braking",
     "grinds from the front wheels"),
    ("has a battery that dies overnight", "has dashboard lights that flicker",
     "won't crank, it just clicks", "has power windows that stopped working"),
    ("shifts hard from 2nd to 3rd", "slips when I accelerate", "takes a few seconds to engage reverse",
     "whines in every gear"),
    ("clunks over speed bumps", "feels floaty on the highway", "vibrates through the steering wheel at 60 mph",
     "leans a lot in corners"),
    ("only blows warm air from the A/C", "smells sweet when the heater is on", "has a fan that only works on high",
     "fogs up and the windows won't clear"),
    ("throws code P0420", "throws code P0301", "has a check engine light I can't identify",
     "failed its emissions test"),
    ("slowly loses tyre pressure", "wears the tyres on the inside edge", "keeps the TPMS light on",
     "has a bulge on a sidewall"),
    ("smells like burning oil", "rattles somewhere in the back", "leaks water into the footwell",
     "doesn't respond to the key fob"),
)
CONTEXTS = (
    "", "", " It started last week.", " It's worse when the engine is cold.",
    " A shop quoted me $1,200 and I'd like a second opinion.", " I'm on a road trip and need advice fast.",
    " I already replaced the battery.", " Happens mostly on the highway.",
)
FINDINGS = (
    ("Worn ignition coil on cylinder 3 causing a misfire.", "Carbon build-up on the throttle body.",
     "Low oil level and a leaking valve cover gasket."),
    ("Front pads worn to 2 mm; rotors scored.", "Air in the brake lines.", "Sticking caliper slide pin on the left front."),
    ("Parasitic drain from the glovebox light.", "Corroded battery terminals and a weak alternator.",
     "Blown fuse for the window circuit."),
    ("Transmission fluid low and dark.", "Worn shift solenoid.", "Torque converter shudder at light throttle."),
    ("Worn sway bar end links.", "Leaking rear shocks.", "Out-of-balance front wheels."),
    ("A/C refrigerant low; likely slow leak.", "Heater core seeping coolant.", "Failed blower motor resistor."),
    ("Catalytic converter efficiency below threshold.", "Misfire on cylinder 1 from a fouled plug.",
     "Loose gas cap triggering an EVAP code."),
    ("Slow leak from a nail in the tread.", "Alignment out of spec (toe-in).", "Failed TPMS sensor on the right rear."),
    ("Oil dripping onto the exhaust from the valve cover.", "Loose heat shield on the exhaust.",
     "Blocked sunroof drain tube."),
)
STEPS_TAKEN = (
    "Walked the customer through a visual inspection over video.",
    "Reviewed the freeze-frame data the customer read with an OBD-II scanner.",
    "Had the customer reproduce the noise while recording audio.",
    "Checked fluid levels and condition together on camera.",
    "Went through the service history and recent repairs.",
)
PARTS = (
    ("Ignition coil, spark plugs", "Throttle body cleaner", "Valve cover gasket"),
    ("Front brake pads, rotors", "Brake fluid (DOT 4)", "Caliper slide pin kit"),
    ("None", "Battery terminals, alternator", "15A fuse"),
    ("Transmission fluid (ATF)", "Shift solenoid", "None until further diagnosis"),
    ("Sway bar end links", "Rear shock absorbers", "None"),
    ("R-134a refrigerant, leak dye", "Heater core", "Blower motor resistor"),
    ("Catalytic converter", "Spark plug", "Gas cap"),
    ("Tyre plug kit", "None", "TPMS sensor"),
    ("Valve cover gasket", "Heat shield clamp", "None"),
)
NEXT_STEPS = (
    "Safe to drive short distances; book a shop visit this week.",
    "Replace the parts listed and book a quick follow-up call to confirm.",
    "Monitor for two weeks and send a photo if the symptom returns.",
    "Do not drive until the repair is done.",
    "DIY-friendly repair: follow the guide we shared.",
)
CUSTOMER_FILES = (
    ("dashboard_warning.jpg", "image/jpeg", 2.2e6), ("engine_bay.jpg", "image/jpeg", 3.1e6),
    ("noise_recording.m4a", "audio/mp4", 9e5), ("rattle_video.mp4", "video/mp4", 2.4e7),
    ("obd_scan.pdf", "application/pdf", 3e5), ("shop_quote.pdf", "application/pdf", 2e5),
)
MECHANIC_FILES = (
    ("repair_guide.pdf", "application/pdf", 6e5), ("wiring_diagram.png", "image/png", 1.1e6),
    ("parts_list.pdf", "application/pdf", 1.5e5),
)
MECHANIC_ROLES = ("ASE-certified master technician", "Dealer-trained technician",
                  "Independent shop owner", "Mobile mechanic", "Former fleet maintenance lead")
MECHANIC_STYLES = ("I explain things in plain English.", "Happy to help DIYers save money.",
                   "I'll tell you honestly whether it's safe to drive.", "Quick, practical diagnoses.")
REVIEW_OPENINGS = {
    "good": ("{} was fantastic.", "Really helpful session with {}.", "{} knew exactly what to look for.",
             "Super clear explanations from {}.", "{} saved me a trip to the dealer.", "Thanks {}!"),
    "mixed": ("Session with {} was okay.", "{} was friendly but a bit rushed.", "Decent help from {}."),
    "bad": ("{} didn't seem to listen.", "Not impressed with {}.", "{} was late and rushed."),
}
REVIEW_MIDDLES = {
    "good": ("Found the {} problem in minutes.", "Walked me through the {} check step by step.",
             "Explained the {} issue so I understood it.", "Got my {} problem sorted on the first call."),
    "mixed": ("Pointed me in the right direction on the {} issue.", "The {} advice helped a bit.",
              "Video kept freezing while we looked at the {} problem."),
    "bad": ("Didn't solve my {} problem.", "The {} advice turned out wrong.", "Had to take the {} problem to a shop anyway."),
}
REVIEW_CLOSINGS = {
    "good": ("Will book again.", "Highly recommend.", "Worth every cent.", "Five stars.", ""),
    "mixed": ("Might try again.", "Fine for the price.", ""),
    "bad": ("Wouldn't book again.", "Asked for a refund.", ""),
}
SHORT_NEGATIVE = ("Useless.", "Waste of money.", "Didn't help at all.", "Total ripoff.", "Rude.", "No show.")
PROFANE_SENTENCES = ("The dealer quote was crap, this was way better.", "No bullshit, just answers.",
                     "My old shop did a shitty job, this was great.", "I was pissed off at my dealer, this saved me.")
PROMO_SENTENCES = ("Use code FIXIT20 at https://cheap-parts.example/deal for 20% off parts.",
                   "Check out www.bestautodeals.example for cheaper parts.",
                   "Promo code GARAGE10 gets you a discount at https://partshub.example.")
BURST_TEXTS = ("Best mechanic ever!!!", "Amazing!!! Five stars!!!", "Great great great service!!",
               "10/10 would recommend!!!", "Absolutely perfect!!!", "Top mechanic, so fast!!!")
HIDDEN_TEXTS = {  # reasons without a flag of their own; the text shows the reason
    "harmful_or_illegal": "He showed me how to pull the airbag fuse so the light goes off for inspection.",
    "not_genuine_experience": "Never actually had a session, just leaving a review to test the app.",
    "off_topic": "Anyone know where to buy a cheap roof box? Mine broke on the highway.",
}
UPSELLS = {  # type -> ((title, description, price_cents), ...)
    "follow_up": (("15-minute follow-up video call", "Check in with your mechanic after the repair.", 1900),
                  ("Follow-up chat", "Ask the questions that come up once you're under the hood.", 1500),
                  ("Repair verification call", "Show the finished repair on video and get it checked.", 2900)),
    "maintenance_plan": (("Seasonal maintenance plan", "Four guided check-ups a year.", 9900),
                         ("12-month maintenance plan", "Unlimited chat plus quarterly video inspections.", 19900),
                         ("Brake care plan", "Pad and fluid checks every six months.", 7900)),
    "premium_upgrade": (("Pitwall Premium (monthly)", "Priority booking, free follow-up questions.", 999),
                        ("Pitwall Premium (annual)", "Twelve months of Premium at two months off.", 9900)),
}
OVERRIDE_REASONS = ("Public holiday", "Sick day", "Personal appointment", "Training course",
                    "Family commitment", "Garage inventory day")
FOLLOW_UP_CANCEL_REASONS = ("The follow-up session was cancelled.", "The customer sorted it out themselves.",
                            "The customer booked a new session instead.", "Duplicate of another follow-up.",
                            "No reply from the customer.")
EMAIL_BACKLOG = np.timedelta64(2, "h")  # emails due this close to now still wait in the outbox
EMAIL_MAX_ATTEMPTS = 5  # the email job's default
EMAIL_REFUSED = ("rejected by Resend: Invalid `to` field. The email address needs to follow the "
                 "`email@example.com` or `Name <email@example.com>` format.",
                 "rejected by Resend: The recipient's address is on the suppression list.")
EMAIL_TRANSIENT = ("429 rate_limit_exceeded: Too many requests. You can only make 2 requests per second.",
                   "500 application_error: An unexpected error occurred.",
                   "503 service_unavailable: The service is temporarily unavailable.")
HOUR_WEIGHTS = (1, .6, .4, .3, .3, .5, 1.2, 2.5, 3.5, 4, 4.2, 4.5, 5, 4.8, 4.3, 4.2, 4.5, 5.5, 6.5,
                7, 6.5, 5, 3.5, 2)

# --- small vectorised helpers -----------------------------------------------------------

US = np.timedelta64(1, "us")
NAT = np.datetime64("NaT", "us")
TS = pa.timestamp("us", tz="UTC")
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _minutes(x) -> np.ndarray:
    return (np.asarray(x, dtype=np.float64) * 60e6).astype(np.int64) * US


def _uuids(rng: np.random.Generator, n: int) -> pa.StringArray:
    """``n`` random version-4 UUIDs as text, the same as ``uuid.UUID(bytes=b, version=4)``."""
    b = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    hexed = np.empty((n, 32), np.uint8)
    hexed[:, 0::2], hexed[:, 1::2] = _HEX[b >> 4], _HEX[b & 15]
    out = np.full((n, 36), ord("-"), np.uint8)
    for dashes, (a, b) in enumerate(((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))):
        out[:, a + dashes:b + dashes] = hexed[:, a:b]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out))


def _take(pool, idx) -> pa.Array:
    return pa.array(pool, pa.string()).take(pa.array(np.asarray(idx, dtype=np.int64)))


def _pick(rng, pool, n) -> pa.Array:
    return _take(pool, rng.choice(len(pool), size=n))


def _join(*parts) -> pa.Array:
    """Concatenate arrays and strings element-wise (null if any part is null)."""
    return pc.binary_join_element_wise(*parts, "")


def _fill(templates, idx, values) -> pa.Array:
    """``templates[idx[i]].format(values[i])`` for every row, vectorised (one ``{}`` per template)."""
    prefix, suffix = zip(*(t.split("{}") for t in templates))
    return _join(_take(prefix, idx), values, _take(suffix, idx))


def _text(values) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values)), pa.string())


def _ts(values) -> pa.Array:
    return pa.array(np.asarray(values, dtype="datetime64[us]"), type=TS, from_pandas=True)


def _take_or_null(values: pa.Array, idx) -> pa.Array:
    """``values[idx]`` with null where ``idx`` is -1."""
    idx = np.asarray(idx)
    return values.take(pa.array(np.where(idx < 0, 0, idx), mask=idx < 0))


def _json_object(**fields) -> pa.Array:
    """A JSON object per row from string arrays (values quoted) and int arrays (bare)."""
    parts: list = []
    for key, values in fields.items():
        quoted = pa.types.is_string(values.type)
        parts += [", " if parts else "{", f'"{key}": ' + ('"' if quoted else "")]
        parts += [values if quoted else pc.cast(values, pa.string()), '"' if quoted else ""]
    return _join(*parts, "}")


def _local_to_utc(naive: np.ndarray, zone: str) -> np.ndarray:
    index = pd.DatetimeIndex(naive).tz_localize(zone, ambiguous=np.zeros(len(naive), bool),
                                                nonexistent="shift_forward")
    return index.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[us]")


def _utc_to_local(utc: np.ndarray, zone: str) -> np.ndarray:
    index = pd.DatetimeIndex(utc).tz_localize("UTC").tz_convert(zone).tz_localize(None)
    return index.to_numpy().astype("datetime64[us]")


def _dow(days: np.ndarray) -> np.ndarray:
    """Day of week, 0 = Sunday, of datetime64[D] values."""
    return (days.astype(np.int64) + 4) % 7


def _weighted_order(rng, n: int, weights) -> np.ndarray:
    """Per row, a random order of ``len(weights)`` items, heavier ones first (Efraimidis-Spirakis)."""
    keys = rng.random((n, len(weights))) ** (1 / np.asarray(weights, dtype=float))
    return np.argsort(-keys, axis=1)


# --- the plan: sizes and time window --------------------------------------------------


@dataclass(frozen=True)
class Plan:
    scale: float
    seed: int
    anchor: dt.date

    @property
    def now(self) -> np.datetime64:
        return np.datetime64(self.anchor, "D").astype("datetime64[us]")

    @property
    def start(self) -> np.datetime64:
        return self.now - np.timedelta64(HISTORY_DAYS, "D")

    @property
    def customers(self) -> int:
        return max(20, round(5000 * self.scale))

    @property
    def mechanics(self) -> int:
        return max(5, round(60 * self.scale ** 0.72))

    def chunks(self) -> list[tuple[int, int]]:
        """(first customer number, customers) per chunk."""
        return [(lo, min(CHUNK_CUSTOMERS, self.customers - lo))
                for lo in range(0, self.customers, CHUNK_CUSTOMERS)]


# --- mechanics, their weekly slots, days off and bookable timeline ---------------------


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
        self.ids = _uuids(rng, m)
        self.first_names = _pick(rng, FIRST_NAMES, m)
        last = _pick(rng, LAST_NAMES, m)
        self.names = _join(self.first_names, " ", last)
        self.emails = pc.utf8_lower(_join(self.first_names, ".", pc.replace_substring(last, "'", ""),
                                          _text(np.arange(1, m + 1)), "@mechanics.example.com"))
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
        self.leave_day = np.where(self.is_active, self.days,
                                  rng.integers(np.maximum(self.join_day, 0) + 20, HISTORY_DAYS + 2))
        self.created_at = (self.origin + self.join_day.astype("timedelta64[D]")).astype("datetime64[us]") \
            + _minutes(rng.uniform(8 * 60, 18 * 60, m))

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
        patterns = np.array([  # working days, Sunday first
            [0, 1, 1, 1, 1, 1, 0], [0, 1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1, 1], [1, 1, 0, 0, 1, 1, 1],
            [1, 1, 1, 1, 1, 1, 1]], bool)
        works = patterns[rng.choice(len(patterns), m, p=[.35, .25, .15, .15, .10])]  # (m, 7)
        shift = rng.choice([-2, -1, 0, 1, 2], m)[:, None]  # half-hours, per mechanic
        weekend = np.array([1, 0, 0, 0, 0, 0, 1], bool)
        day_start = np.where(weekend, 18, 18 + shift) + rng.choice([0, 0, 1, 2], (m, 7))
        day_end = np.where(weekend, 28 + rng.choice([0, 4, 8], (m, 1)), 34 + shift)
        morning = ~weekend & (rng.random((m, 1)) < 0.4)
        evening = ~weekend & (rng.random((m, 1)) < 0.7)
        evening_end = day_end + rng.choice([4, 6, 8], (m, 1))
        peak = rng.choice([1.25, 1.5], (m, 1), p=[.6, .4])
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
        v_day = np.repeat(rng.integers(0, self.days + 30, len(vacation)), length) \
            + np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
        mech, day = np.concatenate([mech, v_mech]), np.concatenate([day, v_day])
        reasons = np.concatenate([np.array(OVERRIDE_REASONS, object)[reason_idx],
                                  np.full(len(v_mech), "Vacation", object)])
        _, first = np.unique(mech * 100_000 + day, return_index=True)
        self.days_off = dict(mech=mech[first], day=day[first], reason=reasons[first])

    def _starts(self):
        """A start every START_STEP half-hours from the beginning of each run of open half-hours
        (working hours, while employed, outside days off): starts that far apart never clash."""
        d = np.arange(self.days)
        dow = _dow(self.origin + d.astype("timedelta64[D]"))
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
        self.sla = rng.choice([5, 10, 15, 20, 30], m, p=[.3, .3, .2, .1, .1])
        k = rng.choice([1, 2, 3, 4], m, p=[.2, .4, .3, .1])
        order = _weighted_order(rng, m, CATEGORY_WEIGHTS[:-1])
        values = np.concatenate([order[i, :k[i]] for i in range(m)])
        offsets = np.concatenate([[0], np.cumsum(k)]).astype(np.int32)
        self.specialties = pa.ListArray.from_arrays(pa.array(offsets), _take(s.REQUEST_CATEGORIES, values))
        role = _take(MECHANIC_ROLES, rng.integers(0, len(MECHANIC_ROLES), m))
        main = _take(CATEGORY_LABELS, order[:, 0])
        style = _take(MECHANIC_STYLES, rng.integers(0, len(MECHANIC_STYLES), m))
        self.bio = _join(role, " with ", _text(self.years), " years on the tools. Most of my work is ",
                         main, " problems. ", style)

    def _pick_table(self, plan: Plan):
        """Cumulative pick weights per (fortnight, customer region, UTC two-hour slot of the week).

        Mechanics are favoured when employed, popular, in the customer's region and open at
        that time; row ``key`` is stored as ``key + cdf`` so one searchsorted serves all rows.
        """
        m = self.n
        offset = np.array([_utc_offset_minutes(z[0], plan.anchor) for z in MECHANIC_ZONES])[self.zone]
        shift = (offset // 30).astype(np.int64)
        local = self.weekly.reshape(m, 7 * 48)  # Sunday 00:00 local first
        utc = local[np.arange(m)[:, None], (np.arange(7 * 48)[None, :] + shift[:, None]) % (7 * 48)]
        open_share = utc.reshape(m, 7 * 12, 4).mean(axis=2)  # (m, 84)
        self.fortnights = self.days // 14 + 1
        mid = np.arange(self.fortnights) * 14 + 7
        employed = (mid[:, None] >= self.join_day) & (mid[:, None] < self.leave_day)  # (fortnights, m)
        near = np.where(np.arange(3)[:, None] == self.region, 3.0, 0.35)  # (regions, m)
        w = (self.popularity * employed[:, None, None, :] * near[None, :, None, :]
             * (0.03 + open_share.T)[None, None, :, :] + 1e-9).reshape(-1, m)
        cdf = np.cumsum(w, axis=1)
        self._pick_cdf = (cdf / cdf[:, -1:] + np.arange(len(w))[:, None]).ravel()

    def pick(self, rng, wanted: np.ndarray, region: np.ndarray) -> np.ndarray:
        """A mechanic for each booking wanted at ``wanted`` (UTC) by a customer of ``region``."""
        day = (wanted - self.origin.astype("datetime64[us]")) // np.timedelta64(1, "D")
        fortnight = np.clip(day // 14, 0, self.fortnights - 1)
        utc_day = wanted.astype("datetime64[D]")
        hour = (wanted - utc_day.astype("datetime64[us]")) // np.timedelta64(1, "h")
        key = (fortnight * 3 + region) * 84 + _dow(utc_day) * 12 + hour // 2
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
            dow = _dow(self.origin + (half // 48).astype("timedelta64[D]"))
            at = np.maximum(local, self.origin.astype("datetime64[us]") + _minutes(half * 30))
            mech[booked], mult[booked] = asked, self.multiplier[asked, dow, half % 48]
            scheduled[booked] = self._in_zones(asked, at, _local_to_utc)
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
        local = self._in_zones(mech, wanted, _utc_to_local)
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
        slots = pa.table({
            "id": _uuids(rng, n),
            "mechanic_id": self.ids.take(pa.array(sl["mech"])),
            "day_of_week": pa.array(sl["dow"], pa.int32()),
            "start_time": pa.array(half_hour, pa.time64("us")),
            "end_time": pa.array((sl["end"] * 30 * 60e6).astype(np.int64), pa.time64("us")),
            "is_available": pa.array(sl["available"]),
            "price_multiplier": pc.cast(pa.array(sl["mult"]), pa.decimal128(3, 2)),
            "created_at": _ts(self.created_at[sl["mech"]]),
        })
        off = self.days_off
        dates = self.origin + off["day"].astype("timedelta64[D]")
        overrides = pa.table({
            "id": _uuids(rng, len(dates)),
            "mechanic_id": self.ids.take(pa.array(off["mech"])),
            "date": pa.array(dates, pa.date32()),
            "is_available": pa.array(np.zeros(len(dates), bool)),
            "reason": pa.array(off["reason"].tolist(), pa.string()),
            "created_at": _ts(np.minimum(dates.astype("datetime64[us]") - np.timedelta64(14, "D"), plan.now)),
        })
        users = pa.table({"id": self.ids, "email": self.emails, "created_at": _ts(self.created_at)})
        return {s.users: users, s.mechanic_availability_slots: slots,
                s.mechanic_availability_overrides: overrides}

    def mechanics_table(self) -> pa.Table:
        count = self.rating_count
        # Round half up to cents in integers, so both backends hold the same value.
        cents = (200 * self.rating_sum + count) // np.maximum(2 * count, 1)
        return pa.table({
            "user_id": self.ids,
            "display_name": self.names,
            "timezone": _take([z[0] for z in MECHANIC_ZONES], self.zone),
            "is_active": pa.array(self.is_active),
            "created_at": _ts(self.created_at),
            "specialties": self.specialties,
            "avg_rating": pc.cast(pa.array(cents / 100), pa.decimal128(3, 2)),
            "total_reviews": pa.array(count, pa.int32()),
            "response_sla_minutes": pa.array(self.sla, pa.int32()),
            "bio": self.bio,
            "years_experience": pa.array(self.years, pa.int32()),
        })


# --- one chunk of customers and everything they did --------------------------------------

REVIEW_MIX = {  # P(5, 4, 3, 2, 1 stars) for a good and for a poor mechanic
    "good": np.array([.72, .19, .04, .02, .03]),
    "poor": np.array([.42, .26, .12, .08, .12]),
}


def _customers(rng, plan: Plan, first: int, n: int) -> dict:
    c: dict = {"n": n, "ids": _uuids(rng, n)}
    c["first"] = _pick(rng, FIRST_NAMES, n)
    c["last"] = _pick(rng, LAST_NAMES, n)
    c["emails"] = pc.utf8_lower(_join(c["first"], ".", pc.replace_substring(c["last"], "'", ""),
                                      _text(np.arange(first + 1, first + n + 1)), "@example.com"))
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
    vehicle = np.where(classic, len(VEHICLES) + rng.integers(0, len(CLASSICS), n),
                       rng.integers(0, len(VEHICLES), n))
    age = np.round(rng.gamma(1.6, 4.5, n))
    year = np.where(classic, rng.integers(1962, 1986, n), np.clip(plan.anchor.year + 1 - age, 1985, None))
    return vehicle, year.astype(np.int64)


def _local_times(rng, plan: Plan, zone_offsets: np.ndarray, day: np.ndarray) -> np.ndarray:
    """UTC instants on local ``day`` (index into the history) at a typical hour for the customer."""
    hour_p = np.asarray(HOUR_WEIGHTS) / sum(HOUR_WEIGHTS)
    minute = rng.choice(24, len(day), p=hour_p) * 60 + rng.uniform(0, 60, len(day))
    return plan.start + day.astype("timedelta64[D]") + _minutes(minute - zone_offsets)


def _requests(rng, plan: Plan, c: dict) -> dict:
    """Intake requests: the first at sign-up, more for active customers; growth and weekends favoured."""
    days = np.arange(HISTORY_DAYS)
    weights = (1 + 1.5 * days / HISTORY_DAYS) * np.where(
        np.isin(_dow(plan.start.astype("datetime64[D]") + days.astype("timedelta64[D]")), (0, 6)), 1.3, 1.0)
    cdf = np.cumsum(weights) / weights.sum()
    offsets = np.array([_utc_offset_minutes(z[0], plan.anchor) for z in CUSTOMER_ZONES])[c["zone"]]
    n = c["n"]
    first_day = np.searchsorted(cdf, rng.random(n), side="right")
    first_at = _local_times(rng, plan, offsets, first_day)
    c["signup"] = np.clip(first_at - _minutes(rng.uniform(2, 40, n)), plan.start, plan.now - _minutes(60))
    has_intake = rng.random(n) < 0.96
    remaining = (HISTORY_DAYS - first_day) / HISTORY_DAYS
    extra = np.where(has_intake, rng.poisson(3.0 * c["activity"] * remaining), 0)
    cust = np.repeat(np.arange(n), extra)
    low = cdf[first_day[cust]]
    day = np.minimum(np.searchsorted(cdf, low + rng.random(len(cust)) * (1 - low), side="right"), HISTORY_DAYS - 1)
    created = np.concatenate([first_at[has_intake], _local_times(rng, plan, offsets[cust], day)])
    cust = np.concatenate([np.nonzero(has_intake)[0], cust])
    created = np.maximum(created, c["signup"][cust] + _minutes(1))
    keep = created < plan.now
    cust, created = cust[keep], created[keep]
    k = len(cust)
    second = rng.random(k) < 0.15
    other_vehicle, other_year = _vehicles(rng, plan, k)
    return {
        "cust": cust, "created": created,
        "category": rng.choice(len(s.REQUEST_CATEGORIES), k, p=CATEGORY_WEIGHTS),
        "vehicle": np.where(second, other_vehicle, c["vehicle"][cust]),
        "year": np.where(second, other_year, c["year"][cust]),
        "follow_up": np.full(k, -1), "parent": np.full(k, -1),
    }


def _utc_offset_minutes(zone: str, day: dt.date) -> float:
    """The zone's standard offset around ``day`` (good enough for when people are awake)."""
    return zoneinfo.ZoneInfo(zone).utcoffset(dt.datetime(day.year, 1, 15)).total_seconds() / 60


def _sessions(rng, plan: Plan, mech: Mechanics, c: dict, req: dict, take, booked_share, video_share,
              preferred=None) -> dict:
    """Sessions from requests (``take`` = chance per request), booked ahead (``booked_share``)
    or for now, with the ``preferred`` mechanic per request if given; consistent timestamps.
    Requests no mechanic can take get no session."""
    r = np.nonzero(rng.random(len(req["cust"])) < take)[0]
    k = len(r)
    created = req["created"][r] + _minutes(rng.uniform(1, 15, k))
    booked = rng.random(k) < np.broadcast_to(booked_share, len(req["cust"]))[r]
    lead = np.where(booked, np.clip(rng.lognormal(np.log(20 * 60), 1.0, k), 60, 6 * 1440), rng.uniform(1, 10, k))
    wanted = created + _minutes(lead)
    m, scheduled, mult = mech.book(rng, wanted, c["region"][req["cust"][r]], ~booked,
                                   None if preferred is None else preferred[r])
    keep = m >= 0
    r, created, m, scheduled, mult = r[keep], created[keep], m[keep], scheduled[keep], mult[keep]
    k = len(r)
    video = rng.random(k) < np.broadcast_to(video_share, len(req["cust"]))[r]
    accepted = created + _minutes(mech.sla[m] * rng.lognormal(-0.5, 0.6, k))
    late = np.where(rng.random(k) < 0.85, rng.uniform(0, 3, k), rng.uniform(3, 15, k))
    started = np.maximum(scheduled, accepted) + _minutes(late)
    extension = np.where(rng.random(k) < 0.1, rng.choice([10, 15, 20], k), 0)
    ext_status = np.where(extension > 0, rng.choice(len(s.EXTENSION_STATUSES), k, p=[0, .1, .25, .65]), -1)
    extended = np.isin(ext_status, (1, 3))
    duration = np.where(video, 15 + rng.gamma(2, 10, k), 10 + rng.gamma(2, 8, k)) + extension * extended
    ended = started + _minutes(duration)

    status = np.full(k, "completed", object)
    pick = rng.random(k)
    future = scheduled >= plan.now
    status[future] = np.select([pick < .2, pick < .55], ["pending", "scheduled"], "accepted")[future]
    status[~future & (pick < 0.08)] = "cancelled"
    status[(status == "completed") & (started >= plan.now)] = "accepted"  # booked just before now
    status[(status == "completed") & (ended >= plan.now)] = "live"
    status[(status == "accepted") & (accepted >= plan.now)] = "scheduled"
    was_accepted = np.isin(status, ("accepted", "live", "completed")) | (
        (status == "cancelled") & (pick < .04) & (accepted < plan.now))
    done = status == "completed"
    went_ahead = done | (status == "live")
    summary = np.where(done & (rng.random(k) < 0.93), ended + _minutes(rng.lognormal(np.log(25), 0.8, k)), NAT)
    summary = np.where(summary < plan.now, summary, NAT)
    cancelled = np.where(status == "cancelled", created + (scheduled - created) * rng.uniform(.2, 1, k), NAT)
    return {
        "req": r, "cust": req["cust"][r], "mech": np.where(status == "pending", -1, m),
        "video": video, "status": status, "created": created, "scheduled": scheduled,
        "accepted": np.where(was_accepted, accepted, NAT),
        "started": np.where(went_ahead, started, NAT), "ended": np.where(done, ended, NAT),
        "summary": summary, "cancelled": cancelled, "price": _prices(video, mult),
        "ext_minutes": np.where(went_ahead, extension, 0), "ext_status": ext_status,
    }


def _prices(video: np.ndarray, mult: np.ndarray) -> np.ndarray:
    """The app's price of each session (``scheduling.price_cents`` of the base price and the
    slot's multiplier), computed once per distinct pair."""
    key = np.round(mult * 100).astype(np.int64) * 2 + video
    distinct, inverse = np.unique(key, return_inverse=True)
    cents = [price_cents(BASE_PRICE_CENTS[s.SESSION_TYPES[k % 2]], Decimal(int(k // 2)) / 100) for k in distinct]
    return np.asarray(cents, np.int64)[inverse]


def _concat(a: dict, b: dict) -> dict:
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def _follow_ups(rng, plan: Plan, req: dict, ses: dict) -> dict:
    """Follow-up requests on ~15% of completed, summarised sessions, by the same customer,
    within the app's window after the session ended."""
    parent = np.nonzero(~np.isnat(ses["summary"]) & (rng.random(len(ses["summary"])) < 0.15))[0]
    created = ses["summary"][parent] + _minutes(rng.lognormal(np.log(2 * 1440), 1.0, len(parent)))
    keep = (created < plan.now) & (created <= ses["ended"][parent] + np.timedelta64(FOLLOW_UP_RULES.window_days, "D"))
    parent, created = parent[keep], created[keep]
    k = len(parent)
    kind = rng.choice(len(s.FOLLOW_UP_TYPES), k, p=[.55, .25, .20])
    base = ses["req"][parent]
    return {
        "cust": ses["cust"][parent], "created": created,
        "category": np.where(kind == 2, rng.choice(len(s.REQUEST_CATEGORIES), k, p=CATEGORY_WEIGHTS),
                             req["category"][base]),
        "vehicle": req["vehicle"][base], "year": req["year"][base],
        "follow_up": kind, "parent": parent,
    }


def _lifecycle(rng, plan: Plan, mech: Mechanics, c: dict, req: dict, ses: dict) -> dict:
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
    pace = rng.choice(3, n, p=[.8, .14, .06])
    median = np.select([pace == 0, pace == 1], [.3 * target, 1.2 * target], 1.5 * 1440)
    response = _minutes(np.minimum(median * rng.lognormal(0, np.where(pace == 0, .6, .5)), 6 * 1440))
    written = created + response * rng.uniform(.05, .4, n)  # assigned to write the answer
    parent = ses["mech"][req["parent"][f]]
    day = (written - mech.origin.astype("datetime64[us]")) // np.timedelta64(1, "D")
    stays = (rng.random(n) < .9) & (day >= mech.join_day[parent]) & (day < mech.leave_day[parent])
    writer = np.where(stays, parent, mech.pick(rng, written, c["region"][cust]))
    cancel = ~has & (rng.random(n) < np.array([.06, .4, .5])[kind])

    cancelled = np.where(has, ses["cancelled"][at], np.where(cancel, created + response * rng.uniform(.1, 1, n), NAT))
    assignee = np.where(has, ses["mech"][at], writer)
    assigned = np.where(has, ses["created"][at], written)
    assigned = np.where((assignee >= 0) & ~(assigned >= cancelled), assigned, NAT)  # not if cancelled first
    answered = np.where(has, np.where(ses["status"][at] == "completed", ses["ended"][at], NAT),
                        np.where(cancel, NAT, created + response))
    closed = answered + _minutes(np.minimum(rng.lognormal(np.log(1440), .8, n), 7 * 1440))
    assigned, answered, closed, cancelled = (np.where(x < plan.now, x, NAT)
                                             for x in (assigned, answered, closed, cancelled))
    state = np.select([~np.isnat(closed), ~np.isnat(answered), ~np.isnat(cancelled), ~np.isnat(assigned)],
                      ["closed", "answered", "cancelled", "assigned"], "open")
    reason = np.where(has, 0, rng.integers(1, len(FOLLOW_UP_CANCEL_REASONS), n))
    prices = np.array([[followups.DEFAULT_PRICES.get((p, t), BASE_PRICE_CENTS[followups.NEW_SESSION_TYPE])
                        for t in s.FOLLOW_UP_TYPES] for p in s.PLANS])

    k = len(req["cust"])
    out = {"state": np.full(k, "", object), "assignee": np.full(k, -1), "reason": np.full(k, -1),
           "price": np.full(k, -1), **{x: np.full(k, NAT) for x in ("assigned", "answered", "closed", "cancelled")}}
    out["state"][f], out["price"][f] = state, prices[c["premium"][cust].astype(int), kind]
    out["assignee"][f] = np.where(np.isnat(assigned), -1, assignee)
    out["reason"][f] = np.where(state == "cancelled", reason, -1)
    for name, values in (("assigned", assigned), ("answered", answered), ("closed", closed), ("cancelled", cancelled)):
        out[name][f] = values
    return out


FOLLOW_UP_TEXTS = (
    ("Quick question about the {} issue: is it safe to keep driving until the weekend?",
     "Quick question: which brand of parts would you buy for the {} repair?",
     "Follow-up on the {} fix: the noise came back a little. Is that normal?"),
    ("Could we do 10 more minutes on the {} check we started?",
     "Need a few more minutes to finish the {} repair together."),
)


def _null_unless(mask, values: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(mask, bool)), values, pa.scalar(None, values.type))


def _flat(pools) -> tuple[str, ...]:
    return tuple(x for pool in pools for x in pool)


def _requests_table(rng, plan: Plan, c: dict, req: dict, ses: dict, mech: Mechanics) -> pa.Table:
    k = len(req["cust"])
    has = req["session"] >= 0
    at = np.maximum(req["session"], 0)
    sst = np.where(has, ses["status"][at], "")
    age_days = (plan.now - req["created"]) / np.timedelta64(1, "D")
    status = np.select(
        [sst == "completed", sst == "cancelled", np.isin(sst, ("scheduled", "accepted", "live")), sst == "pending",
         age_days <= 7],
        ["completed", "cancelled", "matched", "open", "open"],
        np.where(rng.random(k) < .65, "cancelled", "open"))
    updated = np.select(
        [has & (status == "completed"), has & (status == "cancelled"), status == "cancelled",
         has & ~np.isnat(ses["accepted"][at]), has],
        [ses["ended"][at], ses["cancelled"][at], req["created"] + _minutes(rng.uniform(3, 7, k) * 1440),
         ses["accepted"][at], ses["created"][at]],
        NAT)
    # Follow-ups: the platform status of their state, updated at their last step.
    status = np.select([req["state"] == state for state in followups.PLATFORM_STATUS],
                       list(followups.PLATFORM_STATUS.values()), status)
    last_step = np.fmax.reduce(np.stack([req[x] for x in ("created", "assigned", "answered", "closed", "cancelled")]))
    updated = np.where(req["state"] != "", last_step, updated)

    label = _take(CATEGORY_LABELS, req["category"])
    make, model = zip(*(VEHICLES + CLASSICS))
    vehicle = _join(_text(req["year"]), " ", _take(make, req["vehicle"]), " ", _take(model, req["vehicle"]))
    symptom = _take(_flat(SYMPTOMS), req["category"] * 4 + rng.integers(0, 4, k))
    context = _take(CONTEXTS, rng.integers(0, len(CONTEXTS), k))
    description = _join("My ", vehicle, " ", symptom, ".", context)
    fu = req["follow_up"]
    question = _fill(FOLLOW_UP_TEXTS[0], rng.integers(0, 3, k), label)
    extension = _fill(FOLLOW_UP_TEXTS[1], rng.integers(0, 2, k), label)
    description = pc.if_else(pa.array(fu == 0), question, pc.if_else(
        pa.array(fu == 1), extension, pc.if_else(pa.array(fu == 2), _join("New issue: ", description), description)))
    follow_up_type = _null_unless(fu >= 0, _take(s.FOLLOW_UP_TYPES, np.maximum(fu, 0)))
    return pa.table({
        "id": req["ids"],
        "customer_id": c["ids"].take(pa.array(req["cust"])),
        "vehicle_make": _take(make, req["vehicle"]),
        "vehicle_model": _take(model, req["vehicle"]),
        "vehicle_year": pa.array(req["year"], pa.int32()),
        "category": _take(s.REQUEST_CATEGORIES, req["category"]),
        "description": description,
        "status": pa.array(status.tolist(), pa.string()),
        "created_at": _ts(req["created"]),
        "updated_at": _ts(updated),
        "parent_session_id": _take_or_null(ses["ids"], req["parent"]),
        "is_follow_up": pa.array(fu >= 0),
        "follow_up_type": follow_up_type,
        "follow_up_state": _null_unless(fu >= 0, pa.array(req["state"].tolist(), pa.string())),
        "assigned_mechanic_id": _take_or_null(mech.ids, req["assignee"]),
        "assigned_at": _ts(req["assigned"]),
        "answered_at": _ts(req["answered"]),
        "closed_at": _ts(req["closed"]),
        "cancelled_at": _ts(req["cancelled"]),
        "cancel_reason": _take_or_null(pa.array(FOLLOW_UP_CANCEL_REASONS), req["reason"]),
        "follow_up_price_cents": _null_unless(fu >= 0, pa.array(req["price"], pa.int32())),
        "rules_applied_at": _null_unless(fu >= 0, _ts(req["created"])),  # priced when created
    })


def _sessions_table(rng, c: dict, req: dict, ses: dict, mech: Mechanics) -> pa.Table:
    k = len(ses["cust"])
    category = req["category"][ses["req"]]
    has_summary = ~np.isnat(ses["summary"])
    finding = category * 3 + rng.integers(0, 3, k)
    steps = _join(_take(STEPS_TAKEN, rng.integers(0, len(STEPS_TAKEN), k)), " ",
                  _take(STEPS_TAKEN, rng.integers(0, len(STEPS_TAKEN), k)))
    return pa.table({
        "id": ses["ids"],
        "request_id": req["ids"].take(pa.array(ses["req"])),
        "customer_id": c["ids"].take(pa.array(ses["cust"])),
        "mechanic_id": _take_or_null(mech.ids, ses["mech"]),
        "session_type": pa.array(np.where(ses["video"], "video", "chat").tolist(), pa.string()),
        "status": pa.array(ses["status"].tolist(), pa.string()),
        "scheduled_at": _ts(ses["scheduled"]),
        "accepted_at": _ts(ses["accepted"]),
        "started_at": _ts(ses["started"]),
        "ended_at": _ts(ses["ended"]),
        "price_cents": pa.array(ses["price"], pa.int32()),
        "findings": _null_unless(has_summary, _take(_flat(FINDINGS), finding)),
        "steps_taken": _null_unless(has_summary, steps),
        "parts_needed": _null_unless(has_summary, _take(_flat(PARTS), finding)),
        "next_steps": _null_unless(has_summary, _take(NEXT_STEPS, rng.integers(0, len(NEXT_STEPS), k))),
        "summary_submitted_at": _ts(ses["summary"]),
        "created_at": _ts(ses["created"]),
    })


def _files_table(rng, c: dict, ses: dict, mech: Mechanics) -> pa.Table:
    went_ahead = np.nonzero(~np.isnat(ses["started"]) & (rng.random(len(ses["cust"])) < 0.3))[0]
    row = np.repeat(went_ahead, rng.choice([1, 2, 3], len(went_ahead), p=[.6, .3, .1]))
    k = len(row)
    by_customer = rng.random(k) < 0.8
    pool = np.where(by_customer, rng.integers(0, len(CUSTOMER_FILES), k),
                    len(CUSTOMER_FILES) + rng.integers(0, len(MECHANIC_FILES), k))
    name, kind, size = zip(*(CUSTOMER_FILES + MECHANIC_FILES))
    ids = _uuids(rng, k)
    session_ids = ses["ids"].take(pa.array(row))
    names = _take(name, pool)
    started = ses["started"][row]
    created = np.where(by_customer, ses["created"][row] + (started - ses["created"][row]) * rng.random(k),
                       started + _minutes(rng.uniform(2, 10, k)))
    uploader = pc.if_else(pa.array(by_customer), c["ids"].take(pa.array(ses["cust"][row])),
                          _take_or_null(mech.ids, ses["mech"][row]))
    return pa.table({
        "id": ids,
        "session_id": session_ids,
        "uploaded_by": uploader,
        "file_name": names,
        "storage_path": _join("sessions/", session_ids, "/", ids, "/", names),
        "content_type": _take(kind, pool),
        "size_bytes": pa.array((np.asarray(size)[pool] * rng.lognormal(0, 0.5, k)).astype(np.int64)),
        "created_at": _ts(created),
    })


def _extensions_table(rng, ses: dict) -> pa.Table:
    row = np.nonzero(ses["ext_minutes"] > 0)[0]
    k = len(row)
    live = ses["status"][row] == "live"
    status = np.where(live, 0, ses["ext_status"][row])
    minutes = ses["ext_minutes"][row]
    started = ses["started"][row]
    created = started + _minutes(rng.uniform(8, 14, k))
    ended = ses["ended"][row]
    created = np.where(np.isnat(ended), created, np.minimum(created, ended))
    return pa.table({
        "id": _uuids(rng, k),
        "session_id": ses["ids"].take(pa.array(row)),
        "minutes": pa.array(minutes, pa.int32()),
        "price_cents": pa.array(minutes * np.where(ses["video"][row], 150, 100), pa.int32()),
        "status": _take(s.EXTENSION_STATUSES, status),
        "created_at": _ts(created),
    })


def _banded(rng, pools: dict, band: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """Flattened pools (good, mixed, bad) and, per row, an index into its band's part."""
    sizes = np.array([len(p) for p in pools.values()])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return _flat(pools.values()), offsets[band] + (rng.random(len(band)) * sizes[band]).astype(np.int64)


def _flag_list(flag: np.ndarray) -> pa.ListArray:
    """One flag per row as text[], null where ``flag`` is empty."""
    has = flag != ""
    offsets = np.concatenate([[0], np.cumsum(has)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flag[has].tolist(), pa.string()),
                                    mask=pa.array(~has))


def _contact_details(rng, k: int) -> pa.Array:
    """A phone number or an e-mail address in a sentence, as people leave them in reviews."""
    phone = _join("Text me at (", _text(rng.choice([212, 312, 415, 503, 617, 702], k)), ") 555-01",
                  pc.utf8_lpad(_text(rng.integers(0, 100, k)), 2, "0"), " if you want details.")
    email = pc.utf8_lower(_join("Email me at ", _pick(rng, FIRST_NAMES, k), ".",
                                _text(rng.integers(10, 99, k)), "@gmail.com for details."))
    return pc.if_else(pa.array(rng.random(k) < 0.5), phone, email)


def _reviews_table(rng, plan: Plan, req: dict, ses: dict, mech: Mechanics, c: dict) -> pa.Table:
    """Reviews on ~60% of completed sessions; a moderation queue of flagged ones; a few hidden."""
    done = np.nonzero((ses["status"] == "completed") & (rng.random(len(ses["cust"])) < 0.6))[0]
    created = ses["ended"][done] + _minutes(rng.lognormal(np.log(300), 1.2, len(done)))
    row, created = done[created < plan.now], created[created < plan.now]
    k = len(row)
    m = ses["mech"][row]
    mix = mech.quality[m][:, None] * REVIEW_MIX["good"] + (1 - mech.quality[m][:, None]) * REVIEW_MIX["poor"]
    rating = 5 - (rng.random(k)[:, None] > np.cumsum(mix, axis=1)).sum(axis=1)
    band = np.where(rating >= 4, 0, np.where(rating == 3, 1, 2))
    openings, i = _banded(rng, REVIEW_OPENINGS, band)
    middles, j = _banded(rng, REVIEW_MIDDLES, band)
    closings, last = _banded(rng, REVIEW_CLOSINGS, band)
    text = pc.utf8_rtrim_whitespace(_join(
        _fill(openings, i, mech.first_names.take(pa.array(m))), " ",
        _fill(middles, j, _take(CATEGORY_LABELS, req["category"][ses["req"][row]])), " ", _take(closings, last)))

    age = (plan.now - created) / np.timedelta64(1, "D")
    u = rng.random(k)
    status = np.where(u < 0.01, "hidden", np.where(u < 0.03 + 0.2 * (age <= 21), "pending", "published"))
    flag = np.full(k, "", object)
    flag[status == "pending"] = rng.choice(
        ["personal_data", "link_or_promo", "profanity", "short_negative", "duplicate_text"],
        (status == "pending").sum(), p=[.22, .2, .18, .2, .2])
    reason = np.full(k, "", object)
    reason[status == "hidden"] = rng.choice(s.HIDE_REASONS, (status == "hidden").sum())
    flag[reason == "personal_information"] = "personal_data"
    flag[reason == "advertising"] = "link_or_promo"

    burst = _burst(rng, plan, ses, row, status, flag, rating, created)
    short = flag == "short_negative"
    rating[short] = rng.choice([1, 2], short.sum())
    silent = (status == "published") & ~burst & (rating >= 3) & (rng.random(k) < 0.12)  # a rating alone
    sources = np.nonzero((status == "published") & ~silent)[0]
    if len(sources):
        text = pc.if_else(pa.array(flag == "duplicate_text"), text.take(pa.array(rng.choice(sources, k))), text)
    else:
        flag[flag == "duplicate_text"] = "profanity"
    add = {"personal_data": _contact_details(rng, k),
           "link_or_promo": _take(PROMO_SENTENCES, rng.integers(0, len(PROMO_SENTENCES), k)),
           "profanity": _take(PROFANE_SENTENCES, rng.integers(0, len(PROFANE_SENTENCES), k))}
    for name, sentence in add.items():
        text = pc.if_else(pa.array(flag == name), _join(text, " ", sentence), text)
    text = pc.if_else(pa.array(short), _take(SHORT_NEGATIVE, rng.integers(0, len(SHORT_NEGATIVE), k)), text)
    text = pc.if_else(pa.array(burst), _take(BURST_TEXTS, rng.integers(0, len(BURST_TEXTS), k)), text)
    for name, replacement in HIDDEN_TEXTS.items():
        text = pc.if_else(pa.array(reason == name), pa.scalar(replacement), text)
    text = _null_unless(~silent, text)

    moderated = (status == "hidden") | ((status == "published") & (rng.random(k) < 0.02))
    moderated_at = np.minimum(created + _minutes(rng.lognormal(np.log(600), 1, k)), plan.now - _minutes(1))
    published = status == "published"
    mech.rating_sum += np.bincount(m[published], weights=rating[published], minlength=mech.n).astype(np.int64)
    mech.rating_count += np.bincount(m[published], minlength=mech.n)
    return pa.table({
        "id": _uuids(rng, k),
        "session_id": ses["ids"].take(pa.array(row)),
        "mechanic_id": mech.ids.take(pa.array(m)),
        "customer_id": c["ids"].take(pa.array(ses["cust"][row])),
        "rating": pa.array(rating, pa.int32()),
        "review_text": text,
        "text_fingerprint": _fingerprints(text),
        "helpful_count": pa.array(rng.poisson(0.2 + age / 90), pa.int32()),
        "created_at": _ts(created),
        "status": pa.array(status.tolist(), pa.string()),
        "flags": _flag_list(flag),
        "hidden_reason": _null_unless(reason != "", pa.array(reason.tolist(), pa.string())),
        "moderated_by": _null_unless(moderated, _take((SUPPORT_EMAIL, "admin@pitwall.demo"),
                                                      (rng.random(k) < 0.3).astype(int))),
        "moderated_at": _ts(np.where(moderated, moderated_at, NAT)),
        "rules_applied_at": _ts(created),  # flagged when written
    })


def _fingerprints(text: pa.Array) -> pa.Array:
    """The app's duplicate-detection hash of each text (computed once per distinct text)."""
    distinct = pc.unique(text)
    hashes = pa.array([text_fingerprint(t) for t in distinct.to_pylist()], pa.string())
    return hashes.take(pc.index_in(text, distinct))


def _burst(rng, plan: Plan, ses: dict, row, status, flag, rating, created) -> np.ndarray:
    """A few customers (one per ~5,000 reviews) review four or five sessions within the hour.

    As in the app's moderation rule, a review with three or more by the same customer in the
    24 hours before it is held as pending with 'review_burst'. Changes the arrays in place;
    returns which rows are part of a burst.
    """
    cust = ses["cust"][row]
    eligible = (status == "published") & (flag == "")
    counts = np.bincount(cust[eligible], minlength=1)
    burst = np.zeros(len(row), bool)
    for customer in rng.permutation(np.nonzero(counts >= 4)[0])[: 1 + len(row) // 5000]:
        rows = rng.permutation(np.nonzero(eligible & (cust == customer))[0])[: rng.integers(4, 6)]
        at = ses["ended"][row[rows]].max() + _minutes(np.cumsum(rng.uniform(2, 10, len(rows))))
        if at[-1] < plan.now:
            created[rows], rating[rows], burst[rows] = at, 5, True
            status[rows[3:]], flag[rows[3:]] = "pending", "review_burst"
    return burst


def _upsells(rng, plan: Plan, c: dict, ses: dict) -> dict:
    """Recommendations under each summary: shown, some clicked, fewer bought."""
    row = np.nonzero(~np.isnat(ses["summary"]))[0]
    n_recs = rng.choice([1, 2, 3], len(row), p=[.4, .4, .2])
    order = _weighted_order(rng, len(row), [3, 2, 1])  # follow_up, maintenance_plan, premium_upgrade
    owner = np.repeat(np.arange(len(row)), n_recs)
    kind = order[owner, np.arange(len(owner)) - np.repeat(np.cumsum(n_recs) - n_recs, n_recs)]
    rec = row[owner]
    shown = ses["summary"][rec] + _minutes(rng.uniform(1, 10, len(rec)))
    keep = (shown < plan.now) & ~((kind == 2) & c["premium"][ses["cust"][rec]])
    rec, kind, shown = rec[keep], kind[keep], shown[keep]
    k = len(rec)
    sizes = np.array([len(v) for v in UPSELLS.values()])
    option = np.concatenate([[0], np.cumsum(sizes)[:-1]])[kind] + (rng.random(k) * sizes[kind]).astype(np.int64)
    title, description, price = zip(*_flat(UPSELLS.values()))
    clicked = shown + _minutes(rng.lognormal(np.log(180), 1.2, k))
    clicked = np.where((rng.random(k) < np.array([.25, .12, .08])[kind]) & (clicked < plan.now), clicked, NAT)
    bought = clicked + _minutes(rng.lognormal(np.log(20), 1, k))
    bought = np.where((rng.random(k) < np.array([.45, .25, .35])[kind]) & (bought < plan.now), bought, NAT)
    return {"ids": _uuids(rng, k), "row": rec, "kind": kind, "option": option,
            "price": np.asarray(price)[option], "title": title, "description": description,
            "shown": shown, "clicked": clicked, "bought": bought}


def _upsells_table(c: dict, ses: dict, up: dict) -> pa.Table:
    return pa.table({
        "id": up["ids"],
        "customer_id": c["ids"].take(pa.array(ses["cust"][up["row"]])),
        "session_id": ses["ids"].take(pa.array(up["row"])),
        "recommendation_type": _take(s.RECOMMENDATION_TYPES, up["kind"]),
        "service_title": _take(up["title"], up["option"]),
        "service_description": _take(up["description"], up["option"]),
        "price_cents": pa.array(up["price"], pa.int32()),
        "shown_at": _ts(up["shown"]),
        "clicked_at": _ts(up["clicked"]),
        "purchased_at": _ts(up["bought"]),
    })


def _repeat_events(rng, first: np.ndarray, extra: np.ndarray, spread_days: float):
    """Per row, the event at ``first`` plus ``extra`` more within a few days; returns (row, time)."""
    row = np.repeat(np.arange(len(first)), 1 + extra)
    again = np.arange(len(row)) != np.repeat(np.cumsum(1 + extra) - 1 - extra, 1 + extra)
    at = first[row] + np.where(again, _minutes(rng.exponential(spread_days * 1440, len(row))), np.timedelta64(0, "us"))
    return row, at


def _interactions_table(rng, plan: Plan, c: dict, req: dict, ses: dict, up: dict) -> pa.Table:
    """The CRM trail of each journey, in the order it happens."""
    parts = []

    def add(kind: str, cust, session, metadata, at):
        keep = at < plan.now
        parts.append(pa.table({
            "customer_id": c["ids"].take(pa.array(cust[keep])),
            "interaction_type": pa.repeat(pa.scalar(kind), keep.sum()),
            "session_id": _take_or_null(ses["ids"], session[keep]),
            "metadata": metadata.filter(pa.array(keep)),
            "created_at": _ts(at[keep]),
        }))

    source = _take(("web", "ios", "android", "follow_up"),
                   np.where(req["follow_up"] >= 0, 3, rng.choice(3, len(req["cust"]), p=[.5, .3, .2])))
    add("intake", req["cust"], np.full(len(req["cust"]), -1),
        _json_object(request_id=req["ids"], category=_take(s.REQUEST_CATEGORIES, req["category"]), source=source),
        req["created"])
    done = np.nonzero(ses["status"] == "completed")[0]
    add("session", ses["cust"][done], done,
        _json_object(session_type=pa.array(np.where(ses["video"][done], "video", "chat").tolist()),
                     price_cents=pa.array(ses["price"][done])), ses["ended"][done])
    summarised = np.nonzero(~np.isnat(ses["summary"]))[0]
    viewer = rng.random(len(summarised)) < 0.88
    first_view = ses["summary"][summarised] + _minutes(rng.lognormal(np.log(90), 1, len(summarised)))
    row, at = _repeat_events(rng, first_view[viewer], rng.poisson(9, viewer.sum()), 4)
    viewed = summarised[viewer][row]
    add("summary_viewed", ses["cust"][viewed], viewed, pa.repeat(pa.scalar("{}"), len(row)), at)

    kind = _take(s.RECOMMENDATION_TYPES, up["kind"])
    row, at = _repeat_events(rng, up["shown"], rng.poisson(7, len(up["row"])), 5)
    # Impressions are many: they carry the type only; clicks and purchases name the recommendation.
    add("upsell_shown", ses["cust"][up["row"][row]], up["row"][row],
        _json_object(recommendation_type=kind).take(pa.array(row)), at)
    rec_meta = _json_object(recommendation_id=up["ids"], recommendation_type=kind)
    clicked = np.nonzero(~np.isnat(up["clicked"]))[0]
    row, at = _repeat_events(rng, up["clicked"][clicked], (rng.random(len(clicked)) < 0.2).astype(int), 2)
    row = clicked[row]
    add("upsell_clicked", ses["cust"][up["row"][row]], up["row"][row], rec_meta.take(pa.array(row)), at)
    bought = np.nonzero(~np.isnat(up["bought"]))[0]
    add("purchase", ses["cust"][up["row"][bought]], up["row"][bought],
        _json_object(recommendation_id=up["ids"].take(pa.array(bought)), price_cents=pa.array(up["price"][bought])),
        up["bought"][bought])
    paid = np.nonzero(~np.isnat(req["answered"]) & (req["price"] > 0))[0]  # as dashboard.domain.followups.mark_answered
    add("purchase", req["cust"][paid], req["parent"][paid],
        _json_object(follow_up_id=req["ids"].take(pa.array(paid)),
                     follow_up_type=_take(s.FOLLOW_UP_TYPES, req["follow_up"][paid]),
                     price_cents=pa.array(req["price"][paid])), req["answered"][paid])
    table = pa.concat_tables(parts)
    return table.add_column(0, "id", _uuids(rng, table.num_rows))


def _emails_table(rng, plan: Plan, c: dict, ses: dict, mech: Mechanics) -> pa.Table:
    """Milestone emails already due: mostly sent, a few failed, skipped for opted-out customers."""
    could_start = np.maximum(ses["scheduled"], ses["accepted"])
    late = ses["started"] - could_start
    events = (  # milestone, rows, time, recipient (0 customer, 1 mechanic, 2 support)
        ("booking_confirmed", np.ones(len(late), bool), ses["created"], 0),
        ("mechanic_assigned", ~np.isnat(ses["accepted"]), ses["accepted"], 0),
        ("session_starting", ~np.isnat(ses["started"]) & (ses["scheduled"] - _minutes(5) > ses["created"]),
         ses["scheduled"] - _minutes(5), 0),
        ("session_ended", ~np.isnat(ses["ended"]), ses["ended"], 0),
        ("summary_delivered", ~np.isnat(ses["summary"]), ses["summary"], 0),
        ("mechanic_nudge", late > _minutes(3), could_start + _minutes(3), 1),
        ("support_alert", late > _minutes(8), could_start + _minutes(8), 2),
    )
    rows, milestone, at, to = [], [], [], []
    for i, (_, mask, when, recipient) in enumerate(events):
        r = np.nonzero(mask & (when < plan.now))[0]
        rows.append(r), milestone.append(np.full(len(r), i)), at.append(when[r]), to.append(np.full(len(r), recipient))
    row, milestone, at, to = map(np.concatenate, (rows, milestone, at, to))
    k = len(row)
    customer = ses["cust"][row]
    recipient = pc.if_else(pa.array(to == 0), c["emails"].take(pa.array(customer)), pc.if_else(
        pa.array(to == 1), _take_or_null(mech.emails, np.where(to == 1, ses["mech"][row], -1)),
        pa.scalar(SUPPORT_EMAIL)))
    # The job sends most at the first attempt, some after retries; Resend refuses a few
    # addresses, and the job gives up on a few after the maximum attempts. Emails due in the
    # last EMAIL_BACKLOG still wait: most not tried yet, some rate-limited and due again soon.
    u = rng.random(k)
    skipped = (to == 0) & c["opt_out"][customer]
    waiting = ~skipped & (at >= plan.now - EMAIL_BACKLOG)
    retrying = waiting & (u < .3)
    done = ~skipped & ~waiting
    refused, gave_up = done & (u < .006), done & (u >= .006) & (u < .012)
    status = np.select([skipped, waiting, refused | gave_up], ["skipped", "pending", "failed"], "sent")
    attempts = np.select([skipped | (waiting & ~retrying), retrying, refused, gave_up, u < .06],
                         [0, rng.integers(1, EMAIL_MAX_ATTEMPTS, k), 1, EMAIL_MAX_ATTEMPTS, rng.integers(2, 4, k)], 1)
    backoff = _minutes(2.0 ** np.maximum(attempts - 1, 0))  # the job's wait after an attempt: 1, 2, 4 ... minutes
    done_at = at + (backoff - _minutes(1)) + _minutes(rng.uniform(0.02, 0.5, k))  # after 1 + 2 + ... minutes of retries
    tried_at = at + (plan.now - at) * rng.random(k)  # a waiting email's last attempt
    errors = (*EMAIL_REFUSED, *(f"gave up after {EMAIL_MAX_ATTEMPTS} attempts: {e}" for e in EMAIL_TRANSIENT),
              EMAIL_TRANSIENT[0])
    error = np.select([refused, gave_up, retrying], [rng.integers(0, len(EMAIL_REFUSED), k),
                      len(EMAIL_REFUSED) + rng.integers(0, len(EMAIL_TRANSIENT), k), len(errors) - 1], -1)
    sent = status == "sent"
    return pa.table({
        "id": _uuids(rng, k),
        "session_id": ses["ids"].take(pa.array(row)),
        "milestone": _take([e[0] for e in events], milestone),
        "recipient": recipient,
        "status": pa.array(status.tolist(), pa.string()),
        "attempts": pa.array(attempts, pa.int32()),
        "next_attempt_at": _ts(np.select([retrying, done & ~sent], [tried_at + backoff, done_at], at)),
        "last_error": _take_or_null(pa.array(errors), error),
        "skip_reason": _null_unless(skipped, pa.array(np.full(k, "customer opted out of emails").tolist())),
        "provider_message_id": _null_unless(sent, _uuids(rng, k)),
        "sent_at": _ts(np.where(sent, done_at, NAT)),
        "updated_at": _ts(np.select([done, retrying], [done_at, tried_at], at)),
        "created_at": _ts(at),
    })


def _customer_tables(c: dict) -> dict[sa.Table, pa.Table]:
    signup = _ts(c["signup"])
    return {
        s.users: pa.table({"id": c["ids"], "email": c["emails"], "created_at": signup}),
        s.profiles: pa.table({
            "id": c["ids"],
            "full_name": _join(c["first"], " ", c["last"]),
            "plan": _take(s.PLANS, c["premium"].astype(int)),
            "timezone": _take([z[0] for z in CUSTOMER_ZONES], c["zone"]),
            "email_opt_out": pa.array(c["opt_out"]),
            "acquisition_channel": _take(s.ACQUISITION_CHANNELS, c["channel"]),
            "created_at": signup,
        }),
    }


def _chunk(plan: Plan, mech: Mechanics, number: int, first: int, n: int) -> dict[sa.Table, pa.Table]:
    """Every row that customers ``first`` .. ``first + n - 1`` produce, per table."""
    rng = np.random.default_rng([plan.seed, 1, number])
    c = _customers(rng, plan, first, n)
    req = _requests(rng, plan, c)
    ses = _sessions(rng, plan, mech, c, req, np.where(c["premium"][req["cust"]], .9, .76), .4, .6)
    follow = _follow_ups(rng, plan, req, ses)
    kind = follow["follow_up"]
    follow_ses = _sessions(rng, plan, mech, c, follow, np.array([0, .6, .7])[kind], np.array([0, .1, .4])[kind],
                           np.array([0, 0, .4])[kind], preferred=ses["mech"][follow["parent"]])
    follow_ses["req"] += len(req["cust"])
    req, ses = _concat(req, follow), _concat(ses, follow_ses)
    req["session"] = np.full(len(req["cust"]), -1)
    req["session"][ses["req"]] = np.arange(len(ses["req"]))
    req.update(_lifecycle(rng, plan, mech, c, req, ses))
    req["ids"], ses["ids"] = _uuids(rng, len(req["cust"])), _uuids(rng, len(ses["cust"]))
    up = _upsells(rng, plan, c, ses)
    return {
        **_customer_tables(c),
        s.requests: _requests_table(rng, plan, c, req, ses, mech),
        s.sessions: _sessions_table(rng, c, req, ses, mech),
        s.session_files: _files_table(rng, c, ses, mech),
        s.session_extensions: _extensions_table(rng, ses),
        s.mechanic_reviews: _reviews_table(rng, plan, req, ses, mech, c),
        s.upsell_recommendations: _upsells_table(c, ses, up),
        s.crm_interactions: _interactions_table(rng, plan, c, req, ses, up),
        s.email_outbox: _emails_table(rng, plan, c, ses, mech),
    }


# --- loading ---------------------------------------------------------------------------------


class DatabaseNotEmpty(RuntimeError):
    """The database already holds data; ``str()`` is one line for people."""


def _table_sql(conn: Connection, table: sa.Table) -> str:
    """The table's name in SQL; ``auth.users`` is plain ``users`` on DuckDB."""
    prep = conn.dialect.identifier_preparer
    return prep.quote(table.name) if is_duckdb(conn) else prep.format_table(table)


def _columns_sql(conn: Connection, data: pa.Table) -> str:
    return ", ".join(conn.dialect.identifier_preparer.quote(c) for c in data.column_names)


class _PostgresSink:
    """``COPY ... FROM STDIN`` in CSV, written in large batches; text[] as array literals."""

    def __init__(self, conn: Connection):
        self._conn = conn
        self._cursor = conn.connection.driver_connection.cursor()

    def write(self, table: sa.Table, data: pa.Table) -> None:
        for i, field in enumerate(data.schema):
            if pa.types.is_list(field.type):
                literal = _join("{", pc.binary_join(data.column(i), ","), "}")
                data = data.set_column(i, field.name, literal)
        sql = (f"COPY {_table_sql(self._conn, table)} ({_columns_sql(self._conn, data)}) "
               "FROM STDIN (FORMAT csv, FREEZE)")
        with self._cursor.copy(sql) as copy:
            for batch in data.to_batches(max_chunksize=200_000):
                buffer = io.BytesIO()
                pcsv.write_csv(batch, buffer, pcsv.WriteOptions(include_header=False))
                copy.write(buffer.getbuffer())


class _DuckDBSink:
    """``INSERT ... SELECT`` from the Arrow table as a relation.

    Not ``register``: a view registered and dropped inside the load's transaction keeps its
    Arrow data alive until the commit, which at scale 100 is gigabytes.
    """

    def __init__(self, conn: Connection):
        self._conn = conn
        self._raw = conn.connection.driver_connection

    def write(self, table: sa.Table, data: pa.Table) -> None:
        columns = _columns_sql(self._conn, data)
        self._raw.from_arrow(data).query(
            "demo_rows", f"INSERT INTO {_table_sql(self._conn, table)} ({columns}) SELECT {columns} FROM demo_rows")


def _existing(conn: Connection, tables) -> list[sa.Table]:
    inspector = sa.inspect(conn)
    return [t for t in tables if inspector.has_table(t.name, schema=None if is_duckdb(conn) else t.schema)]


def _has_rows(conn: Connection, tables) -> bool:
    return any(conn.execute(sa.select(sa.literal(1)).select_from(t).limit(1)).first()
               for t in _existing(conn, tables))


def has_data(engine: Engine) -> bool:
    """Whether any table the demo fills already has rows (the tables need not exist yet)."""
    with engine.connect() as conn:
        return _has_rows(conn, TABLES)


def _with_dependents(tables) -> list[sa.Table]:
    """``tables`` plus every table whose foreign keys reach them (what TRUNCATE CASCADE empties)."""
    out = list(tables)
    grew = True
    while grew:
        extra = [t for t in s.metadata.sorted_tables
                 if t not in out and any(fk.column.table in out for fk in t.foreign_keys)]
        out += extra
        grew = bool(extra)
    return out


def _clear(conn: Connection, tables) -> None:
    tables = _existing(conn, tables)  # a table of a later migration may not be there yet
    if is_duckdb(conn):
        # Dropped and created anew (DuckDB's tables have no foreign keys): a DELETE keeps the
        # old rows' versions and index entries in memory until the commit, which at scale 100
        # is more than the load's memory cap.
        for table in tables:
            conn.execute(sa.text(f"DROP TABLE {_table_sql(conn, table)}"))
            table.create(conn)
    else:
        conn.execute(sa.text(f"TRUNCATE {', '.join(_table_sql(conn, t) for t in tables)} CASCADE"))


@contextlib.contextmanager
def _without_keys(conn: Connection, tables):
    """PostgreSQL: drop the keys, indexes and foreign keys of ``tables`` during the load.

    Building them once afterwards (sorted, in parallel) beats maintaining them row by row,
    and a failed load rolls the whole transaction back, definitions included.
    """
    scope = ("WITH target AS (SELECT to_regclass(name)::oid AS oid "
             "FROM unnest(CAST(:names AS text[])) AS name) ")
    names = {"names": [t.fullname for t in tables]}
    constraints = conn.execute(sa.text(
        scope + "SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname), "
        "format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid)), "
        "c.contype = 'f' FROM pg_constraint c WHERE c.contype IN ('p', 'u', 'f') AND ("
        "c.conrelid IN (SELECT oid FROM target) OR (c.contype = 'f' AND c.confrelid IN (SELECT oid FROM target)))"
    ), names).all()
    indexes = conn.execute(sa.text(
        scope + "SELECT format('DROP INDEX %s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid) "
        "FROM pg_index i WHERE i.indrelid IN (SELECT oid FROM target) AND NOT EXISTS ("
        "SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))"
    ), names).all()
    foreign = [c for c in constraints if c[2]]
    keys = [c for c in constraints if not c[2]]
    for drop, *_ in foreign + keys + indexes:
        conn.execute(sa.text(drop))
    yield
    conn.execute(sa.text("SET LOCAL maintenance_work_mem = '1GB'"))
    for _, create, *_ in keys + indexes + foreign:
        conn.execute(sa.text(create))


@contextlib.contextmanager
def _duckdb_memory(conn: Connection):
    """DuckDB: cap its memory during the load (it spills to disk) so a large scale fits anywhere."""
    previous = conn.execute(sa.text("SELECT current_setting('memory_limit')")).scalar_one()
    conn.execute(sa.text(f"SET memory_limit = '{DUCKDB_LOAD_MEMORY}'"))
    try:
        yield
    finally:
        conn.execute(sa.text(f"SET memory_limit = '{previous}'"))


def _add_settings(conn: Connection) -> None:
    """The demo's staff, base prices and upsell catalogue, keeping what the database already has.

    The catalogue's first service of each type is the active one; the others are the older
    offers that past recommendations show.
    """
    conn.execute(sa.text(
        f"INSERT INTO {_table_sql(conn, s.staff_roles)} (email, role, display_name) "
        "VALUES (:email, :role, :name) ON CONFLICT (email) DO NOTHING"),
        [{"email": e, "role": r, "name": n} for e, r, n in STAFF])
    conn.execute(sa.text(
        f"INSERT INTO {_table_sql(conn, s.session_base_prices)} (session_type, price_cents) "
        "VALUES (:type, :cents) ON CONFLICT (session_type) DO NOTHING"),
        [{"type": t, "cents": c} for t, c in BASE_PRICE_CENTS.items()])
    conn.execute(sa.text(
        f"INSERT INTO {_table_sql(conn, s.upsell_services)} "
        "(id, recommendation_type, title, description, price_cents, is_active) "
        "VALUES (:id, :type, :title, :description, :cents, :active) ON CONFLICT DO NOTHING"),
        [{"id": uuid.uuid5(uuid.NAMESPACE_URL, f"pitwall-demo:{title}"), "type": kind, "title": title,
          "description": description, "cents": cents, "active": i == 0}
         for kind, offers in UPSELLS.items() for i, (title, description, cents) in enumerate(offers)])


class _Progress:
    """A tqdm bar per table (rows loaded) and one for customers."""

    def __init__(self, enabled: bool, customers: int):
        self._enabled = enabled
        self._bars: dict[str, tqdm] = {}
        self.customers = tqdm(total=customers, desc="customers", unit="", unit_scale=True, disable=not enabled)

    def add(self, table: str, rows: int) -> None:
        if table not in self._bars:
            self._bars[table] = tqdm(desc=table, unit=" rows", unit_scale=True, disable=not self._enabled,
                                     position=len(self._bars) + 1)
        self._bars[table].update(rows)

    def close(self) -> None:
        for bar in (self.customers, *self._bars.values()):
            bar.close()


def _chunks_ahead(plan: Plan, mech: Mechanics):
    """(customers, tables) per chunk; the next chunk is generated in a thread while this one loads."""
    chunks = plan.chunks()
    with ThreadPoolExecutor(max_workers=1) as pool:  # one worker: chunks are made in order
        upcoming = pool.submit(_chunk, plan, mech, 0, *chunks[0])
        for number, (_, n) in enumerate(chunks):
            current = upcoming
            if number + 1 < len(chunks):
                upcoming = pool.submit(_chunk, plan, mech, number + 1, *chunks[number + 1])
            yield n, current.result()


def generate(engine: Engine, scale: float, seed: int = 7, anchor: dt.date | None = None,
             progress: bool = True, *, replace: bool = False) -> dict[str, int]:
    """Migrate, then load the demo data in one transaction; returns rows per table.

    Raises DatabaseNotEmpty if the demo's tables hold rows, unless ``replace`` (which empties
    them, the audit log and the tables that reference them first).
    """
    upgrade(engine)
    plan = Plan(scale, seed, anchor or dt.datetime.now(dt.timezone.utc).date())
    counts = {t.name: 0 for t in TABLES}
    bars = _Progress(progress, plan.customers)
    try:
        with engine.begin() as conn:
            if not replace and _has_rows(conn, TABLES):
                raise DatabaseNotEmpty("The database already has data; use --replace to empty it first.")
            _clear(conn, _with_dependents((*TABLES, s.audit_log)) if replace else TABLES)
            sink = _DuckDBSink(conn) if is_duckdb(conn) else _PostgresSink(conn)

            def write(table: sa.Table, data: pa.Table) -> None:
                sink.write(table, data)
                counts[table.name] += data.num_rows
                bars.add(table.name, data.num_rows)

            with _duckdb_memory(conn) if is_duckdb(conn) else _without_keys(conn, _with_dependents(TABLES)):
                mech = Mechanics(plan)
                for table, data in mech.tables(plan).items():
                    write(table, data)
                for n, tables in _chunks_ahead(plan, mech):
                    for table, data in tables.items():
                        write(table, data)
                    bars.customers.update(n)
                write(s.mechanics, mech.mechanics_table())
            _add_settings(conn)
    finally:
        bars.close()
    with engine.connect() as conn:
        conn.execute(sa.text("CHECKPOINT" if is_duckdb(conn) else "ANALYZE"))
        conn.commit()
    counts[s.crm_funnel_progress.name] = sum(r.rows for r in refresh_funnel_rollups(engine, rebuild=True))
    counts[s.staff_roles.name] = len(STAFF)
    return counts


def load_if_empty(engine: Engine, scale: float, seed: int = 7, progress: bool = True) -> bool:
    """Migrate; load the demo data only if there are no users yet. Returns whether it loaded."""
    upgrade(engine)
    with engine.connect() as conn:
        if conn.execute(sa.select(sa.literal(1)).select_from(s.users).limit(1)).first():
            return False
    generate(engine, scale, seed, progress=progress)
    return True


# --- command line -------------------------------------------------------------------------------


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= 1000:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 1000, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    from dashboard.core.settings import ConfigError, load_settings, normalize_url
    from dashboard.core.db import DatabaseUnavailable, check_connection, explain_failure, make_engine

    parser = argparse.ArgumentParser(prog="python -m dashboard.tools.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=_scale, required=True, help="1 = about 5,000 customers (0 < N <= 1000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--anchor", type=dt.date.fromisoformat, help="the demo's today, YYYY-MM-DD (default: today UTC)")
    parser.add_argument("--database", help="database URL (default: the configured one)")
    parser.add_argument("--replace", action="store_true", help="empty the demo's tables first")
    args = parser.parse_args(argv)
    url, engine = "", None
    try:
        url = normalize_url(args.database) if args.database else load_settings().database_url
        engine = make_engine(url)
        check_connection(engine)
        if not args.replace and has_data(engine):
            raise DatabaseNotEmpty("The database already has data: nothing loaded. Add --replace to empty it first.")
        started = time.monotonic()
        counts = generate(engine, args.scale, args.seed, args.anchor, replace=args.replace)
    except (ConfigError, DatabaseUnavailable, DatabaseNotEmpty) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except sa.exc.SQLAlchemyError as exc:
        print(f"error: {explain_failure(exc, url)}", file=sys.stderr)
        return 1
    finally:
        if engine is not None:
            engine.dispose()
    print(f"Loaded {sum(counts.values()):,} rows in {time.monotonic() - started:.1f} s "
          f"(scale {args.scale:g}, seed {args.seed}):")
    for name, rows in counts.items():
        print(f"  {name:<32} {rows:>12,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
