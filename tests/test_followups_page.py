"""The Follow-ups page with streamlit's AppTest on PostgreSQL: queue actions, a conflict,
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
from dashboard.domain.followups import STATE, assign, create_follow_up, prices
from tests.factories import add_mechanic, add_session, add_user, staff_fixture

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
    at = open_page()
    assert not at.exception
    assert [metric(at, label) for label in ("Waiting for an answer", "Unassigned", "Answered, to close")] == [
        "2",
        "1",
        "0",
    ]
    assert [t.value for t in at.text].count(EVIL) == 2  # plain text, never Markdown
    assert "Cal \\<b\\>C\\</b\\>" in "\n".join(m.value for m in at.markdown)
    assert "Worn **pads**" in [t.value for t in at.text]  # the parent session's summary
    assert "2 follow-ups match; showing 2, most overdue first." in text(at.caption)
    assert at.button(key=f"assign_default_{cal}").label == "Assign to Rita \\*R\\* · 0 open"

    at.button(key=f"assign_default_{cal}").click().run()
    assert not at.exception and not at.error
    assert (row(engine, cal)["state"], row(engine, cal)["assigned_mechanic_id"]) == ("assigned", queue_db["rita"])
    at.button(key=f"answer_{cal}").click().run()
    assert row(engine, cal)["state"] == "answered"
    assert metric(at, "Answered, to close") == "1"

    at.pills(key="followup_states").set_value(["answered"]).run()
    assert "Answered in time" in text(at.markdown)
    at.button(key=f"close_{cal}").click().run()
    assert row(engine, cal)["state"] == "closed"

    at.pills(key="followup_states").set_value(["open", "assigned"]).run()
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
    assert chooser.options == ["Bo · 1 open", "Rita *R* · 0 open"]  # options are plain text
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
    at = open_page(followup_price_editor=edits)
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
    at = at.run().switch_page("../pages/followups.py").run()
    assert not at.exception
    assert not at.data_editor and not at.form_submit_button
    assert [d.value.type.tolist() for d in at.dataframe] == [["Quick question", "Mini extension", "New issue"]]
    at.button(key=f"answer_{queue_db['pia']}").click().run()
    assert row(engine, queue_db["pia"])["state"] == "answered"
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(s.audit_log.c.actor_email).order_by(s.audit_log.c.created_at.desc()).limit(1)
            ).scalar_one()
            == "sam@example.com"
        )
