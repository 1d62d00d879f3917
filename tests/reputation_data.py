"""Small fixtures for the reputation tests: people, sessions and reviews written row by row."""

from __future__ import annotations

import datetime as dt
import uuid

from dashboard.core import schema as s

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def add_user(conn, name: str = "Customer") -> uuid.UUID:
    uid = uuid.uuid4()
    conn.execute(s.users.insert().values(id=uid, email=f"{uid.hex[:8]}@example.com"))
    conn.execute(s.profiles.insert().values(id=uid, full_name=name))
    return uid


def add_mechanic(conn, name: str = "Mechanic", **columns) -> uuid.UUID:
    uid = uuid.uuid4()
    conn.execute(s.users.insert().values(id=uid, email=f"{uid.hex[:8]}@example.com"))
    conn.execute(s.mechanics.insert().values(user_id=uid, display_name=name, **columns))
    return uid


def add_session(conn, customer_id, mechanic_id, status: str = "completed", **columns) -> uuid.UUID:
    sid = uuid.uuid4()
    conn.execute(s.sessions.insert().values(id=sid, customer_id=customer_id, mechanic_id=mechanic_id,
                                            status=status, **columns))
    return sid


def add_review(conn, mechanic_id, rating: int, status: str = "published", *, customer_id=None,
               created_at: dt.datetime = NOW, **columns) -> uuid.UUID:
    """A review row as it would be stored (no rules applied; aggregates untouched)."""
    customer_id = customer_id or add_user(conn)
    session_id = add_session(conn, customer_id, mechanic_id)
    rid = uuid.uuid4()
    if status == "hidden":
        columns.setdefault("hidden_reason", "off_topic")
    conn.execute(s.mechanic_reviews.insert().values(
        id=rid, session_id=session_id, mechanic_id=mechanic_id, customer_id=customer_id,
        rating=rating, status=status, created_at=created_at, **columns))
    return rid
