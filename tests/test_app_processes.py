"""Two app processes over one PostgreSQL, as behind a load balancer (README, "Several app
processes"): both serve every page, and a change made in one is what the other reads next
(the other's cached views refresh within ``ui.QUERY_TTL_SECONDS``).
Each process keeps its own caches; the database is the only state they share."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from dashboard.core import schema as s
from dashboard.core.db import make_engine
from dashboard.core.migrate import upgrade
from dashboard.tools.bench.load import Session, app_server
from tests.browser_support import browser_page, require_chromium, settle
from tests.factories import add_mechanic, add_review

TEXT = "Two processes served this review"


async def _every_page(base: str, but: str = "") -> list[str]:
    """Open a session and visit every page once (but the one titled ``but``); the errors seen."""
    session = await Session.open(base)
    try:
        runs = [await session.run(page_hash) for title, page_hash in session.pages.items() if title != but]
    finally:
        await session.close()
    assert len(runs) >= 7
    return [run.error for run in runs if run.error]


def test_two_app_processes_share_one_postgresql(empty_pg_url, tmp_path):
    require_chromium()
    engine = make_engine(empty_pg_url)
    upgrade(engine)
    with engine.begin() as conn:
        review = add_review(
            conn,
            add_mechanic(conn, "Maxine"),
            5,
            "pending",
            created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=3),
            review_text=TEXT,
        )
    with app_server(empty_pg_url, tmp_path / "a.log") as first, app_server(empty_pg_url, tmp_path / "b.log") as second:
        assert asyncio.run(_every_page(first)) == []
        # The second has not read the queue yet: a process's cached view of it would refresh within
        # ui.QUERY_TTL_SECONDS (or at its own next write).
        assert asyncio.run(_every_page(second, but="Review moderation")) == []
        with browser_page() as page:
            page.goto(f"{first}/reviews")
            settle(page)
            page.locator(f".st-key-publish_{review} button").click()  # as the journeys do
            expect(page.get_by_text(TEXT)).to_have_count(0)
            settle(page)
            with engine.connect() as conn:
                status = conn.execute(sa.select(s.mechanic_reviews.c.status).where(s.mechanic_reviews.c.id == review))
                assert status.scalar_one() == "published"
            page.goto(f"{second}/reviews")  # the other process: its first read of the queue, after the change
            settle(page)
            assert page.get_by_text(TEXT).count() == 0
            assert page.get_by_role("heading", name="Review moderation").count() == 1
    for log in ("a.log", "b.log"):
        assert "Traceback" not in (tmp_path / log).read_text()
    engine.dispose()


@pytest.fixture(autouse=True)
def _no_secrets(monkeypatch, tmp_path):
    monkeypatch.setenv("PITWALL_SECRETS", str(tmp_path / "absent.toml"))
