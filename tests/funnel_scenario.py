"""The hand-built funnel of tests/test_funnel.py, tests/test_funnel_page.py and the
``crm_db`` fixture: eleven customers' journeys, their profiles and requests.

The period is 1-10 March 2024 in America/New_York (DST starts on 10 March): entries count
from 2024-03-01 05:00 UTC to 2024-03-11 04:00 UTC. In UTC the same dates run from
03-01 00:00 to 03-11 00:00. Default steps: intake -> session -> summary_viewed ->
upsell_clicked -> purchase, window 14 days. The comments of ``JOURNEYS`` work out what
each customer reaches; the tests count from them.
"""

from __future__ import annotations

import datetime as dt
import uuid

from dashboard.core import schema as s
from dashboard.core.period import Period
from tests.factories import journeys_for

NY = Period(dt.date(2024, 3, 1), dt.date(2024, 3, 10), "America/New_York")
UTC = Period(NY.start, NY.end, "UTC")


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


C = {name: uuid.uuid4() for name in "ABCDEFGIJKM"}  # customers
M = {name: uuid.uuid4() for name in ("brakes", "electrical", "none")}  # mechanics
S = {name: uuid.uuid4() for name in ("A", "B0", "B1", "C", "D", "E", "J")}  # sessions: customer, mechanic

SESSIONS = {"A": "brakes", "B0": "brakes", "B1": "electrical", "C": "none", "D": "brakes", "E": "electrical", "J": None}

JOURNEYS = {  # customer: [(type, time[, session])]
    # A: steps 1-5; session and summary view at the same instant, click and purchase too.
    "A": [
        ("intake", utc(2024, 3, 2, 12)),
        ("session", utc(2024, 3, 2, 13), "A"),  # +1 h
        ("summary_viewed", utc(2024, 3, 2, 13), "A"),  # +0 (same instant counts)
        ("upsell_shown", utc(2024, 3, 3, 9), "A"),
        ("upsell_clicked", utc(2024, 3, 3, 10), "A"),  # +21 h
        ("purchase", utc(2024, 3, 3, 10), "A"),
    ],  # +0
    # B: repeats. Second intake ignored; session before entry ignored; the click before the
    # summary view is ignored; earliest of three views counts. Reaches step 4.
    "B": [
        ("session", utc(2024, 3, 4, 8), "B0"),
        ("intake", utc(2024, 3, 4, 9)),
        ("intake", utc(2024, 3, 5, 9)),
        ("upsell_shown", utc(2024, 3, 5, 11), "B0"),
        ("upsell_clicked", utc(2024, 3, 5, 12), "B0"),
        ("session", utc(2024, 3, 6, 9), "B1"),  # +2 days (exactly the 2-day window)
        ("summary_viewed", utc(2024, 3, 6, 10), "B1"),  # +1 h
        ("summary_viewed", utc(2024, 3, 6, 11), "B1"),
        ("summary_viewed", utc(2024, 3, 7), "B1"),
        ("upsell_shown", utc(2024, 3, 7, 12), "B1"),
        ("upsell_clicked", utc(2024, 3, 8, 9), "B1"),
    ],  # +47 h
    # C: the session 1 minute inside the window, the summary view 1 second outside it.
    "C": [
        ("intake", utc(2024, 3, 6)),
        ("session", utc(2024, 3, 19, 23, 59), "C"),  # +14 days - 60 s
        ("summary_viewed", utc(2024, 3, 20, 0, 0, 1), "C"),
    ],  # outside
    # D: session and summary view exactly at entry + 14 days (the window includes its end).
    "D": [
        ("intake", utc(2024, 3, 7)),
        ("session", utc(2024, 3, 21), "D"),  # +14 days
        ("summary_viewed", utc(2024, 3, 21), "D"),
    ],  # +0
    # E: an intake on 29 Feb 23:30 EST (1 March in UTC) and on 10 March 23:30 EDT (11 March UTC).
    "E": [
        ("intake", utc(2024, 3, 1, 4, 30)),
        ("intake", utc(2024, 3, 11, 3, 30)),
        ("session", utc(2024, 3, 11, 5), "E"),
    ],  # NY: +1.5 h; UTC: +10 days 30 min
    # F: entered before the period; G: no intake at all. Neither counts.
    "F": [("intake", utc(2024, 2, 20))],
    "G": [("purchase", utc(2024, 3, 3))],
    # I: entered only. J: intake and session at the same instant, then a purchase.
    "I": [("intake", utc(2024, 3, 9, 12)), ("upsell_shown", utc(2024, 3, 9, 13))],
    "J": [
        ("intake", utc(2024, 3, 8, 15)),
        ("session", utc(2024, 3, 8, 15), "J"),  # +0
        ("purchase", utc(2024, 3, 8, 16), "J"),
    ],
    # K: 10 March 22:00 EDT, inside the New York period, outside the UTC one.
    "K": [("intake", utc(2024, 3, 11, 2))],
    # M: 11 March 00:00 EDT, just after the New York period.
    "M": [("intake", utc(2024, 3, 11, 4))],
}
EVENTS = [(who, *event) for who, journey in JOURNEYS.items() for event in journey]  # one per interaction

PROFILES = {  # customer: (plan, channel); J has no profile
    "A": ("premium", "referral"),
    "B": ("standard", "paid_search"),
    "C": ("standard", "paid_search"),
    "D": ("premium", "organic_search"),
    "E": ("standard", "social"),
    "I": ("standard", "social"),
    "K": ("standard", None),
}
REQUESTS = [  # (customer, created, make): the latest at or before entry gives the make
    ("A", utc(2024, 3, 2, 12), "Toyota"),
    ("A", utc(2024, 3, 5), "Honda"),  # Honda comes after entry
    ("B", utc(2024, 3, 1), "Ford"),
    ("B", utc(2024, 3, 4, 9), " "),  # blank: unknown
    ("D", utc(2024, 1, 1), "BMW"),
    ("E", utc(2024, 3, 1, 4, 30), "Toyota"),
    ("E", utc(2024, 3, 11, 3, 30), "Tesla"),
    ("I", utc(2024, 3, 9, 12), "Toyota"),
    ("J", utc(2024, 3, 8, 15), "Toyota"),
]


def write(conn) -> None:
    """The mechanics, the journeys (customers, sessions, events), the profiles and requests."""
    conn.execute(s.users.insert(), [{"id": M[n], "email": f"mech-{n}@example.com"} for n in M])
    conn.execute(
        s.mechanics.insert(),
        [
            {"user_id": M["brakes"], "display_name": "Bo", "specialties": ["brakes", "engine"]},
            {"user_id": M["electrical"], "display_name": "El", "specialties": ["electrical"]},
            {"user_id": M["none"], "display_name": "No", "specialties": None},
        ],
    )
    journeys_for(conn, JOURNEYS, customers=C, sessions=S, mechanics={n: M[m] for n, m in SESSIONS.items() if m})
    conn.execute(
        s.profiles.insert(),
        [
            {"id": C[n], "full_name": f"Customer {n}", "plan": plan, "acquisition_channel": channel}
            for n, (plan, channel) in PROFILES.items()
        ],
    )
    conn.execute(
        s.requests.insert(), [{"customer_id": C[n], "created_at": at, "vehicle_make": make} for n, at, make in REQUESTS]
    )
