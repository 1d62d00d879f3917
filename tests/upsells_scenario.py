"""The hand-built customers of tests/test_upsells.py, tests/test_upsells_page.py and the
``upsell_db`` fixture: eight customers' sessions, earlier offers and the catalogue.

The engine runs at NOW with the default 7-day look-back: summaries after 25 May 12:00 count.
The comments of ``SESSIONS`` say which rule fires for whom.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from dashboard.core import schema as s
from dashboard.core.auth import Actor

NOW = dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC)
ADMIN = Actor("ada@pitwall.test", "admin")
SUPPORT = Actor("sam@pitwall.test", "support")
CATALOGUE = {  # type: (title, price)
    "follow_up": ("Follow-up call", 1900),
    "maintenance_plan": ("Maintenance plan", 9900),
    "premium_upgrade": ("Premium", 999),
}


def at(month, day, hour=12) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, tzinfo=dt.UTC)


P = {name: uuid.uuid4() for name in ("P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8")}
PLANS = {"P3": "premium"}  # everyone else is on the standard plan
SESSIONS = [  # (name, customer, ended, summary, parts, next steps, vehicle year, status)
    # P1: parts needed -> follow_up only (one session, a 2020 car)
    ("s1", "P1", at(5, 30, 10), at(5, 30, 11), "Brake pads", "", 2020, "completed"),
    # P2: three sessions in 6 months -> maintenance_plan; standard and repeat -> premium_upgrade;
    # parts "None" and blank next steps -> no follow_up
    ("s2a", "P2", at(1, 10), None, None, None, 2019, "completed"),
    ("s2b", "P2", at(3, 10), None, None, None, 2019, "completed"),
    ("s2c", "P2", at(5, 31), at(5, 31, 13), "None", "  ", 2019, "completed"),
    # P3: premium; a 2014 car is 10 years old in 2024 -> maintenance_plan; next steps -> follow_up
    ("s3", "P3", at(5, 29), at(5, 29, 13), None, "Monitor it", 2014, "completed"),
    # P4: a 2015 car is 9 years old; the other session is older than 6 months -> only premium_upgrade
    ("s4a", "P4", dt.datetime(2023, 1, 1, tzinfo=dt.UTC), None, None, None, 2015, "completed"),
    ("s4b", "P4", at(5, 31), at(5, 31, 13), "none needed", None, 2015, "completed"),
    # P5: would get follow_up and maintenance_plan, but has an open follow_up and bought a plan this year
    ("s5", "P5", at(5, 31), at(5, 31, 13), "Spark plugs", None, 2000, "completed"),
    # P6: summary before the look-back; P7: the session was cancelled
    ("s6", "P6", at(5, 1), at(5, 1, 13), "Tyres", None, 2020, "completed"),
    ("s7", "P7", at(5, 31), at(5, 31, 13), "Tyres", None, 2020, "cancelled"),
    # P8: two summaries in the look-back: one follow_up, from the latest; premium from the second
    ("s8a", "P8", at(5, 27), at(5, 27, 13), None, "Book a shop", 2020, "completed"),
    ("s8b", "P8", at(5, 30), at(5, 30, 13), None, "Send a photo", 2020, "completed"),
]
S = {row[0]: uuid.uuid4() for row in SESSIONS}


def write(conn) -> None:
    """The customers, their requests and sessions, P5's earlier offers and the catalogue."""
    conn.execute(s.users.insert(), [{"id": P[n], "email": f"{n.lower()}@example.com"} for n in P])
    conn.execute(s.profiles.insert(), [{"id": P[n], "plan": PLANS.get(n, "standard")} for n in P])
    for name, who, ended, summary, parts, steps, year, status in SESSIONS:
        request = uuid.uuid4()
        conn.execute(
            s.requests.insert().values(
                id=request, customer_id=P[who], vehicle_year=year, created_at=ended - dt.timedelta(days=1)
            )
        )
        conn.execute(
            s.sessions.insert().values(
                id=S[name],
                request_id=request,
                customer_id=P[who],
                status=status,
                ended_at=ended,
                summary_submitted_at=summary,
                parts_needed=parts,
                next_steps=steps,
            )
        )
    old = {"customer_id": P["P5"], "service_title": "Old offer", "price_cents": 100, "purchased_at": None}
    conn.execute(
        s.upsell_recommendations.insert(),
        [
            {**old, "recommendation_type": "follow_up", "shown_at": at(5, 20)},  # open
            {**old, "recommendation_type": "follow_up", "shown_at": at(4, 1)},  # lapsed
            {**old, "recommendation_type": "maintenance_plan", "shown_at": at(1, 1), "purchased_at": at(1, 2)},
        ],
    )
    conn.execute(sa.delete(s.upsell_services))
    conn.execute(
        s.upsell_services.insert(),
        [
            {"recommendation_type": kind, "title": title, "price_cents": cents, "is_active": True}
            for kind, (title, cents) in CATALOGUE.items()
        ]
        + [{"recommendation_type": "follow_up", "title": "Retired call", "price_cents": 500, "is_active": False}],
    )
