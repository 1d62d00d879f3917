"""Faults, the app's side: PostgreSQL stopped and started while the app is open, a write
clicked while it is down, and the app process killed and started again on its embedded
DuckDB file. Each ends with nothing lost, nothing done twice, and Pitwall's clear message
(no traceback, no credentials) while it lasted.

PostgreSQL faults run on a throwaway cluster of the test's own (``tests/throwaway_pg.py``),
never the shared server; the app runs with AppTest there. The kill runs the real app
(``streamlit run``) and drives it with chromium.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import signal
import threading
import time

import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.core import schema as s
from dashboard.core.auth import vouch_for
from dashboard.core.db import make_engine
from dashboard.core.migrate import upgrade
from dashboard.domain.followups import create_follow_up
from dashboard.domain.reviews import submit_review
from dashboard.ui import access
from tests.browser_support import ROOT, assert_no_exception, browser_page, open_page, require_chromium, start_app
from tests.factories import add_mechanic, add_session, add_user
from tests.throwaway_pg import throwaway_cluster

APP = ROOT / "dashboard" / "app.py"
PASSWORD = "Sup3r-secret-pw"  # trust auth ignores it; it must never be shown or logged
SUPPORT = access.demo_actor("support")
REVIEW_TEXT = "Fixed my brakes over video. Call me on 0176 1234 5678 for the details."
QUESTION = "Is the squeal after the pad change normal?"
UNREACHABLE = "The database is not available"


def text(elements) -> str:
    """The elements' Markdown as a reader sees it: escapes and invisible word joiners removed."""
    shown = "\n".join(str(element.value) for element in elements).replace("\u2060", "")
    return re.sub(r"\\(.)", r"\1", shown)


def shown(at: AppTest) -> str:
    """Everything the run put on the page, as text."""
    return text([*at.title, *at.error, *at.warning, *at.info, *at.markdown, *at.caption, *at.exception])


def write_rows(engine) -> dict:
    """A customer whose session with a mechanic ended yesterday, with a review of it that waits
    for moderation (flagged for personal data) and an open follow-up question."""
    ended = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    with engine.begin() as conn:
        customer = add_user(conn, "Fay Fault")
        mechanic = add_mechanic(conn, "Max Mender", timezone="Europe/Berlin")
        reviewed = add_session(conn, customer, mechanic, ended_at=ended, started_at=ended - dt.timedelta(hours=1))
        asked = add_session(conn, customer, mechanic, ended_at=ended, started_at=ended - dt.timedelta(hours=1))
    review = submit_review(engine, session_id=reviewed, customer_id=customer, rating=4, text=REVIEW_TEXT)
    assert review.status == "pending" and "personal_data" in review.flags
    follow_up = create_follow_up(
        vouch_for(engine, SUPPORT),
        SUPPORT,
        parent_session_id=asked,
        customer_id=customer,
        follow_up_type="quick_question",
        text=QUESTION,
    )
    return {"review": str(review.id), "follow_up": str(follow_up.id), "mechanic": mechanic}


def audit_rows(engine, action: str, entity_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count())
            .select_from(s.audit_log)
            .where(s.audit_log.c.action == action, s.audit_log.c.entity_id == entity_id)
        ).scalar_one()


@pytest.fixture(scope="module")
def server():
    """A migrated throwaway PostgreSQL for the module, and an engine on it by a URL with a password."""
    with throwaway_cluster() as cluster:
        url = cluster.url.replace("postgres@", f"postgres:{PASSWORD}@")
        engine = make_engine(url)
        upgrade(engine)
        yield cluster, url, engine
        engine.dispose()


@pytest.fixture
def cluster(server, monkeypatch, tmp_path):
    """The module's server, up, with this test's ``write_rows``, and the app's environment
    pointing at it, anonymous use allowed."""
    cluster, url, engine = server
    rows = write_rows(engine)
    for name in ("DATABASE_READ_URL", "PITWALL_DUCKDB_PATH", "PITWALL_DEMO_ROLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PITWALL_SECRETS", str(tmp_path / "absent-secrets.toml"))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("PITWALL_ALLOW_ANONYMOUS", "true")
    st.cache_data.clear()
    yield cluster, engine, rows
    if not cluster.is_up():  # a test that failed while it was down
        cluster.start()


def open_app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    return at.switch_page(f"../pages/{page}").run() if page else at


def assert_unreachable_message(at: AppTest, where: str) -> None:
    page = shown(at)
    assert not at.exception, where
    assert UNREACHABLE in text(at.error), where
    assert "Cannot reach the database at postgresql+psycopg://postgres:***@127.0.0.1" in text(at.error), where
    assert PASSWORD not in page and "Traceback" not in page, where
    assert [button.label for button in at.button] == ["Try again"], where


def assert_clean_log(err: str) -> None:
    """No uncaught exception logged by Streamlit, and no password anywhere on stderr."""
    assert "Uncaught app execution" not in err and PASSWORD not in err


def try_again(at) -> None:
    """Click the error page's "Try again" (the sidebar has buttons of its own)."""
    next(button for button in at.button if button.label == "Try again").click().run()


def test_every_page_says_the_database_is_down_and_works_again_after_the_restart(cluster, capfd):
    server, _, _ = cluster
    at = open_app()
    assert [t.value for t in at.title] == ["Overview"]
    server.stop()
    for page in access.PAGES:
        at.switch_page(f"../pages/{page.file}").run()
        assert_unreachable_message(at, page.file)
        assert not at.title, page.file  # the page itself did not run
    server.start()
    try_again(at)  # on the page that was open: no restart of the app
    assert [t.value for t in at.title] == [access.PAGES[-1].title]
    for page in access.PAGES:
        at.switch_page(f"../pages/{page.file}").run()
        assert not at.exception and UNREACHABLE not in text(at.error), page.file
        assert [t.value for t in at.title] == [page.title], page.file
    err = capfd.readouterr().err
    assert f"pitwall: {UNREACHABLE}: Cannot reach the database" in err
    assert_clean_log(err)


def test_a_moderation_clicked_while_the_database_is_down_changes_nothing_and_is_done_once_later(cluster, capfd):
    server, engine, rows = cluster
    review = rows["review"]
    at = open_app("reviews.py")
    assert at.selectbox(key=f"reason_{review}").value == "personal_information"
    server.stop()
    at.button(key=f"hide_reason_{review}").click().run()
    assert_unreachable_message(at, "hide while down")
    assert "Your change was not saved" in text(at.error)
    server.start()
    with engine.connect() as conn:
        status = conn.execute(
            sa.select(s.mechanic_reviews.c.status).where(s.mechanic_reviews.c.id == review)
        ).scalar_one()
    assert status == "pending" and audit_rows(engine, "review.hide", review) == 0
    at.run()  # the same session, now that the database answers
    assert not at.error  # the click's fate was said once, while it mattered
    at.button(key=f"hide_reason_{review}").click().run()
    assert not at.exception and not at.error
    with engine.connect() as conn:
        status = conn.execute(
            sa.select(s.mechanic_reviews.c.status).where(s.mechanic_reviews.c.id == review)
        ).scalar_one()
    assert status == "hidden" and audit_rows(engine, "review.hide", review) == 1
    err = capfd.readouterr().err
    assert_clean_log(err)


def test_an_assignment_clicked_while_the_database_is_down_changes_nothing_and_is_done_once_later(cluster, capfd):
    server, engine, rows = cluster
    follow_up = rows["follow_up"]
    at = open_app("followups.py")
    server.stop()
    at.button(key=f"assign_default_{follow_up}").click().run()
    assert_unreachable_message(at, "assign while down")
    assert "Your change was not saved" in text(at.error)
    server.start()
    r = s.requests
    with engine.connect() as conn:
        state = conn.execute(sa.select(r.c.follow_up_state, r.c.assigned_mechanic_id).where(r.c.id == follow_up)).one()
    assert tuple(state) == ("open", None) and audit_rows(engine, "follow_up.assign", follow_up) == 0
    at.run()
    at.button(key=f"assign_default_{follow_up}").click().run()
    assert not at.exception and not at.error
    with engine.connect() as conn:
        state = conn.execute(sa.select(r.c.follow_up_state, r.c.assigned_mechanic_id).where(r.c.id == follow_up)).one()
    assert tuple(state) == ("assigned", rows["mechanic"]) and audit_rows(engine, "follow_up.assign", follow_up) == 1
    assert_clean_log(capfd.readouterr().err)


def stop_once_a_query_waits_for_a_lock(server, engine) -> threading.Thread:
    """Stop ``server`` as soon as one of the app's queries is blocked on a lock: the database
    goes down in the middle of a page."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                ).scalar_one():
                    break
            time.sleep(0.05)
        server.stop()

    watcher = threading.Thread(target=watch)
    watcher.start()
    return watcher


def test_the_database_going_down_in_the_middle_of_a_page_shows_the_message(cluster, capfd):
    """The moderation setting is read on a connection of the page's own, not through run_query."""
    server, engine, _ = cluster
    at = open_app("reviews.py")
    assert "Moderation setting" in [e.label for e in at.expander]
    at.session_state["moderation_setting"] = True  # the expander open: the setting is read on each run
    at.run()
    locker = make_engine(server.url)
    with locker.connect() as conn:
        conn.execute(sa.text("LOCK TABLE review_settings IN ACCESS EXCLUSIVE MODE"))  # until the server stops
        watcher = stop_once_a_query_waits_for_a_lock(server, locker)
        at.run()  # the queue comes from the cache; the setting waits for the lock, then the server is gone
        watcher.join()
        with contextlib.suppress(sa.exc.DBAPIError):
            conn.rollback()
    locker.dispose()
    page = shown(at)
    assert not at.exception
    assert "The database stopped answering" in text(at.error)
    assert PASSWORD not in page and "Traceback" not in page
    server.start()
    try_again(at)
    assert [t.value for t in at.title] == ["Review moderation"] and not at.error
    assert_clean_log(capfd.readouterr().err)


# --- the app process killed --------------------------------------------------------


def table_counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (s.users, s.sessions, s.mechanic_reviews, s.requests, s.audit_log)
        }


def test_a_write_acknowledged_before_the_app_is_killed_is_there_once_after_the_restart(tmp_path):
    require_chromium()
    database = tmp_path / "pitwall.duckdb"
    engine = make_engine(f"duckdb:///{database}")
    upgrade(engine)
    rows = write_rows(engine)  # the app finds users, so it loads no demo data on top
    before = table_counts(engine)
    engine.dispose()
    review = rows["review"]

    from playwright.sync_api import expect

    with browser_page() as page:
        server, url = start_app(database, tmp_path / "first.log", PITWALL_DEMO_ROLE="support")
        try:
            open_page(page, f"{url}/reviews", "Review moderation")
            page.locator(f".st-key-hide_reason_{review} button").click()
            expect(page.get_by_text("Hid 1 review.")).to_be_visible()  # acknowledged
        finally:
            server.kill()  # SIGKILL: no shutdown, no checkpoint
            server.wait()
        assert server.returncode == -signal.SIGKILL

        server, url = start_app(database, tmp_path / "second.log", PITWALL_DEMO_ROLE="support")
        try:
            open_page(page, f"{url}/reviews", "Review moderation")
            assert_no_exception(page, "reviews after the restart")
            assert page.locator(f".st-key-review_{review}").count() == 0  # no longer waiting
        finally:
            server.terminate()
            server.wait(timeout=20)
    assert "Traceback" not in (tmp_path / "second.log").read_text()

    engine = make_engine(f"duckdb:///{database}")
    with engine.connect() as conn:
        status = conn.execute(
            sa.select(s.mechanic_reviews.c.status, s.mechanic_reviews.c.hidden_reason).where(
                s.mechanic_reviews.c.id == review
            )
        ).one()
    assert tuple(status) == ("hidden", "personal_information")
    assert audit_rows(engine, "review.hide", review) == 1
    assert table_counts(engine) == {**before, "audit_log": before["audit_log"] + 1}  # nothing lost or doubled
    engine.dispose()
