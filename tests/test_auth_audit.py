import datetime as dt
import decimal
import json
import uuid

import pytest
import sqlalchemy as sa

from dashboard.core.audit import record_audit
from dashboard.core.auth import Actor, PermissionDenied, require_current_role, require_role, role_for_email, vouch_for
from dashboard.core.schema import audit_log, staff_roles
from dashboard.domain import (
    followups,
    reviews,
    upsells,
)
from dashboard.domain.calendars import edits
from dashboard.domain.emails import (
    outbox,
    worker,
)
from dashboard.domain.emails.settings import load_email_settings
from dashboard.domain.funnel import rollups
from dashboard.ui import access
from tests.factories import add_staff


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
        record_audit(
            conn,
            Actor("a@example.com", "admin"),
            "review.hide",
            "mechanic_review",
            entity,
            before={"status": "published", "at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC)},
            after={"status": "hidden", "price": decimal.Decimal("1.50")},
            reason="off_topic",
        )
    with engine.connect() as conn:
        row = conn.execute(sa.select(audit_log)).mappings().one()
    assert row["entity_id"] == str(entity) and row["actor_role"] == "admin"
    before, after = row["before"], row["after"]
    if isinstance(before, str):  # DuckDB returns JSON as text
        before, after = json.loads(before), json.loads(after)
    assert before == {"status": "published", "at": "2026-01-02 00:00:00+00:00"}
    assert after == {"status": "hidden", "price": "1.50"}


# --- the role re-read by every write ---------------------------------------------------


ADMIN = Actor("ada@example.com", "admin", "Ada")
SOME_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
SERVICE = dict(recommendation_type="follow_up", title="Brake check", description=None, price="19.00", is_active=True)

# Every staff write, with a role that may not do it, called as ``ADMIN`` with well-formed input; the
# ids need not exist, since the role is read first in the write's transaction.
WRITES = {
    "review moderation setting": ("support", lambda e, a: reviews.set_moderation_required(e, a, True)),
    "review moderation": ("manager", lambda e, a: reviews.moderate(e, a, [SOME_ID], "publish")),
    "follow-up prices": ("support", lambda e, a: followups.set_prices(e, a, {("standard", "quick_question"): 500})),
    "follow-up create": (
        "manager",
        lambda e, a: followups.create_follow_up(
            e, a, parent_session_id=SOME_ID, customer_id=SOME_ID, follow_up_type="quick_question", text="Still noisy?"
        ),
    ),
    "follow-up assign": ("manager", lambda e, a: followups.assign(e, a, SOME_ID)),
    "follow-up answered": ("manager", lambda e, a: followups.mark_answered(e, a, SOME_ID, answer="Yes, drive on.")),
    "follow-up close": ("manager", lambda e, a: followups.close(e, a, SOME_ID)),
    "follow-up cancel": ("manager", lambda e, a: followups.cancel(e, a, SOME_ID, "asked twice")),
    "weekly slots": ("support", lambda e, a: edits.save_weekly_slots(e, a, SOME_ID, [])),
    "peak multiplier": (
        "support",
        lambda e, a: edits.set_peak_multiplier(e, a, [SOME_ID], [1], "17:00", "19:00", "1.2"),
    ),
    "override": (
        "support",
        lambda e, a: edits.set_override(e, a, SOME_ID, "2099-01-01", is_available=False, reason="holiday"),
    ),
    "override delete": ("support", lambda e, a: edits.delete_override(e, a, SOME_ID, "2099-01-01")),
    "mechanic timezone": ("support", lambda e, a: edits.set_mechanic_timezone(e, a, SOME_ID, "Europe/Berlin")),
    "base price": ("support", lambda e, a: edits.set_base_price(e, a, "video", "49.00")),
    "upsell catalogue": ("manager", lambda e, a: upsells.save_service(e, a, None, **SERVICE)),
    "funnel roll-up refresh": ("manager", lambda e, a: rollups.refresh(e, actor=a)),
    "email decision": ("support", lambda e, a: outbox.decide(e, a, SOME_ID, "retry", dt.datetime.now(dt.UTC))),
    "email bulk retry": (
        "support",
        lambda e, a: outbox.retry_cause(e, a, "outage", seen=(1, None), now=dt.datetime.now(dt.UTC)),
    ),
    "email run now": ("manager", lambda e, a: worker.run_now(e, a, load_email_settings({}))),
}


def audit_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(audit_log)).scalar_one()


@pytest.mark.parametrize("denied, write", WRITES.values(), ids=WRITES.keys())
def test_every_write_refuses_a_revoked_or_changed_role(engine, denied, write):
    with pytest.raises(PermissionDenied, match="no longer on the staff list"):
        write(engine, ADMIN)  # signed in as admin, but not (or no longer) in staff_roles
    add_staff(engine, Actor(ADMIN.email, denied))  # signed in as admin, demoted meanwhile
    with pytest.raises(PermissionDenied, match=f"Your role was changed to {denied}"):
        write(engine, ADMIN)
    assert audit_count(engine) == 0


def test_a_role_changed_to_another_allowed_role_writes_with_the_new_role(engine):
    add_staff(engine, Actor("max@example.com", "admin"))
    manager = Actor("max@example.com", "manager")  # signed in as manager, promoted meanwhile
    assert edits.set_base_price(engine, manager, "video", "49.00") == 4900
    with engine.connect() as conn:
        assert conn.execute(sa.select(audit_log.c.actor_role)).scalar_one() == "admin"


def test_revocation_applies_to_the_very_next_write(engine):
    add_staff(engine, Actor("max@example.com", "manager"))
    manager = Actor("max@example.com", "manager")
    edits.set_base_price(engine, manager, "video", "49.00")
    with engine.begin() as conn:
        conn.execute(staff_roles.delete())
    with pytest.raises(PermissionDenied):
        edits.set_base_price(engine, manager, "video", "59.00")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.text("price_cents FROM session_base_prices"))).scalar_one() == 4900


def test_a_revocation_waits_for_the_write_that_read_the_role(pg_engine):
    add_staff(pg_engine, ADMIN)
    with pg_engine.connect() as writer, pg_engine.connect() as revoker:
        with writer.begin():
            require_current_role(writer, ADMIN, "admin")
            revoker.execute(sa.text("SET lock_timeout = '200ms'"))
            with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                revoker.execute(staff_roles.delete())
            revoker.rollback()


def test_configured_actors_keep_their_role_only_where_the_app_vouches_for_them(engine):
    demo = access.demo_actor("manager")
    with pytest.raises(PermissionDenied, match="no longer on the staff list"):
        edits.set_base_price(engine, demo, "video", "49.00")
    assert edits.set_base_price(vouch_for(engine, demo), demo, "video", "49.00") == 4900
    with pytest.raises(PermissionDenied):  # vouching for one actor does not cover another
        edits.set_base_price(vouch_for(engine, demo), access.demo_actor("admin"), "video", "59.00")


@pytest.mark.parametrize(
    "user, email",
    [
        ({"email": "Sam@Example.com", "email_verified": True}, "sam@example.com"),
        ({"email": "sam@example.com", "email_verified": "true"}, "sam@example.com"),
        ({"email": "sam@example.com", "email_verified": False}, None),
        ({"email": "sam@example.com", "email_verified": "false"}, None),
        ({"email": "sam@example.com"}, None),
        ({"email_verified": True}, None),
    ],
)
def test_only_a_verified_email_can_be_staff(user, email):
    assert access.verified_email(user) == email


def test_audit_rows_are_ordered_by_when_the_change_happened(engine):
    admin = Actor("a@example.com", "admin")
    with engine.connect() as slow, engine.connect() as quick:
        with slow.begin():
            slow.execute(sa.select(sa.func.count()).select_from(audit_log))  # the slow transaction has begun
            with quick.begin():
                record_audit(quick, admin, "first", "thing", 1)
            record_audit(slow, admin, "second", "thing", 2)
            record_audit(slow, admin, "third", "thing", 3)
    with engine.connect() as conn:
        actions = conn.execute(sa.select(audit_log.c.action).order_by(audit_log.c.created_at)).scalars().all()
    assert actions == ["first", "second", "third"]
