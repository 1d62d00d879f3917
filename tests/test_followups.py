"""Follow-up rules: creation, prices, the lifecycle with audit, and concurrent assignment
(both backends; the race on PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid

import pytest
import sqlalchemy as sa

from dashboard.core import schema as s
from dashboard.core.auth import Actor, PermissionDenied
from dashboard.core.errors import ChangedMeanwhile, ConfigError, NotFound
from dashboard.core.settings import load_settings
from dashboard.domain.followups import (
    ANSWER_MAX,
    STATE,
    TEXT_MAX,
    FollowUpError,
    FollowUpRules,
    assign,
    cancel,
    close,
    create_follow_up,
    mark_answered,
    prices,
    quote,
    set_prices,
)
from queries.followups import summary
from tests.factories import add_mechanic, add_session, add_user, staff_fixture

SUPPORT = Actor("sam@example.com", "support")
OTHER_SUPPORT = Actor("sue@example.com", "support")
ADMIN = Actor("ada@example.com", "admin")
OTHER_ADMIN = Actor("al@example.com", "admin")
MANAGER = Actor("max@example.com", "manager")
staff = staff_fixture(SUPPORT, OTHER_SUPPORT, ADMIN, OTHER_ADMIN, MANAGER)
NOW = dt.datetime(2024, 3, 10, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
QUESTION = "Is it safe to keep driving until the weekend?"
ANSWER = "Yes, but replace the pads within 300 km."


@pytest.fixture
def world(engine):
    """Cal (standard) and Pia (premium); Rita and Bo active, Otto not; Cal's session with Rita
    ended two days ago (from a brakes request on his 2015 Civic), his session with Otto three
    days ago, a scheduled one; Pia's with Rita yesterday. Chat sessions cost $29.00."""
    with engine.begin() as conn:
        cal, pia = add_user(conn, "Cal"), add_user(conn, "Pia")
        conn.execute(s.profiles.update().where(s.profiles.c.id == pia).values(plan="premium"))
        rita, bo = add_mechanic(conn, "Rita"), add_mechanic(conn, "Bo")
        otto = add_mechanic(conn, "Otto", is_active=False)
        request = uuid.uuid4()
        conn.execute(
            s.requests.insert().values(
                id=request,
                customer_id=cal,
                vehicle_make="Honda",
                vehicle_model="Civic",
                vehicle_year=2015,
                category="brakes",
                status="completed",
            )
        )
        w = {
            "cal": cal,
            "pia": pia,
            "rita": rita,
            "bo": bo,
            "otto": otto,
            "cal_rita": add_session(conn, cal, rita, ended_at=NOW - 2 * 24 * HOUR, request_id=request),
            "cal_otto": add_session(conn, cal, otto, ended_at=NOW - 3 * 24 * HOUR),
            "cal_scheduled": add_session(conn, cal, rita, "scheduled"),
            "pia_rita": add_session(conn, pia, rita, ended_at=NOW - 24 * HOUR),
        }
        conn.execute(s.session_base_prices.insert().values(session_type="chat", price_cents=2900))
    return w


def ask(engine, session, customer, follow_up_type="quick_question", text=QUESTION, **kw):
    return create_follow_up(
        engine,
        kw.pop("actor", SUPPORT),
        parent_session_id=session,
        customer_id=customer,
        follow_up_type=follow_up_type,
        text=text,
        now=kw.pop("now", NOW),
        **kw,
    )


def follow_up(engine, follow_up_id) -> dict:
    with engine.connect() as conn:
        return dict(
            conn.execute(sa.select(s.requests, STATE.label("state")).where(s.requests.c.id == follow_up_id))
            .mappings()
            .one()
        )


def follow_up_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(s.requests).where(s.requests.c.is_follow_up)
        ).scalar_one()


def audit(engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(s.audit_log).order_by(s.audit_log.c.created_at)).mappings().all()
    return [{**row, "before": _json(row["before"]), "after": _json(row["after"])} for row in rows]


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def purchases(engine) -> list[dict]:
    with engine.connect() as conn:
        rows = (
            conn.execute(sa.select(s.crm_interactions).where(s.crm_interactions.c.interaction_type == "purchase"))
            .mappings()
            .all()
        )
    return [{**row, "metadata": _json(row["metadata"])} for row in rows]


# --- settings (pure) ----------------------------------------------------------------


def test_rules_from_settings():
    assert FollowUpRules.from_settings(load_settings({}, secrets={})) == FollowUpRules()
    settings = load_settings({}, secrets={"followups": {"window_days": 7, "sla_minutes": {"new_issue": 120}}})
    rules = FollowUpRules.from_settings(settings)
    assert (rules.window_days, rules.max_open_per_session) == (7, 2)
    assert [rules.sla(t) for t in s.FOLLOW_UP_TYPES] == [240, 480, 120]
    for bad, message in [
        ({"window": 7}, r"\[followups\] window is not a setting; the settings there are window_days, "),
        ({"window_days": 0}, "window_days must be a whole number from 1 to 365"),
        ({"max_open_per_session": True}, "max_open_per_session must be"),
        ({"sla_minutes": {"quick_question": "4h"}}, "sla_minutes.quick_question must be"),
        ({"sla_minutes": {"chat": 10}}, r"\[followups\] sla_minutes.chat is not a setting; .* sla_minutes.new_issue"),
        ({"sla_minutes": 240}, r"\[followups\] sla_minutes is not a setting"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_settings({}, secrets={"followups": bad})


# --- prices ---------------------------------------------------------------------------


def test_default_prices(engine, world):
    with engine.connect() as conn:
        current = {key: (price.cents, price.source) for key, price in prices(conn).items()}
    assert current == {
        ("standard", "quick_question"): (500, "default"),
        ("standard", "mini_extension"): (1500, "default"),
        ("standard", "new_issue"): (2900, "new session"),
        ("premium", "quick_question"): (0, "default"),
        ("premium", "mini_extension"): (0, "default"),
        ("premium", "new_issue"): (2900, "new session"),
    }


def test_price_is_fixed_on_the_follow_up(engine, world):
    first = ask(engine, world["cal_rita"], world["cal"])
    assert (first.plan, first.price_cents) == ("standard", 500)
    assert set_prices(engine, ADMIN, {("standard", "quick_question"): 700, ("premium", "new_issue"): 0}) == 2
    assert set_prices(engine, ADMIN, {("standard", "quick_question"): 700}) == 0  # unchanged: no audit row
    second = ask(engine, world["cal_rita"], world["cal"], text="And the rear pads?")
    assert second.price_cents == 700
    assert follow_up(engine, first.id)["follow_up_price_cents"] == 500  # history kept
    free = ask(engine, world["pia_rita"], world["pia"], "new_issue", text="Now the AC blows warm.")
    assert (free.plan, free.price_cents) == ("premium", 0)

    price_changes = [
        (a["entity_id"], a["before"], a["after"], a["actor_email"])
        for a in audit(engine)
        if a["action"] == "follow_up_price.set"
    ]
    assert sorted(price_changes) == [
        (
            "premium/new_issue",
            {"price_cents": 2900, "source": "new session"},
            {"price_cents": 0, "source": "rule"},
            ADMIN.email,
        ),
        (
            "standard/quick_question",
            {"price_cents": 500, "source": "default"},
            {"price_cents": 700, "source": "rule"},
            ADMIN.email,
        ),
    ]
    with engine.connect() as conn:
        rule = prices(conn)["standard", "quick_question"]
    assert (rule.cents, rule.source, rule.updated_by) == (700, "rule", ADMIN.email)


def test_only_admins_set_valid_prices(engine, world):
    for actor, changes, error, message in [
        (SUPPORT, {("standard", "quick_question"): 100}, PermissionDenied, "Only admin staff"),
        (MANAGER, {("standard", "quick_question"): 100}, PermissionDenied, "Only admin staff"),
        (ADMIN, {("gold", "quick_question"): 100}, FollowUpError, "Unknown plan 'gold'"),
        (ADMIN, {("standard", "chat"): 100}, FollowUpError, "Unknown follow-up type 'chat'"),
        (ADMIN, {("standard", "quick_question"): -1}, FollowUpError, "whole cents from 0 to 100,000"),
        (ADMIN, {("standard", "quick_question"): 100_001}, FollowUpError, "whole cents"),
        (ADMIN, {("standard", "quick_question"): 4.5}, FollowUpError, "whole cents"),
        (ADMIN, {("standard", "quick_question"): float("inf")}, FollowUpError, "whole cents"),
        (ADMIN, {("standard", "quick_question"): 10**30}, FollowUpError, "whole cents"),
        (ADMIN, {"standard": 100}, FollowUpError, "per \\(plan, follow-up type\\) pair"),
        (ADMIN, [("standard", "quick_question", 100)], FollowUpError, "per \\(plan, follow-up type\\) pair"),
        (
            ADMIN,
            {("standard", "mini_extension"): 100, ("standard", "quick_question"): None},
            FollowUpError,
            "quick questions must be whole cents",
        ),  # all or none
    ]:
        with pytest.raises(error, match=message):
            set_prices(engine, actor, changes)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.follow_up_pricing)).scalar_one() == 0
    assert audit(engine) == []


def test_a_price_changed_since_the_editor_looked_is_not_overwritten(engine, world):
    set_prices(engine, OTHER_ADMIN, {("standard", "quick_question"): 700})
    with pytest.raises(
        ChangedMeanwhile,
        match=r"The standard quick question price was changed by "
        r"al@example.com at \d\d \w{3} \d{4} \d\d:\d\d UTC: reload",
    ):
        set_prices(engine, ADMIN, {("standard", "quick_question"): 900}, seen={("standard", "quick_question"): 500})
    with engine.connect() as conn:
        assert prices(conn)["standard", "quick_question"].cents == 700
    assert len(audit(engine)) == 1
    # from an up-to-date view the edit goes through
    assert (
        set_prices(engine, ADMIN, {("standard", "quick_question"): 900}, seen={("standard", "quick_question"): 700})
        == 1
    )


def test_two_admins_setting_the_same_new_price_at_once_get_a_clean_outcome(pg_engine):
    change = {("standard", "quick_question"): 650}
    results = []
    with pg_engine.connect() as blocker:  # holds both saves at their first statement, then lets them race
        blocker.execute(sa.text("LOCK TABLE follow_up_pricing IN ACCESS EXCLUSIVE MODE"))

        def save(actor):
            try:
                results.append(set_prices(pg_engine, actor, change))
            except Exception as exc:  # the outcome under test: no IntegrityError reaches the admin
                results.append(exc)

        threads = [threading.Thread(target=save, args=(actor,)) for actor in (ADMIN, OTHER_ADMIN)]
        for thread in threads:
            thread.start()
        for _ in range(100):
            waiting = blocker.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            ).scalar_one()
            if waiting == 2:
                break
            threading.Event().wait(0.05)
        blocker.commit()
        for thread in threads:
            thread.join()
    assert sorted(results) == [0, 1]  # the second admin finds the price already set: nothing to change
    with pg_engine.connect() as conn:
        assert conn.execute(sa.select(s.follow_up_pricing.c.price_cents)).scalars().all() == [650]
    assert [a["action"] for a in audit(pg_engine)] == ["follow_up_price.set"]


def test_two_admins_saving_prices_at_once_on_the_embedded_database_take_turns(duckdb_engine):
    # the embedded demo serves every browser session from one process: sessions are threads
    for cents in (610, 620, 630):
        barrier, results = threading.Barrier(2), []

        def save(actor, barrier=barrier, results=results, cents=cents):  # this round's, not the last one's
            barrier.wait()
            try:
                results.append(set_prices(duckdb_engine, actor, {("standard", "quick_question"): cents}))
            except Exception as exc:  # the outcome under test: no conflict error reaches the admin
                results.append(exc)

        threads = [threading.Thread(target=save, args=(actor,)) for actor in (ADMIN, OTHER_ADMIN)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [0, 1]
    assert len(audit(duckdb_engine)) == 3


def test_new_issue_needs_a_session_price(engine, world):
    with engine.begin() as conn:
        conn.execute(sa.delete(s.session_base_prices))
    with pytest.raises(FollowUpError, match="new chat session costs, and that has no base price"):
        ask(engine, world["cal_rita"], world["cal"], "new_issue")
    assert ask(engine, world["cal_rita"], world["cal"], "mini_extension").price_cents == 1500


# --- creating ---------------------------------------------------------------------------


def test_create_copies_the_parent_request_and_audits(engine, world):
    created = ask(engine, world["cal_rita"], world["cal"], text=f"  {QUESTION}\n")
    row = follow_up(engine, created.id)
    assert {
        k: row[k]
        for k in (
            "customer_id",
            "parent_session_id",
            "is_follow_up",
            "follow_up_type",
            "status",
            "follow_up_state",
            "state",
            "description",
            "vehicle_make",
            "vehicle_model",
            "vehicle_year",
            "category",
            "created_at",
            "follow_up_price_cents",
        )
    } == {
        "customer_id": world["cal"],
        "parent_session_id": world["cal_rita"],
        "is_follow_up": True,
        "follow_up_type": "quick_question",
        "status": "open",
        "follow_up_state": "open",
        "state": "open",
        "description": QUESTION,
        "vehicle_make": "Honda",
        "vehicle_model": "Civic",
        "vehicle_year": 2015,
        "category": "brakes",
        "created_at": NOW,
        "follow_up_price_cents": 500,
    }
    (entry,) = audit(engine)
    assert (entry["action"], entry["entity_type"], entry["entity_id"], entry["actor_email"]) == (
        "follow_up.create",
        "follow_up",
        str(created.id),
        SUPPORT.email,
    )
    assert entry["after"] == {
        "state": "open",
        "parent_session_id": str(world["cal_rita"]),
        "customer_id": str(world["cal"]),
        "follow_up_type": "quick_question",
        "plan": "standard",
        "price_cents": 500,
        "price_source": "default",
    }


def test_window_boundary(engine, world):
    with engine.begin() as conn:
        exactly = add_session(conn, world["cal"], world["rita"], ended_at=NOW - dt.timedelta(days=14))
        just_over = add_session(conn, world["cal"], world["rita"], ended_at=NOW - dt.timedelta(days=14, microseconds=1))
    assert ask(engine, exactly, world["cal"]).price_cents == 500  # exactly 14 days after: still allowed
    with pytest.raises(FollowUpError, match=r"ended 25 Feb 2024 11:59 UTC; follow-ups can be asked up to 14 days"):
        ask(engine, just_over, world["cal"])
    three_days = FollowUpRules(window_days=3)
    assert ask(engine, world["cal_otto"], world["cal"], rules=three_days).price_cents == 500  # ended 3 days ago
    with pytest.raises(FollowUpError, match="up to 2 days"):
        ask(
            engine,
            world["pia_rita"],
            world["pia"],
            rules=FollowUpRules(window_days=2),
            now=NOW + dt.timedelta(days=1, seconds=1),
        )
    assert follow_up_count(engine) == 2


@pytest.mark.parametrize(
    "change,error,message",
    [
        (dict(session="unknown"), NotFound, "No session with id"),
        (dict(session="not-a-uuid"), FollowUpError, "Session 'not-a-uuid' is not a valid id"),
        (dict(customer="pia"), FollowUpError, "is another customer's"),
        (dict(session="cal_scheduled"), FollowUpError, "is scheduled; follow-ups can only be asked on completed"),
        (dict(now=NOW + dt.timedelta(days=12, seconds=1)), FollowUpError, "up to 14 days after a session ends"),
        (dict(follow_up_type="urgent"), FollowUpError, "Unknown follow-up type 'urgent'; use one of quick_question"),
        (dict(follow_up_type=None), FollowUpError, "Unknown follow-up type"),
        (dict(text="   "), FollowUpError, "The question is required"),
        (dict(text=None), FollowUpError, "The question is required"),
        (dict(text="x" * (TEXT_MAX + 1)), FollowUpError, "2,001 characters; the limit is 2,000"),
        (dict(text="why\x00"), FollowUpError, "NUL"),
        (dict(actor=MANAGER), PermissionDenied, "Only support or admin staff"),
        (dict(actor=None), PermissionDenied, "Sign in"),
    ],
)
def test_bad_follow_ups_are_refused_and_write_nothing(engine, world, change, error, message):
    change = dict(change)
    session = change.pop("session", "cal_rita")
    session = world.get(session, uuid.uuid4() if session == "unknown" else session)
    customer = world[change.pop("customer", "cal")]
    with pytest.raises(error, match=message):
        ask(engine, session, customer, **change)
    assert follow_up_count(engine) == 0
    assert audit(engine) == []


def test_longest_text_is_accepted(engine, world):
    assert ask(engine, world["cal_rita"], world["cal"], text="x" * TEXT_MAX)


def test_limit_of_waiting_follow_ups_per_session(engine, world):
    session, cal = world["cal_rita"], world["cal"]
    first, second = ask(engine, session, cal), ask(engine, session, cal)
    with pytest.raises(FollowUpError, match="already has 2 follow-up\\(s\\) waiting for an answer; the limit is 2"):
        ask(engine, session, cal)
    assert ask(engine, world["cal_otto"], cal)  # another session has its own limit
    assign(engine, SUPPORT, first.id, at=NOW)
    mark_answered(engine, SUPPORT, first.id, answer=ANSWER, at=NOW)  # answered: no longer waiting
    third = ask(engine, session, cal)
    cancel(engine, SUPPORT, second.id, "Asked twice", at=NOW)
    assert ask(engine, session, cal).id not in (first.id, second.id, third.id)
    with pytest.raises(FollowUpError, match="the limit is 1"):
        ask(engine, world["cal_otto"], cal, rules=FollowUpRules(max_open_per_session=1))


# --- the lifecycle ------------------------------------------------------------------------


def test_lifecycle_with_timestamps_audit_and_purchase(engine, world):
    created = ask(engine, world["cal_rita"], world["cal"])
    assert assign(engine, SUPPORT, created.id, at=NOW + HOUR) == world["rita"]  # the parent session's mechanic
    row = follow_up(engine, created.id)
    assert (row["state"], row["status"], row["assigned_mechanic_id"], row["assigned_at"], row["updated_at"]) == (
        "assigned",
        "matched",
        world["rita"],
        NOW + HOUR,
        NOW + HOUR,
    )
    assign(engine, OTHER_SUPPORT, created.id, world["bo"], seen_mechanic_id=world["rita"], at=NOW + 2 * HOUR)
    mark_answered(engine, ADMIN, str(created.id), answer=ANSWER, at=NOW + 3 * HOUR)
    row = follow_up(engine, created.id)
    assert (row["state"], row["status"], row["assigned_mechanic_id"], row["answered_at"]) == (
        "answered",
        "completed",
        world["bo"],
        NOW + 3 * HOUR,
    )
    assert (row["answer_text"], row["answered_by"]) == (ANSWER, ADMIN.email)
    close(engine, SUPPORT, created.id, at=NOW + 4 * HOUR)
    row = follow_up(engine, created.id)
    assert (row["state"], row["status"], row["closed_at"]) == ("closed", "completed", NOW + 4 * HOUR)

    trail = [(a["action"], a["actor_email"], a["before"], a["after"]) for a in audit(engine)[1:]]
    rita, bo = str(world["rita"]), str(world["bo"])
    assert trail == [
        (
            "follow_up.assign",
            SUPPORT.email,
            {"state": "open", "assigned_mechanic_id": None},
            {"state": "assigned", "assigned_mechanic_id": rita, "assigned_at": str(NOW + HOUR)},
        ),
        (
            "follow_up.reassign",
            OTHER_SUPPORT.email,
            {"state": "assigned", "assigned_mechanic_id": rita},
            {"state": "assigned", "assigned_mechanic_id": bo, "assigned_at": str(NOW + 2 * HOUR)},
        ),
        (
            "follow_up.answer",
            ADMIN.email,
            {"state": "assigned", "assigned_mechanic_id": bo},
            {
                "state": "answered",
                "answered_at": str(NOW + 3 * HOUR),
                "answer_text": ANSWER,
                "answered_by": ADMIN.email,
            },
        ),
        (
            "follow_up.close",
            SUPPORT.email,
            {"state": "answered", "assigned_mechanic_id": bo},
            {"state": "closed", "closed_at": str(NOW + 4 * HOUR)},
        ),
    ]
    (purchase,) = purchases(engine)
    assert (purchase["customer_id"], purchase["session_id"], purchase["created_at"]) == (
        world["cal"],
        world["cal_rita"],
        NOW + 3 * HOUR,
    )
    assert purchase["metadata"] == {
        "follow_up_id": str(created.id),
        "follow_up_type": "quick_question",
        "price_cents": 500,
    }


def test_the_answer_is_recorded_as_written(engine, world):
    created = ask(engine, world["cal_rita"], world["cal"])
    assign(engine, SUPPORT, created.id, at=NOW)
    hostile = "  <script>alert(1)</script> **bold** [x](javascript:alert(1)) '; DROP TABLE requests; --  "
    mark_answered(engine, OTHER_SUPPORT, created.id, answer=hostile, at=NOW + HOUR)
    row = follow_up(engine, created.id)
    assert (row["answer_text"], row["answered_by"], row["answered_at"]) == (
        hostile.strip(),  # stored as written (stripped); pages show it as plain text
        OTHER_SUPPORT.email,
        NOW + HOUR,
    )
    entry = audit(engine)[-1]
    assert (entry["action"], entry["actor_email"], entry["after"]["answer_text"]) == (
        "follow_up.answer",
        OTHER_SUPPORT.email,
        hostile.strip(),
    )


def test_bad_answers_are_refused_and_write_nothing(engine, world):
    created = ask(engine, world["cal_rita"], world["cal"]).id
    assign(engine, SUPPORT, created, at=NOW)
    before = (follow_up(engine, created), len(audit(engine)), purchases(engine))
    for answer, message in [
        (None, "The answer is required"),
        ("", "The answer is required"),
        ("  \n\t ", "The answer is required"),
        (42, "The answer must be text, not int"),
        (["yes"], "The answer must be text, not list"),
        ("yes\x00no", "The answer contains a NUL character"),
        ("x" * (ANSWER_MAX + 1), f"The answer is {ANSWER_MAX + 1:,} characters; the limit is {ANSWER_MAX:,}"),
    ]:
        with pytest.raises(FollowUpError, match=message):
            mark_answered(engine, SUPPORT, created, answer=answer)
    with pytest.raises(FollowUpError, match="'nope' is not a valid id"):
        mark_answered(engine, SUPPORT, "nope", answer=ANSWER)
    with pytest.raises(PermissionDenied):
        mark_answered(engine, MANAGER, created, answer=ANSWER)
    with pytest.raises(PermissionDenied):  # the role is read again on the server: demoted since
        mark_answered(engine, Actor("gone@example.com", "support"), created, answer=ANSWER)
    assert (follow_up(engine, created), len(audit(engine)), purchases(engine)) == before
    mark_answered(engine, SUPPORT, created, answer="x" * ANSWER_MAX, at=NOW)  # the longest answer is fine
    with pytest.raises(FollowUpError, match="is answered; only assigned follow-ups can be marked answered"):
        mark_answered(engine, SUPPORT, created, answer="again")  # answered once
    assert follow_up(engine, created)["answer_text"] == "x" * ANSWER_MAX


def test_free_answers_record_no_purchase(engine, world):
    created = ask(engine, world["pia_rita"], world["pia"])
    assign(engine, SUPPORT, created.id, at=NOW)
    mark_answered(engine, SUPPORT, created.id, answer=ANSWER, at=NOW)
    assert purchases(engine) == []


def test_cancel_needs_a_reason(engine, world):
    created = ask(engine, world["cal_rita"], world["cal"])
    for reason, message in [
        (None, "The reason to cancel is required"),
        (" ", "is required"),
        ("x" * 301, "301 characters; the limit is 300"),
    ]:
        with pytest.raises(FollowUpError, match=message):
            cancel(engine, SUPPORT, created.id, reason)
    cancel(engine, SUPPORT, created.id, " Customer found the answer ", at=NOW + HOUR)
    row = follow_up(engine, created.id)
    assert (row["state"], row["status"], row["cancel_reason"], row["cancelled_at"]) == (
        "cancelled",
        "cancelled",
        "Customer found the answer",
        NOW + HOUR,
    )
    entry = audit(engine)[-1]
    assert (entry["action"], entry["reason"], entry["after"]["state"]) == (
        "follow_up.cancel",
        "Customer found the answer",
        "cancelled",
    )


def test_steps_out_of_order_are_refused_and_write_nothing(engine, world):
    fresh = ask(engine, world["cal_rita"], world["cal"]).id
    done = ask(engine, world["pia_rita"], world["pia"]).id
    assign(engine, SUPPORT, done, at=NOW)
    mark_answered(engine, SUPPORT, done, answer=ANSWER, at=NOW)
    close(engine, SUPPORT, done, at=NOW)
    before = (follow_up(engine, fresh), follow_up(engine, done), len(audit(engine)))
    for step, message in [
        (
            lambda: mark_answered(engine, SUPPORT, fresh, answer=ANSWER),
            "is open: assign it to a mechanic before marking it answered",
        ),
        (lambda: close(engine, SUPPORT, fresh), "is open; only answered follow-ups can be closed"),
        (
            lambda: mark_answered(engine, SUPPORT, done, answer=ANSWER),
            "is closed; only assigned follow-ups can be marked answered",
        ),
        (lambda: assign(engine, SUPPORT, done), "is closed; only open or assigned follow-ups can be assigned"),
        (lambda: cancel(engine, SUPPORT, done, "late"), "is closed; only open or assigned follow-ups can be cancelled"),
        (lambda: close(engine, SUPPORT, done), "is closed; only answered"),
        (lambda: mark_answered(engine, SUPPORT, uuid.uuid4(), answer=ANSWER), "No follow-up with id"),
        (lambda: close(engine, SUPPORT, "42"), "Follow-up '42' is not a valid id"),
        (lambda: assign(engine, SUPPORT, fresh, "nobody"), "Mechanic 'nobody' is not a valid id"),
    ]:
        with pytest.raises(NotFound if message.startswith("No ") else FollowUpError, match=message):
            step()
    assert (follow_up(engine, fresh), follow_up(engine, done), len(audit(engine))) == before


def test_only_support_and_admins_move_follow_ups(engine, world):
    created = ask(engine, world["cal_rita"], world["cal"]).id
    for step in (
        lambda a: assign(engine, a, created),
        lambda a: mark_answered(engine, a, created),
        lambda a: close(engine, a, created),
        lambda a: cancel(engine, a, created, "no"),
    ):
        with pytest.raises(
            PermissionDenied, match="Only support or admin staff can do this; you are signed in as manager"
        ):
            step(MANAGER)
    assert follow_up(engine, created)["state"] == "open"
    assert [a["action"] for a in audit(engine)] == ["follow_up.create"]


def test_assignment_choices(engine, world):
    on_otto = ask(engine, world["cal_otto"], world["cal"]).id
    with pytest.raises(FollowUpError, match="Otto is not an active mechanic: choose another"):
        assign(engine, SUPPORT, on_otto)  # the parent session's mechanic is inactive
    with pytest.raises(FollowUpError, match="Otto is not an active mechanic"):
        assign(engine, SUPPORT, on_otto, world["otto"])
    with pytest.raises(NotFound, match="No mechanic with id"):
        assign(engine, SUPPORT, on_otto, uuid.uuid4())
    assert assign(engine, SUPPORT, on_otto, str(world["bo"])) == world["bo"]
    with pytest.raises(FollowUpError, match="already assigned to Bo"):
        assign(engine, SUPPORT, on_otto, world["bo"], seen_mechanic_id=world["bo"])
    with pytest.raises(ChangedMeanwhile, match="someone assigned this follow-up to Bo; nothing was changed"):
        assign(engine, SUPPORT, on_otto, world["rita"])  # the caller saw it unassigned
    with pytest.raises(ChangedMeanwhile, match="to Bo"):
        assign(engine, SUPPORT, on_otto, world["rita"], seen_mechanic_id=world["otto"])
    assert follow_up(engine, on_otto)["assigned_mechanic_id"] == world["bo"]


def test_platform_follow_ups_take_their_state_from_the_status(engine, world):
    """Follow-ups the platform created (no follow_up_state) enter the lifecycle where their status says."""
    rows = {status: uuid.uuid4() for status in s.REQUEST_STATUSES}
    with engine.begin() as conn:
        for status, request_id in rows.items():
            conn.execute(
                s.requests.insert().values(
                    id=request_id,
                    customer_id=world["cal"],
                    status=status,
                    is_follow_up=True,
                    parent_session_id=world["cal_rita"],
                    follow_up_type="quick_question",
                    created_at=NOW,
                )
            )
    assert {status: follow_up(engine, rid)["state"] for status, rid in rows.items()} == {
        "open": "open",
        "matched": "open",
        "completed": "closed",
        "cancelled": "cancelled",
    }
    assign(engine, SUPPORT, rows["matched"], at=NOW)
    assert follow_up(engine, rows["matched"])["follow_up_state"] == "assigned"
    mark_answered(engine, SUPPORT, rows["matched"], answer=ANSWER, at=NOW)
    assert purchases(engine) == []  # no price was recorded
    with pytest.raises(FollowUpError, match="is closed"):
        assign(engine, SUPPORT, rows["completed"])


def test_the_queue_counts_what_waits_for_an_answer(engine, world):
    """Waiting: open and assigned; not answered, not cancelled."""
    ids = [
        ask(engine, world["cal_rita"], world["cal"]).id,
        ask(engine, world["cal_rita"], world["cal"]).id,
        ask(engine, world["pia_rita"], world["pia"]).id,
        ask(engine, world["pia_rita"], world["pia"]).id,
    ]
    assign(engine, SUPPORT, ids[1], at=NOW)
    assign(engine, SUPPORT, ids[2], at=NOW)
    mark_answered(engine, SUPPORT, ids[2], answer=ANSWER, at=NOW)
    cancel(engine, SUPPORT, ids[3], "duplicate", at=NOW)
    with engine.connect() as conn:
        waiting = summary(conn, now=NOW).loc[0, "waiting"]
        assert waiting == 2  # open + assigned


def test_two_people_assigning_at_once_one_wins(pg_engine):
    """Two support staff assign the same open follow-up at the same moment, many times over:
    exactly one assignment is written each time, the other gets a clear message."""
    with pg_engine.begin() as conn:
        cal, rita, bo = add_user(conn), add_mechanic(conn, "Rita"), add_mechanic(conn, "Bo")
        session = add_session(conn, cal, rita, ended_at=NOW - HOUR)
    rules = FollowUpRules(max_open_per_session=20)
    for _ in range(8):
        created = ask(pg_engine, session, cal, rules=rules)
        barrier = threading.Barrier(2)
        results = {}

        def take(actor, mechanic, barrier=barrier, results=results, created=created):  # this round's
            barrier.wait()
            try:
                results[actor.email] = assign(pg_engine, actor, created.id, mechanic)
            except ChangedMeanwhile as refused:
                results[actor.email] = refused

        threads = [threading.Thread(target=take, args=pair) for pair in ((SUPPORT, rita), (OTHER_SUPPORT, bo))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = {email: m for email, m in results.items() if isinstance(m, uuid.UUID)}
        (loser,) = [exc for exc in results.values() if isinstance(exc, ChangedMeanwhile)]
        (winner_mechanic,) = winners.values()
        name = "Rita" if winner_mechanic == rita else "Bo"
        assert str(loser) == (
            f"While you were looking, someone assigned this follow-up to {name}; nothing was "
            "changed. Reload the queue to see it, then reassign it if needed."
        )
        assert follow_up(pg_engine, created.id)["assigned_mechanic_id"] == winner_mechanic
    assert sum(a["action"] == "follow_up.assign" for a in audit(pg_engine)) == 8
    assert not any(a["action"] == "follow_up.reassign" for a in audit(pg_engine))


# --- for the customer: the quote, and asking on their behalf ----------------------------------


def quote_for(engine, session, customer, follow_up_type="quick_question", **kw):
    return quote(
        engine,
        parent_session_id=session,
        customer_id=customer,
        follow_up_type=follow_up_type,
        now=kw.pop("now", NOW),
        **kw,
    )


def test_quote_says_what_creating_would_cost_or_why_not(engine, world):
    assert quote_for(engine, world["cal_rita"], world["cal"]) == {
        "eligible": True,
        "reason": None,
        "price_cents": 500,
        "plan": "standard",
    }
    assert quote_for(engine, world["pia_rita"], world["pia"], "new_issue") == {
        "eligible": True,
        "reason": None,
        "price_cents": 2900,
        "plan": "premium",
    }
    late = quote_for(engine, world["cal_rita"], world["cal"], now=NOW + dt.timedelta(days=13))
    assert (late["eligible"], late["price_cents"], late["plan"]) == (False, None, "standard")
    assert "up to 14 days after a session ends" in late["reason"]
    assert "another customer's" in quote_for(engine, world["pia_rita"], world["cal"])["reason"]
    assert "is scheduled" in quote_for(engine, world["cal_scheduled"], world["cal"])["reason"]
    ask(engine, world["cal_rita"], world["cal"])
    ask(engine, world["cal_rita"], world["cal"])
    assert "the limit is 2" in quote_for(engine, world["cal_rita"], world["cal"])["reason"]
    for session, follow_up_type, message in [
        (uuid.uuid4(), "quick_question", "No session with id"),
        ("x';--", "quick_question", "not a valid id"),
        (world["cal_rita"], "<b>free</b>", "Unknown follow-up type"),
    ]:
        with pytest.raises(NotFound if message.startswith("No ") else FollowUpError, match=message):
            quote_for(engine, session, world["cal"], follow_up_type)
    assert follow_up_count(engine) == 2  # quotes write nothing


def test_the_platform_asks_for_the_customer_audited_as_the_platform(engine, world):
    offered = quote_for(engine, world["cal_rita"], world["cal"], "mini_extension")
    created = ask(engine, world["cal_rita"], world["cal"], "mini_extension", actor=None, on_behalf_of_customer=True)
    assert created.price_cents == offered["price_cents"] == 1500
    row = follow_up(engine, created.id)
    assert (row["state"], row["follow_up_price_cents"], row["rules_applied_at"] is not None) == ("open", 1500, True)
    (entry,) = audit(engine)
    assert (entry["actor_email"], entry["actor_role"], entry["action"]) == ("platform", "platform", "follow_up.create")
    with pytest.raises(FollowUpError, match="either by staff or for the customer"):
        ask(engine, world["cal_rita"], world["cal"], actor=SUPPORT, on_behalf_of_customer=True)
    with pytest.raises(FollowUpError, match="another customer's"):
        ask(engine, world["pia_rita"], world["cal"], actor=None, on_behalf_of_customer=True)
    assert follow_up_count(engine) == 1
