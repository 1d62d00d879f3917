"""The Follow-ups page with streamlit's AppTest on PostgreSQL: queue actions, recording an
answer (and refusing bad ones), the assignee picker, the link filters, the export, a conflict,
the empty state, prices, and support staff signed in."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.core import schema as s
from dashboard.core.auth import Actor
from dashboard.core.period import Period
from dashboard.domain.followups import STATE, assign, create_follow_up, prices
from tests.factories import add_follow_up, add_mechanic, add_session, add_user, staff_fixture
from tests.page_support import open_any_page

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"
SUPPORT = Actor("sue@example.com", "support")
staff = staff_fixture(SUPPORT)
EVIL = "<script>alert('x')</script> **bold** [link](http://x.example)"


def text(elements) -> str:
    return re.sub(r"\\(.)", r"\1", "\n".join(str(element.value) for element in elements))


@pytest.fixture
def app_db(monkeypatch, tmp_path, pg_engine):
    monkeypatch.setenv("PITWALL_SECRETS", str(tmp_path / "absent-secrets.toml"))
    monkeypatch.setenv("DATABASE_URL", pg_engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("PITWALL_ALLOW_ANONYMOUS", "true")
    monkeypatch.delenv("DATABASE_READ_URL", raising=False)
    st.cache_data.clear()  # the test database's URL is the same for every test: forget earlier results
    return pg_engine


@pytest.fixture
def queue_db(app_db):
    """Cal's session with Rita ended yesterday; his question (open) and Pia's (assigned to Bo)."""
    now = dt.datetime.now(dt.UTC)
    with app_db.begin() as conn:
        cal, pia = add_user(conn, "Cal <b>C</b>"), add_user(conn, "Pia")
        rita, bo = add_mechanic(conn, "Rita *R*"), add_mechanic(conn, "Bo")
        cal_session = add_session(conn, cal, rita, ended_at=now - dt.timedelta(days=1), findings="Worn **pads**")
        pia_session = add_session(conn, pia, bo, ended_at=now - dt.timedelta(days=1))
    ask = dict(follow_up_type="quick_question", text=EVIL)
    cal_question = create_follow_up(app_db, SUPPORT, parent_session_id=cal_session, customer_id=cal, **ask).id
    pia_question = create_follow_up(app_db, SUPPORT, parent_session_id=pia_session, customer_id=pia, **ask).id
    assign(app_db, SUPPORT, pia_question)
    return {"engine": app_db, "cal": cal_question, "pia": pia_question, "rita": rita, "bo": bo}


def open_page(**state) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    for key, value in state.items():
        at.session_state[key] = value
    return at.switch_page("../pages/followups.py").run()


def asked_by(at: AppTest) -> list[str]:
    """Who asked each follow-up shown, top to bottom (from the cards' first line)."""
    return re.findall(r"\*\* from \[([^\]]+)\]", "\n".join(m.value for m in at.markdown))


def test_the_queue_pages_through_any_backlog(queue_db):
    engine, now = queue_db["engine"], dt.datetime.now(dt.UTC)
    with engine.begin() as conn:  # ten more waiting, each older than Cal's and Pia's
        for i in range(10):
            customer = add_user(conn, f"Dee {i}")
            session = add_session(conn, customer, queue_db["rita"], ended_at=now - dt.timedelta(days=3))
            add_follow_up(conn, customer, session, created_at=now - dt.timedelta(hours=20 - i))
    at = open_page()
    assert not at.exception
    assert "**1–10 of 12 follow-ups**" in text(at.markdown)
    assert asked_by(at) == [f"Dee {i}" for i in range(10)]  # the same target: the oldest is the most overdue
    assert next(b for b in at.button if b.label == "Previous page").proto.disabled
    next(b for b in at.button if b.label == "Next page").click().run()
    assert "**11–12 of 12 follow-ups**" in text(at.markdown) and at.query_params["page"] == "2"
    assert asked_by(at) == ["Cal \\<b\\>C\\</b\\>", "Pia"]
    assert next(b for b in at.button if b.label == "Next page").proto.disabled
    at.selectbox(key="followup_mechanic").select(str(queue_db["bo"])).run()  # a filter starts again on page 1
    assert "page" not in at.query_params and asked_by(at) == ["Pia"]
    assert "**1 of 1 follow-up**" in text(at.markdown)

    for raw, notice in (("9", "There is no page 9 (the list has 2 pages): showing the last."), ("x", "is not a page")):
        at = AppTest.from_file(str(APP), default_timeout=60).run()
        at.query_params["page"] = raw
        at = at.switch_page("../pages/followups.py").run()
        assert not at.exception and notice in text(at.warning)
        assert ("**11–12 of 12 follow-ups**" if raw == "9" else "**1–10 of 12 follow-ups**") in text(at.markdown)


def row(engine, follow_up_id) -> dict:
    with engine.connect() as conn:
        return dict(
            conn.execute(sa.select(s.requests, STATE.label("state")).where(s.requests.c.id == follow_up_id))
            .mappings()
            .one()
        )


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_queue_actions_from_assign_to_close(queue_db):
    engine, cal, pia = queue_db["engine"], queue_db["cal"], queue_db["pia"]
    # the parent sessions' popovers open (their content is built only while open)
    at = open_page(**{f"parent_{cal}": True, f"parent_{pia}": True})
    assert not at.exception
    assert [metric(at, label) for label in ("Waiting for an answer", "Unassigned", "Due within 2 h")] == [
        "2",
        "1",
        "0",
    ]
    assert [t.value for t in at.text].count(EVIL) == 2  # plain text, never Markdown
    assert "Cal \\<b\\>C\\</b\\>" in "\n".join(m.value for m in at.markdown)
    assert "Worn **pads**" in [t.value for t in at.text]  # the parent session's summary
    assert "**1–2 of 2 follow-ups**" in text(at.markdown) and "Most overdue first." in text(at.caption)
    assert at.button(key=f"assign_default_{cal}").label == "Assign to Rita \\*R\\* · 0 open"
    assert not at.data_editor and not at.form_submit_button  # the prices are read only while their panel is open

    at.button(key=f"assign_default_{cal}").click().run()
    assert not at.exception and not at.error
    assert (row(engine, cal)["state"], row(engine, cal)["assigned_mechanic_id"]) == ("assigned", queue_db["rita"])
    at.session_state[f"open_answer_{cal}"] = True  # "Record answer…" open
    at.run()
    at.button(key=f"answer_{cal}").click().run()  # no answer written yet
    assert "The answer is required." in text(at.error)
    assert row(engine, cal)["state"] == "assigned"
    at.text_area(key=f"answer_text_{cal}").set_value(EVIL).run()
    at.button(key=f"answer_{cal}").click().run()
    assert not at.error
    assert (row(engine, cal)["state"], row(engine, cal)["answer_text"]) == ("answered", EVIL)
    assert "1 follow-up answered and not closed yet" in text(at.caption)

    at.pills(key="followup_states").set_value(["answered"]).run()
    assert "Answered in time" in text(at.markdown)
    assert EVIL in [t.value for t in at.text]  # the answer, as plain text
    shown = text(at.markdown)
    assert "Answer** from [Rita \\*R\\*](mechanics?mechanic=" in "\n".join(m.value for m in at.markdown)
    assert re.search(r"recorded by [^·]+ · \d\d \w{3} \d{4}, \d\d:\d\d:\d\d", shown)
    at.button(key=f"close_{cal}").click().run()
    assert row(engine, cal)["state"] == "closed"

    at.pills(key="followup_states").set_value(["open", "assigned"]).run()
    at.session_state[f"open_cancel_{pia}"] = True  # "Cancel…" open
    at.run()
    at.button(key=f"cancel_{pia}").click().run()  # no reason yet
    assert "The reason to cancel is required." in text(at.error)
    assert row(engine, pia)["state"] == "assigned"
    at.text_input(key=f"reason_{pia}").set_value("Customer solved it").run()
    at.button(key=f"cancel_{pia}").click().run()
    assert not at.error
    assert (row(engine, pia)["state"], row(engine, pia)["cancel_reason"]) == ("cancelled", "Customer solved it")
    assert "Every follow-up is answered." in text(at.info)

    with engine.connect() as conn:
        actions = conn.execute(
            sa.select(s.audit_log.c.action, s.audit_log.c.actor_role).order_by(s.audit_log.c.created_at)
        ).all()
    assert [tuple(a) for a in actions[3:]] == [
        ("follow_up.assign", "admin"),
        ("follow_up.answer", "admin"),
        ("follow_up.close", "admin"),
        ("follow_up.cancel", "admin"),
    ]


def test_reassign_shows_each_mechanics_load(queue_db):
    pia = queue_db["pia"]
    at = open_page(**{f"choose_{pia}": True})  # the "Reassign…" popover is open
    chooser = at.selectbox(key=f"mechanic_{pia}")
    assert chooser.options == [  # plain text; nobody has hours today, so fewest open first
        "Rita *R* · no rating yet · 0 open · no hours left today",
        "Bo · no rating yet · 1 open · no hours left today",
    ]
    assert chooser.value == str(queue_db["bo"])
    chooser.set_value(str(queue_db["rita"])).run()
    at.button(key=f"assign_{pia}").click().run()
    assert not at.exception and not at.error
    assert row(queue_db["engine"], pia)["assigned_mechanic_id"] == queue_db["rita"]


def test_someone_else_assigning_first_gets_a_clear_message(queue_db):
    cal = queue_db["cal"]
    at = open_page()
    assign(queue_db["engine"], SUPPORT, cal, queue_db["bo"])  # while the page is open
    at.button(key=f"assign_default_{cal}").click().run()
    assert not at.exception
    assert "someone assigned this follow-up to Bo; nothing was changed" in text(at.error)
    assert row(queue_db["engine"], cal)["assigned_mechanic_id"] == queue_db["bo"]
    assert f"assign_default_{cal}" not in [b.key for b in at.button]  # the queue was reloaded


def test_empty_queue_and_chart(app_db):
    at = open_page()
    assert not at.exception
    assert "Every follow-up is answered." in text(at.info)
    assert "No follow-ups were asked in this period." in text(at.info)


def test_admin_saves_prices(queue_db):
    engine = queue_db["engine"]
    edits = {"edited_rows": {0: {"standard": 7.25}, 2: {"premium": 0.0}}, "added_rows": [], "deleted_rows": []}
    at = open_page(followup_prices_open=True, followup_price_editor=edits)  # the expander open, the prices edited
    at.form_submit_button[0].click().run()
    assert not at.exception and not at.error
    with engine.connect() as conn:
        current = prices(conn)
    assert (current["standard", "quick_question"].cents, current["premium", "new_issue"].cents) == (725, 0)
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(sa.func.count()).select_from(s.audit_log).where(s.audit_log.c.action == "follow_up_price.set")
            ).scalar_one()
            == 2
        )


def test_support_staff_work_the_queue_but_only_read_prices(queue_db, oidc_secrets):
    engine = queue_db["engine"]
    with engine.begin() as conn:
        conn.execute(s.staff_roles.insert().values(email="sam@example.com", role="support"))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.user = {"is_logged_in": True, "email": "sam@example.com", "email_verified": True}
    at.session_state[f"open_answer_{queue_db['pia']}"] = True  # "Record answer…" open
    at.session_state["followup_prices_open"] = True  # "Prices and response targets" open
    at = at.run().switch_page("../pages/followups.py").run()
    assert not at.exception
    assert not at.data_editor and not at.form_submit_button
    assert [d.value.type.tolist() for d in at.dataframe] == [["Quick question", "Mini extension", "New issue"]]
    at.text_area(key=f"answer_text_{queue_db['pia']}").set_value("Yes, drive on.").run()
    at.button(key=f"answer_{queue_db['pia']}").click().run()
    assert (row(engine, queue_db["pia"])["state"], row(engine, queue_db["pia"])["answered_by"]) == (
        "answered",
        "sam@example.com",
    )
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(s.audit_log.c.actor_email).order_by(s.audit_log.c.created_at.desc()).limit(1)
            ).scalar_one()
            == "sam@example.com"
        )


def test_bad_answers_change_nothing(queue_db):
    engine, pia = queue_db["engine"], queue_db["pia"]
    at = open_page(**{f"open_answer_{pia}": True})  # "Record answer…" open
    before = row(engine, pia)
    for answer, message in [
        ("   ", "The answer is required."),
        ("yes\x00no", "The answer contains a NUL character."),
    ]:
        at.text_area(key=f"answer_text_{pia}").set_value(answer).run()
        at.button(key=f"answer_{pia}").click().run()
        assert not at.exception
        assert message in text(at.error)
        assert row(engine, pia) == before
    # longer than ANSWER_MAX cannot be typed (the text area's limit); the domain refuses it too (test_followups.py)
    assert at.text_area(key=f"answer_text_{pia}").max_chars == 4000


def test_the_picker_puts_matching_free_mechanics_first(queue_db):
    engine, cal = queue_db["engine"], queue_db["cal"]
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(s.requests.update().where(s.requests.c.id == cal).values(category="brakes"))
        ivy = add_mechanic(conn, "Ivy", specialties=["brakes", "engine"], avg_rating=4.7, total_reviews=3)
        conn.execute(  # hours all day in UTC: free today unless it is the last minute of the day
            s.mechanic_availability_slots.insert().values(
                mechanic_id=ivy,
                day_of_week=(now.weekday() + 1) % 7,
                start_time=dt.time(0),
                end_time=dt.time(23, 59, 59),
            )
        )
    at = open_page(**{f"choose_{cal}": True})
    options = at.selectbox(key=f"mechanic_{cal}").options
    assert options[0] == "Ivy — Brakes, Engine · 4.70 ★ · 0 open · free today"
    assert "Those with brakes among their specialties first" in text(at.caption)


def open_with_link(engine, **params) -> AppTest:
    """The page alone, as support staff, opened from a link with ``params``."""
    today = dt.date.today()
    period = Period(today - dt.timedelta(days=29), today, "UTC")
    return open_any_page(engine, period, SUPPORT, APP.parents[1] / "pages" / "followups.py", params)


def test_links_open_the_queue_filtered(queue_db):
    engine, cal, pia = queue_db["engine"], queue_db["cal"], queue_db["pia"]
    with engine.begin() as conn:  # Pia's question is past its target (4 h), Cal's due in 30 minutes
        now = dt.datetime.now(dt.UTC)
        conn.execute(s.requests.update().where(s.requests.c.id == pia).values(created_at=now - dt.timedelta(hours=5)))
        conn.execute(
            s.requests.update().where(s.requests.c.id == cal).values(created_at=now - dt.timedelta(minutes=210))
        )

    def shown(at) -> set:  # the waiting follow-ups on the page: each has its "Cancel…" popover
        return {rid for rid in (cal, pia) if any(f"open_cancel_{rid}" in p.proto.id for p in at.get("popover"))}

    overdue = open_with_link(engine, due="overdue")
    assert not overdue.exception
    assert shown(overdue) == {pia} and overdue.segmented_control(key="followup_due").value == "overdue"
    soon = open_with_link(engine, due="soon")
    assert shown(soon) == {cal}
    assigned = open_with_link(engine, state="assigned")
    assert shown(assigned) == {pia} and assigned.pills(key="followup_states").value == ["assigned"]
    opened = open_with_link(engine, state="open", due="overdue")
    assert shown(opened) == set()
    assert "No follow-ups match these filters." in text(opened.info)
    bad = open_with_link(engine, state="<b>x</b>", due="9999999999999999999")
    assert not bad.exception and shown(bad) == {cal, pia}
    assert (
        "state “<b>x</b>” (use open or assigned) and due “9999999999999999999” (use overdue or soon) was ignored"
        in (text(bad.warning))
    )
    bad.segmented_control(key="followup_due").set_value("overdue").run()
    assert bad.query_params["due"] == "overdue"  # the URL follows the filter
