"""Migrations, schema parity between the backends, and CHECK constraints."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from dashboard.core import schema as s
from dashboard.core.db import make_engine
from dashboard.core.migrate import alembic_config, current_revision, upgrade


def _columns(engine) -> dict[str, set[str]]:
    """{table: {columns}} as the database reports it, with ``auth`` folded in."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema IN ('public', 'main', 'auth') AND table_name <> 'alembic_version'"
            )
        ).all()
    out: dict[str, set[str]] = {}
    for table, column in rows:
        out.setdefault(table, set()).add(column)
    return out


def _expected() -> dict[str, set[str]]:
    return {t.name: set(t.columns.keys()) for t in s.metadata.tables.values()}


def test_upgrade_on_empty_database_twice(empty_url):
    engine = make_engine(empty_url)
    upgrade(engine)
    first = _columns(engine)
    upgrade(engine)
    assert _columns(engine) == first == _expected()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert current_revision(engine) == head
    assert head.startswith(f"00{s.STEPS[-1]}")  # the last revision applies the last step
    engine.dispose()


def test_backends_have_identical_tables_and_columns(engine):
    assert _columns(engine) == _expected()


def test_baseline_keeps_existing_platform_tables_and_rows(empty_url):
    """A platform database already has its tables: the baseline must not touch them."""
    engine = make_engine(empty_url)
    user_id = uuid.uuid4()
    is_pg = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        if is_pg:
            conn.execute(sa.text("CREATE SCHEMA auth"))
        users = "auth.users" if is_pg else "users"
        conn.execute(
            sa.text(
                f"CREATE TABLE {users} (id uuid PRIMARY KEY, email text NOT NULL, "
                "created_at timestamptz NOT NULL DEFAULT now())"
            )
        )
        conn.execute(sa.text(f"INSERT INTO {users} (id, email) VALUES (:i, 'kept@example.com')"), {"i": user_id})
        conn.execute(
            sa.text(
                "CREATE TABLE mechanics (user_id uuid PRIMARY KEY, display_name text NOT NULL, "
                "timezone text NOT NULL DEFAULT 'UTC', is_active boolean NOT NULL DEFAULT true, "
                "created_at timestamptz NOT NULL DEFAULT now())"
            )
        )
        conn.execute(
            sa.text("INSERT INTO mechanics (user_id, display_name) VALUES (:i, 'Kept Mechanic')"), {"i": user_id}
        )
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.select(s.users.c.email)).scalar_one() == "kept@example.com"
        row = conn.execute(sa.select(s.mechanics)).mappings().one()
    assert row["display_name"] == "Kept Mechanic"
    assert row["total_reviews"] == 0 and row["response_sla_minutes"] == 5  # 08 columns added with defaults
    assert _columns(engine) == _expected()
    engine.dispose()


def _seed_people(conn) -> uuid.UUID:
    uid = uuid.uuid4()
    conn.execute(s.users.insert().values(id=uid, email=f"{uid}@example.com"))
    conn.execute(s.mechanics.insert().values(user_id=uid, display_name="M"))
    return uid


BAD_ROWS = [
    ("profiles", {"plan": "gold"}),
    ("profiles", {"acquisition_channel": "billboard"}),
    ("mechanic_reviews", {"rating": 0}),
    ("mechanic_reviews", {"rating": 6}),
    ("mechanic_reviews", {"rating": 4, "status": "maybe"}),
    ("mechanic_reviews", {"rating": 4, "status": "hidden"}),  # hidden needs a reason
    ("mechanic_reviews", {"rating": 4, "status": "published", "hidden_reason": "off_topic"}),
    ("mechanic_availability_slots", {"day_of_week": 7}),
    ("mechanic_availability_slots", {"day_of_week": -1}),
    ("mechanic_availability_slots", {"price_multiplier": "0.49"}),
    ("mechanic_availability_slots", {"price_multiplier": "3.01"}),
    ("mechanic_availability_slots", {"start_time": dt.time(17), "end_time": dt.time(9)}),
    ("sessions", {"status": "paused"}),
    ("sessions", {"session_type": "phone"}),
    ("sessions", {"price_cents": -1}),
    ("requests", {"status": "lost"}),
    ("requests", {"is_follow_up": True, "follow_up_type": "quick_question"}),  # no parent session
    ("requests", {"follow_up_type": "chat_more"}),
    ("crm_interactions", {"interaction_type": "clicked_ad"}),
    ("upsell_recommendations", {"recommendation_type": "car_wash"}),
    ("email_outbox", {"status": "lost"}),
    ("email_outbox", {"milestone": "birthday"}),
    ("staff_roles", {"role": "owner"}),
    ("staff_roles", {"email": "Mixed@Example.com"}),
    ("mechanics", {"avg_rating": "5.10"}),
]


def _valid_row(conn, table: str, uid: uuid.UUID) -> dict:
    session_id, other_user = uuid.uuid4(), uuid.uuid4()
    conn.execute(s.users.insert().values(id=other_user, email=f"{other_user}@example.com"))
    if table in {"mechanic_reviews", "email_outbox", "crm_interactions", "upsell_recommendations"}:
        conn.execute(s.sessions.insert().values(id=session_id, customer_id=uid, mechanic_id=uid))
    return {
        "profiles": {"id": uid, "plan": "standard"},
        "mechanic_reviews": {"session_id": session_id, "mechanic_id": uid, "customer_id": uid, "rating": 5},
        "mechanic_availability_slots": {
            "mechanic_id": uid,
            "day_of_week": 1,
            "start_time": dt.time(9),
            "end_time": dt.time(17),
            "price_multiplier": "1.00",
        },
        "sessions": {"customer_id": uid},
        "requests": {"customer_id": uid},
        "crm_interactions": {"customer_id": uid, "interaction_type": "intake", "session_id": session_id},
        "upsell_recommendations": {
            "customer_id": uid,
            "recommendation_type": "follow_up",
            "service_title": "Follow-up",
        },
        "email_outbox": {"session_id": session_id, "milestone": "session_ended", "recipient": "a@example.com"},
        "staff_roles": {"email": "ops@example.com", "role": "admin"},
        "mechanics": {"user_id": other_user, "display_name": "N"},
    }[table]


@pytest.mark.parametrize("table,bad", BAD_ROWS, ids=[f"{t}-{'-'.join(map(str, b.values()))}" for t, b in BAD_ROWS])
def test_check_constraints_reject_bad_rows(engine, table, bad):
    target = s.metadata.tables[table]
    with engine.begin() as conn:
        uid = _seed_people(conn)
        row = _valid_row(conn, table, uid)
    with engine.begin() as conn:  # the valid row is accepted: the check is what rejects the bad one
        conn.execute(target.insert().values(**row))
        conn.rollback()
    with pytest.raises(sa.exc.DBAPIError):
        with engine.begin() as conn:
            conn.execute(target.insert().values(**{**row, **bad}))


def test_email_outbox_is_unique_per_session_milestone_recipient(engine):
    with engine.begin() as conn:
        uid = _seed_people(conn)
        session_id = uuid.uuid4()
        conn.execute(s.sessions.insert().values(id=session_id, customer_id=uid))
        row = {"session_id": session_id, "milestone": "booking_confirmed", "recipient": "c@example.com"}
        conn.execute(s.email_outbox.insert().values(**row))
    with pytest.raises(sa.exc.DBAPIError):
        with engine.begin() as conn:
            conn.execute(s.email_outbox.insert().values(**row))


def test_one_review_per_session(engine):
    with engine.begin() as conn:
        uid = _seed_people(conn)
        session_id = uuid.uuid4()
        conn.execute(s.sessions.insert().values(id=session_id, customer_id=uid))
        review = {"session_id": session_id, "mechanic_id": uid, "customer_id": uid, "rating": 5}
        conn.execute(s.mechanic_reviews.insert().values(**review))
    with pytest.raises(sa.exc.DBAPIError):
        with engine.begin() as conn:
            conn.execute(s.mechanic_reviews.insert().values(**review))


def test_postgres_declares_on_delete_actions(pg_engine):
    """DuckDB has no ON DELETE actions; PostgreSQL must have the seed's."""
    with pg_engine.connect() as conn:
        actions = dict(
            conn.execute(sa.text("SELECT conname, confdeltype FROM pg_constraint WHERE contype = 'f'")).all()
        )
    assert actions["fk_mechanic_reviews_session_id_sessions"] == "c"  # cascade
    assert actions["fk_crm_interactions_session_id_sessions"] == "n"  # set null
