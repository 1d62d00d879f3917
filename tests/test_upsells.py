"""The upsell engine's rules (each with cases that fire and cases that do not), no duplicates
on a rerun, and catalogue edits (admins only, validated, audited), on both backends.
``upsell_db`` holds the customers of tests/upsells_scenario.py.

The engine runs at NOW with the default 7-day look-back: summaries after 25 May 12:00 count.
"""

import datetime as dt
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from dashboard.core import schema as s
from dashboard.core.auth import Actor, PermissionDenied
from dashboard.core.errors import ChangedMeanwhile, Conflict, Invalid, NotFound
from dashboard.domain.upsells import record_upsell_event, refresh_recommendations, save_service
from queries.upsells import customer_cards, recommended_next_service
from tests.factories import staff_fixture
from tests.upsells_scenario import ADMIN, NOW, SUPPORT, P, S, at

OTHER_ADMIN = Actor("al@pitwall.test", "admin")
staff = staff_fixture(ADMIN, OTHER_ADMIN, SUPPORT)


def created(engine) -> set[tuple[str, str]]:
    """(session name, type) of the recommendations the engine made."""
    names = {v: k for k, v in S.items()}
    rec = s.upsell_recommendations
    with engine.connect() as conn:
        rows = conn.execute(sa.select(rec.c.session_id, rec.c.recommendation_type).where(rec.c.session_id.isnot(None)))
        return {(names[row.session_id], row.recommendation_type) for row in rows}


def test_rules_fire_and_hold_back_by_hand(upsell_db):
    result = refresh_recommendations(upsell_db, now=NOW)
    assert created(upsell_db) == {
        ("s1", "follow_up"),
        ("s2c", "maintenance_plan"),
        ("s2c", "premium_upgrade"),
        ("s3", "follow_up"),
        ("s3", "maintenance_plan"),
        ("s4b", "premium_upgrade"),
        ("s8b", "follow_up"),
        ("s8b", "premium_upgrade"),
    }
    assert result.created == {"follow_up": 3, "maintenance_plan": 2, "premium_upgrade": 3}
    assert result.without_service == ()
    rec = s.upsell_recommendations
    with upsell_db.connect() as conn:
        row = conn.execute(sa.select(rec).where(rec.c.session_id == S["s1"])).mappings().one()
    assert (row["customer_id"], row["service_title"], row["price_cents"], row["shown_at"]) == (
        P["P1"],
        "Follow-up call",
        1900,
        NOW,
    )
    assert row["clicked_at"] is None and row["purchased_at"] is None


def test_a_rerun_adds_nothing_and_a_longer_look_back_only_the_missed(upsell_db):
    refresh_recommendations(upsell_db, now=NOW)
    first = created(upsell_db)
    assert refresh_recommendations(upsell_db, now=NOW).created == {}
    assert refresh_recommendations(upsell_db, now=NOW + dt.timedelta(hours=1), days=60).created == {"follow_up": 1}
    assert created(upsell_db) == first | {("s6", "follow_up")}


def test_lapsed_and_bought_recommendations(upsell_db):
    refresh_recommendations(upsell_db, now=NOW)
    rec = s.upsell_recommendations
    with upsell_db.begin() as conn:  # P1 buys the follow-up; P8's lapses unbought
        conn.execute(rec.update().where(rec.c.session_id == S["s1"]).values(purchased_at=NOW))
        conn.execute(sa.delete(rec).where(rec.c.session_id == S["s8b"], rec.c.recommendation_type == "premium_upgrade"))
        later = {
            "status": "completed",
            "ended_at": at(6, 20),
            "summary_submitted_at": at(6, 20, 13),
            "next_steps": "Check again",
        }
        conn.execute(
            s.sessions.insert(),
            [{**later, "customer_id": P["P1"]}, {**later, "customer_id": P["P8"]}, {**later, "customer_id": P["P2"]}],
        )
    made = refresh_recommendations(upsell_db, now=at(6, 21)).created
    # follow_up: P1 bought its last one, P2 never had one; P8's is still open (shown 1 June).
    # premium: P1 now has 2 sessions, P8's was removed, P2's is open.
    # maintenance: P8 now has 3 sessions in 6 months; P2's is open.
    assert made == {"follow_up": 2, "premium_upgrade": 2, "maintenance_plan": 1}


def test_a_type_without_an_active_service_is_not_offered(upsell_db):
    with upsell_db.begin() as conn:
        conn.execute(
            s.upsell_services.update()
            .where(s.upsell_services.c.recommendation_type == "premium_upgrade")
            .values(is_active=False)
        )
    result = refresh_recommendations(upsell_db, now=NOW)
    assert result.created == {"follow_up": 3, "maintenance_plan": 2}
    assert result.without_service == ("premium_upgrade",)
    assert "no active service for premium_upgrade" in result.summary()


def test_look_back_is_bounded(upsell_db):
    with pytest.raises(ValueError, match="from 1 to 366"):
        refresh_recommendations(upsell_db, days=0)


# --- the catalogue ------------------------------------------------------------------------------


def service(engine, title):
    svc = s.upsell_services
    with engine.connect() as conn:
        return conn.execute(sa.select(svc).where(svc.c.title == title)).mappings().one()


def audit_rows(engine):
    with engine.connect() as conn:
        query = sa.select(s.audit_log).order_by(s.audit_log.c.created_at, s.audit_log.c.action)
        return conn.execute(query).mappings().all()


FORM = {
    "recommendation_type": "follow_up",
    "title": "Repair check call",
    "description": "Show the repair.",
    "price": "29.00",
    "is_active": True,
}


def test_admin_adds_an_active_service_and_the_old_one_retires(upsell_db):
    new_id = save_service(upsell_db, ADMIN, None, **FORM)
    row = service(upsell_db, "Repair check call")
    assert (row["id"], row["price_cents"], row["is_active"], row["updated_by"]) == (new_id, 2900, True, ADMIN.email)
    assert service(upsell_db, "Follow-up call")["is_active"] is False
    actions = [(r["action"], r["entity_type"], r["reason"]) for r in audit_rows(upsell_db)]
    assert sorted(actions) == [
        ("upsell_service.create", "upsell_service", None),
        ("upsell_service.update", "upsell_service", "another follow_up service was activated"),
    ]
    assert refresh_recommendations(upsell_db, now=NOW).created["follow_up"] == 3
    rec = s.upsell_recommendations
    with upsell_db.connect() as conn:
        assert set(
            conn.execute(
                sa.select(rec.c.price_cents).where(
                    rec.c.recommendation_type == "follow_up", rec.c.session_id.isnot(None)
                )
            ).scalars()
        ) == {2900}


def test_admin_edits_a_price_and_only_changes_are_audited(upsell_db):
    current = service(upsell_db, "Premium")
    form = {"recommendation_type": "premium_upgrade", "title": "Premium", "description": None, "is_active": True}
    save_service(upsell_db, ADMIN, str(current["id"]), **form, price="12.50")
    save_service(upsell_db, ADMIN, current["id"], **form, price=12.5)  # the same values again
    assert service(upsell_db, "Premium")["price_cents"] == 1250
    [row] = audit_rows(upsell_db)
    assert (row["before"]["price_cents"], row["after"]["price_cents"]) == (999, 1250)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"title": "ab"}, "3 to 80 characters"),
        ({"title": "x" * 81}, "The title is 81 characters; the limit is 80"),
        ({"title": "Brake\x00check"}, "The title contains a NUL character"),
        ({"title": ["Brake", "check"]}, "The title must be text, not list"),
        ({"title": "  follow-UP   call "}, "already called"),
        ({"description": "x" * 301}, "The description is 301 characters; the limit is 300"),
        ({"description": "Show\x00"}, "The description contains a NUL character"),
        ({"price": "1e30"}, "at most \\$1,000.00"),
        ({"price": float("inf")}, "Price must be a finite number"),
        ({"price": "0"}, "above \\$0.00"),
        ({"price": "1000.01"}, "at most \\$1,000.00"),
        ({"price": "19.999"}, "two decimals"),
        ({"price": "free"}, "not a number"),
        ({"price": ""}, "required"),
        ({"recommendation_type": "gift_card"}, "Unknown recommendation type"),
        ({"is_active": "yes"}, "yes or no"),
    ],
)
def test_invalid_services_change_nothing(upsell_db, change, message):
    with pytest.raises(Conflict if message == "already called" else Invalid, match=message):
        save_service(upsell_db, ADMIN, None, **{**FORM, **change})
    assert not audit_rows(upsell_db)
    assert service(upsell_db, "Follow-up call")["is_active"] is True


def test_a_service_changed_meanwhile_is_not_overwritten(upsell_db):
    current = service(upsell_db, "Premium")
    form = {"recommendation_type": "premium_upgrade", "title": "Premium", "description": None, "is_active": True}
    save_service(upsell_db, OTHER_ADMIN, current["id"], **form, price="11.00", seen_updated_at=current["updated_at"])
    with pytest.raises(
        ChangedMeanwhile, match="The service 'Premium' was changed by al@pitwall.test at .* UTC: reload"
    ):
        save_service(upsell_db, ADMIN, current["id"], **form, price="12.50", seen_updated_at=current["updated_at"])
    assert service(upsell_db, "Premium")["price_cents"] == 1100
    assert len(audit_rows(upsell_db)) == 1


def test_only_admins_edit_the_catalogue(upsell_db):
    for actor in (SUPPORT, Actor("max@pitwall.test", "manager"), None):
        with pytest.raises(PermissionDenied):
            save_service(upsell_db, actor, None, **FORM)
    with pytest.raises(NotFound, match="no longer exists"):
        save_service(upsell_db, ADMIN, uuid.uuid4(), **FORM)
    with pytest.raises(Invalid, match="not a valid id"):
        save_service(upsell_db, ADMIN, "1; DROP TABLE upsell_services", **FORM)
    assert not audit_rows(upsell_db)


def test_postgres_allows_one_active_service_per_type(pg_engine):
    with pytest.raises(sa.exc.IntegrityError), pg_engine.begin() as conn:
        conn.execute(
            s.upsell_services.insert(),
            [{"recommendation_type": "follow_up", "title": f"Call {n}", "price_cents": 100} for n in (1, 2)],
        )


# --- the customer's cards and the platform's events ---------------------------------------------


@pytest.fixture
def pat(engine):
    """Pat's recommendations: a follow-up call shown 2 days ago, a plan shown 5 days ago and
    clicked, a bought upgrade, and a call shown 40 days ago (lapsed); Quinn has one of his own."""
    now = dt.datetime.now(dt.UTC)
    ids = {name: uuid.uuid4() for name in ("pat", "quinn", "session", "call", "plan", "bought", "lapsed", "theirs")}
    with engine.begin() as conn:
        conn.execute(s.users.insert(), [{"id": ids[n], "email": f"{n}@example.com"} for n in ("pat", "quinn")])
        conn.execute(s.sessions.insert().values(id=ids["session"], customer_id=ids["pat"], status="completed"))
        base = {
            "customer_id": ids["pat"],
            "session_id": ids["session"],
            "service_description": None,
            "clicked_at": None,
            "purchased_at": None,
        }
        conn.execute(
            s.upsell_recommendations.insert(),
            [
                {
                    **base,
                    "id": ids["call"],
                    "recommendation_type": "follow_up",
                    "service_title": "Follow-up call",
                    "service_description": "We check the <b>repair</b>.",
                    "price_cents": 1900,
                    "shown_at": now - dt.timedelta(days=2),
                },
                {
                    **base,
                    "id": ids["plan"],
                    "recommendation_type": "maintenance_plan",
                    "service_title": "Plan",
                    "price_cents": 9900,
                    "shown_at": now - dt.timedelta(days=5),
                    "clicked_at": now - dt.timedelta(days=4),
                },
                {
                    **base,
                    "id": ids["bought"],
                    "recommendation_type": "premium_upgrade",
                    "service_title": "Premium",
                    "price_cents": 999,
                    "shown_at": now - dt.timedelta(days=3),
                    "purchased_at": now - dt.timedelta(days=3),
                },
                {
                    **base,
                    "id": ids["lapsed"],
                    "recommendation_type": "follow_up",
                    "service_title": "Old call",
                    "price_cents": 1500,
                    "shown_at": now - dt.timedelta(days=40),
                },
                {
                    **base,
                    "id": ids["theirs"],
                    "customer_id": ids["quinn"],
                    "session_id": None,
                    "recommendation_type": "follow_up",
                    "service_title": "Quinn's call",
                    "price_cents": 1900,
                    "shown_at": now - dt.timedelta(days=1),
                },
            ],
        )
    return ids


def test_customer_cards_are_the_open_recommendations_clicked_first(engine, pat):
    with engine.connect() as conn:
        cards = customer_cards(conn, str(pat["pat"]))
        best = recommended_next_service(conn, pat["pat"])
        nothing = customer_cards(conn, uuid.uuid4()), recommended_next_service(conn, uuid.uuid4())
        with pytest.raises(Invalid, match="not a valid id"):
            customer_cards(conn, "pat")
    assert cards == [
        {
            "id": pat["plan"],
            "kind": "maintenance_plan",
            "title": "Plan",
            "description": None,
            "price_cents": 9900,
            "reason": "open recommendation, clicked but not bought",
        },
        {
            "id": pat["call"],
            "kind": "follow_up",
            "title": "Follow-up call",
            "description": "We check the <b>repair</b>.",
            "price_cents": 1900,
            "reason": "open recommendation, shown but not clicked",
        },
    ]
    assert best == {
        "kind": "maintenance_plan",
        "title": "Plan",
        "price_cents": 9900,
        "reason": "open recommendation, clicked but not bought",
    }
    assert nothing == ([], None)


def _recommendation(engine, rid) -> dict:
    with engine.connect() as conn:
        return dict(
            conn.execute(sa.select(s.upsell_recommendations).where(s.upsell_recommendations.c.id == rid))
            .mappings()
            .one()
        )


def _interactions(engine) -> list[tuple]:
    i = s.crm_interactions
    with engine.connect() as conn:
        rows = conn.execute(sa.select(i.c.interaction_type, i.c.created_at, i.c.metadata).order_by(i.c.created_at))
        return [(kind, when, _json(meta)) for kind, when, meta in rows]


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def test_each_upsell_event_is_recorded_once_with_its_interaction(engine, pat):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    shown, clicked, bought = now - dt.timedelta(hours=3), now - dt.timedelta(hours=2), now - dt.timedelta(hours=1)
    call, customer = pat["call"], pat["pat"]
    first = record_upsell_event(engine, call, customer, "shown", at=shown)
    assert (first["changed"], first["at"]) == (True, shown)
    again = record_upsell_event(engine, str(call), str(customer), "shown", at=now)
    assert again["changed"] is False and again["at"] == shown and "nothing changed" in again["message"]
    assert record_upsell_event(engine, call, customer, "clicked", at=clicked)["changed"] is True
    assert record_upsell_event(engine, call, customer, "clicked")["at"] == clicked
    assert record_upsell_event(engine, call, customer, "purchased", at=bought)["changed"] is True
    assert record_upsell_event(engine, pat["plan"], customer, "clicked")["changed"] is False  # clicked before
    row = _recommendation(engine, call)
    assert (row["shown_at"], row["clicked_at"], row["purchased_at"]) == (shown, clicked, bought)
    ref = {"recommendation_id": str(call), "recommendation_type": "follow_up"}
    assert _interactions(engine) == [
        ("upsell_shown", shown, ref),
        ("upsell_clicked", clicked, ref),
        ("purchase", bought, {**ref, "price_cents": 1900}),
    ]
    with engine.connect() as conn:
        trail = conn.execute(
            sa.select(s.audit_log.c.actor_email, s.audit_log.c.action).order_by(s.audit_log.c.created_at)
        ).all()
    assert [tuple(r) for r in trail] == [
        ("platform", "upsell.shown"),
        ("platform", "upsell.clicked"),
        ("platform", "upsell.purchased"),
    ]


def test_bad_upsell_events_are_refused_and_change_nothing(engine, pat):
    now = dt.datetime.now(dt.UTC)
    for rid, customer, event, when, message in [
        (pat["theirs"], pat["pat"], "clicked", None, f"No upsell recommendation with id {pat['theirs']}"),
        (uuid.uuid4(), pat["pat"], "clicked", None, "No upsell recommendation with id"),
        ("1; DROP TABLE x", pat["pat"], "clicked", None, "not a valid id"),
        (pat["call"], pat["pat"], "viewed", None, "Unknown upsell event"),
        (pat["call"], pat["pat"], "clicked", now.replace(tzinfo=None), "with a timezone"),
        (pat["call"], pat["pat"], "clicked", now + dt.timedelta(days=1), "in the future"),
        (pat["call"], pat["pat"], "clicked", now - dt.timedelta(days=3), "before it was shown"),
    ]:
        with pytest.raises(NotFound if message.startswith("No ") else Invalid, match=message):
            record_upsell_event(engine, rid, customer, event, at=when)
    assert _interactions(engine) == [] and _recommendation(engine, pat["call"])["clicked_at"] is None


def test_two_reports_of_one_click_at_once_record_it_once(engine, pat):
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: record_upsell_event(engine, pat["call"], pat["pat"], "clicked"), range(2)))
    assert sorted(r["changed"] for r in results) == [False, True]
    assert [kind for kind, _, _ in _interactions(engine)] == ["upsell_clicked"]
