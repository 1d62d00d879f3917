import datetime as dt
import decimal
import uuid

import pytest
import sqlalchemy as sa

from dashboard.audit import record_audit
from dashboard.auth import Actor, PermissionDenied, require_role, role_for_email
from dashboard.schema import audit_log, staff_roles


def test_require_role_allows_listed_roles_only():
    admin = Actor("a@example.com", "admin")
    assert require_role(admin, "admin", "support") is admin
    with pytest.raises(PermissionDenied, match="Only support or admin staff"):
        require_role(Actor("m@example.com", "manager"), "support", "admin")
    with pytest.raises(PermissionDenied, match="Sign in"):
        require_role(None, "admin")


def test_actor_rejects_unknown_role():
    with pytest.raises(ValueError):
        Actor("x@example.com", "owner")


def test_role_lookup_is_case_insensitive(engine):
    with engine.begin() as conn:
        conn.execute(staff_roles.insert().values(email="sam@example.com", role="support"))
        assert role_for_email(conn, "  Sam@Example.COM ") == "support"
        assert role_for_email(conn, "nobody@example.com") is None


def test_audit_row_keeps_before_and_after(engine):
    entity = uuid.uuid4()
    with engine.begin() as conn:
        record_audit(conn, Actor("a@example.com", "admin"), "review.hide", "mechanic_review", entity,
                     before={"status": "published", "at": dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)},
                     after={"status": "hidden", "price": decimal.Decimal("1.50")}, reason="off_topic")
    with engine.connect() as conn:
        row = conn.execute(sa.select(audit_log)).mappings().one()
    assert row["entity_id"] == str(entity) and row["actor_role"] == "admin"
    before, after = row["before"], row["after"]
    if isinstance(before, str):  # DuckDB returns JSON as text
        import json
        before, after = json.loads(before), json.loads(after)
    assert before == {"status": "published", "at": "2026-01-02 00:00:00+00:00"}
    assert after == {"status": "hidden", "price": "1.50"}
