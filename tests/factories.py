"""Test data, one ``add_*`` per kind of row: each writes its row (and only the rows it needs
to exist) through SQLAlchemy Core on the connection it is given and returns the new id.

Defaults are the plainest valid row; a test names every column its expected figures depend
on. The rows are written as stored: no rule of the product runs (a review does not move its
mechanic's rating, nothing is audited).

Also: ``add_staff`` and ``staff_fixture`` (the staff list a test's writes check roles on),
``weekly_slot`` (a calendar row as the editor submits it), ``HOSTILE`` (user text that must
stay text) and ``journeys_for`` (customers and their funnel events from one readable table); ``add_user_id``
and ``read`` for query tests that work on an engine; ``tables_read`` (which tables the queries read).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from dashboard.core import schema as s
from dashboard.core.auth import Actor

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DATABASE_FIXTURES = ("engine", "pg_engine", "duckdb_engine")
HOSTILE = [  # customer text that must stay text wherever it is shown
    '<a href="https://evil.example/a">Ford</a>',
    "call www.evil.example/b now",
    "see https://evil.example/c",
    "write to boss@evil.example",
    "**bold** [link](https://evil.example/d) <b>x</b> & :red[red]",
]
FOLLOW_UP_STATUS = {
    "open": "open",
    "assigned": "matched",
    "answered": "completed",
    "closed": "completed",
    "cancelled": "cancelled",
}  # the platform's request status of each follow-up state


def _email(uid: uuid.UUID) -> str:
    return f"{uid.hex[:8]}@example.com"


def add_user(conn, name: str | None = "Customer", *, email: str | None = None, **profile) -> uuid.UUID:
    """A customer: the user and their profile (``full_name`` ``name``, other profile columns)."""
    uid = uuid.uuid4()
    conn.execute(s.users.insert().values(id=uid, email=_email(uid) if email is None else email))
    conn.execute(s.profiles.insert().values(id=uid, full_name=name, **profile))
    return uid


def add_mechanic(conn, name: str = "Mechanic", *, email: str | None = None, **columns) -> uuid.UUID:
    """A mechanic: the user and the ``mechanics`` row (``display_name`` ``name``)."""
    uid = uuid.uuid4()
    conn.execute(s.users.insert().values(id=uid, email=_email(uid) if email is None else email))
    conn.execute(s.mechanics.insert().values(user_id=uid, display_name=name, **columns))
    return uid


def add_request(conn, customer_id, **columns) -> uuid.UUID:
    """An intake request of ``customer_id``."""
    rid = uuid.uuid4()
    conn.execute(s.requests.insert().values(id=rid, customer_id=customer_id, **columns))
    return rid


def add_session(
    conn, customer_id, mechanic_id=None, status: str = "completed", *, request: dict | None = None, **columns
) -> uuid.UUID:
    """A session; with ``request`` (its columns), first the intake request it came from."""
    if request is not None:
        columns["request_id"] = add_request(conn, customer_id, **request)
    sid = uuid.uuid4()
    conn.execute(
        s.sessions.insert().values(id=sid, customer_id=customer_id, mechanic_id=mechanic_id, status=status, **columns)
    )
    return sid


def add_follow_up(
    conn, customer, session, follow_up_type="quick_question", *, created_at, state="open", status=None, **columns
) -> uuid.UUID:
    """A follow-up request on ``session`` (``state`` None: one the platform created, with ``status``)."""
    return add_request(
        conn,
        customer,
        is_follow_up=True,
        parent_session_id=session,
        follow_up_type=follow_up_type,
        created_at=created_at,
        follow_up_state=state,
        status=status or FOLLOW_UP_STATUS[state],
        **columns,
    )


def add_review(
    conn,
    mechanic_id,
    rating: int,
    status: str = "published",
    *,
    customer_id=None,
    created_at: dt.datetime = NOW,
    **columns,
) -> uuid.UUID:
    """A review of a completed session of its own (and of a new customer unless ``customer_id``)."""
    customer_id = customer_id or add_user(conn)
    session_id = add_session(conn, customer_id, mechanic_id)
    rid = uuid.uuid4()
    if status == "hidden":
        columns.setdefault("hidden_reason", "off_topic")
    conn.execute(
        s.mechanic_reviews.insert().values(
            id=rid,
            session_id=session_id,
            mechanic_id=mechanic_id,
            customer_id=customer_id,
            rating=rating,
            status=status,
            created_at=created_at,
            **columns,
        )
    )
    return rid


def add_staff(engine, *actors: Actor) -> None:
    """``actors`` on the staff list: every write re-reads the actor's role from ``staff_roles``."""
    with engine.begin() as conn:
        conn.execute(
            s.staff_roles.insert(), [{"email": a.email, "role": a.role, "display_name": a.name} for a in actors]
        )


def staff_fixture(*actors: Actor):
    """An autouse fixture for a test module: ``actors`` are staff on the database the test uses."""

    @pytest.fixture(autouse=True)
    def staff(request):
        for name in DATABASE_FIXTURES:
            if name in request.fixturenames:
                add_staff(request.getfixturevalue(name), *actors)
                return

    return staff


def weekly_slot(day, start, end, multiplier="1.00", available=True, slot_id=None) -> dict:
    """One row of a mechanic's weekly calendar as the calendar editor submits it."""
    return {
        "id": slot_id,
        "day_of_week": day,
        "start_time": start,
        "end_time": end,
        "price_multiplier": multiplier,
        "is_available": available,
    }


def journeys_for(
    conn,
    journeys: dict[str, list[tuple]],
    *,
    customers: dict | None = None,
    sessions: dict | None = None,
    mechanics: dict | None = None,
    historic: bool = True,
) -> tuple[dict, dict]:
    """Customers and their funnel events from one table, like PostHog's ``journeys_for``::

        journeys_for(conn, {"ann": [("intake", "2024-03-01 10:00"), ("session", "2024-03-01 11:00", "ann-1")],
                            "bob": [("intake", "2024-03-02 09:00")]})

    An event is (interaction type, when[, session name]); a time without a zone is UTC.
    ``customers`` and ``sessions`` give names their ids (a name not in them gets a new one).
    A customer not in the database yet is written as the user ``<name>@example.com`` (no
    profile); a session as a completed session of the customer whose event names it first,
    with the mechanic ``mechanics`` gives its name (none otherwise). ``historic`` events were
    recorded when they happened, the others get the database's ``recorded_at`` (now).
    Returns the ids by name: (customers, sessions).
    """
    customers, sessions, mechanics = dict(customers or {}), dict(sessions or {}), mechanics or {}
    events = [
        (who, kind, _utc(at), session[0] if session else None)
        for who, journey in journeys.items()
        for kind, at, *session in journey
    ]
    owners = {}
    for who, _, _, session in events:
        customers.setdefault(who, uuid.uuid4())
        if session is not None:
            sessions.setdefault(session, uuid.uuid4())
            owners.setdefault(session, who)
    new_customers = _not_written(conn, s.users.c.id, [customers[who] for who in journeys])
    if new_customers:
        conn.execute(
            s.users.insert(),
            [
                {"id": customers[who], "email": f"{who.lower()}@example.com"}
                for who in journeys
                if customers[who] in new_customers
            ],
        )
    new_sessions = _not_written(conn, s.sessions.c.id, [sessions[name] for name in owners])
    if new_sessions:
        conn.execute(
            s.sessions.insert(),
            [
                {
                    "id": sessions[name],
                    "customer_id": customers[who],
                    "mechanic_id": mechanics.get(name),
                    "status": "completed",
                }
                for name, who in owners.items()
                if sessions[name] in new_sessions
            ],
        )
    conn.execute(
        s.crm_interactions.insert(),
        [
            {
                "customer_id": customers[who],
                "interaction_type": kind,
                "created_at": at,
                "session_id": sessions[session] if session else None,
                **({"recorded_at": at} if historic else {}),
            }
            for who, kind, at, session in events
        ],
    )
    return customers, sessions


def _utc(at: dt.datetime | str) -> dt.datetime:
    at = dt.datetime.fromisoformat(at) if isinstance(at, str) else at
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def _not_written(conn, column, ids: list) -> set:
    """Those of ``ids`` not yet in ``column``."""
    return set(ids) - set(conn.execute(sa.select(column).where(column.in_(ids))).scalars()) if ids else set()


def add_user_id(engine) -> uuid.UUID:
    """A user of no test's scenario, committed: an id that is nobody's mechanic or review."""
    with engine.begin() as conn:
        return add_user(conn)


def read(engine, query, **filters):
    """A query of ``queries/`` on its own connection."""
    with engine.connect() as conn:
        return query(conn, **filters)


@contextmanager
def tables_read(engine, *tables: sa.Table) -> Iterator[set[str]]:
    """The names of ``tables`` that the statements run on ``engine`` read meanwhile (e.g. a roll-up)."""
    found: set[str] = set()

    def note(conn, cursor, statement, parameters, context, executemany):
        found.update(table.name for table in tables if f"FROM {table.name}" in statement)

    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        yield found
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)
