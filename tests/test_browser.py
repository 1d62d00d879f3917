"""End to end: `streamlit run dashboard/app.py` on a tiny embedded demo database,
driven by Debian's chromium through Playwright. Every page opens as the demo
admin without an error, and a 1280x800 screenshot of each lands in test-artifacts/. A link
opened on the first start shows the demo's progress, then the page it names.
"""

from pathlib import Path
from urllib.parse import urlparse

import pytest

from dashboard.ui import access
from tests.browser_support import (
    START_TIMEOUT,
    assert_no_exception,
    browser_page,
    open_page,
    require_chromium,
    screenshot,
    serve,
)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    require_chromium()
    with serve(tmp_path_factory.mktemp("browser") / "pitwall.duckdb") as url:
        yield url


def test_every_page_opens_as_the_demo_admin(app_url):
    from playwright.sync_api import expect

    with browser_page() as page:
        for spec in access.PAGES:
            name = Path(spec.file).stem
            open_page(page, f"{app_url}/{'' if name == 'overview' else name}", spec.title)
            expect(page.get_by_test_id("stSidebar")).to_contain_text("Demo admin")
            assert_no_exception(page, spec.file)
            assert page.get_by_test_id("stAlertContentError").count() == 0, spec.file
            screenshot(page, name)


def test_a_link_opened_on_the_first_start_shows_the_progress_then_its_page(tmp_path):
    from playwright.sync_api import expect

    require_chromium()
    # a demo big enough to take seconds to load, on a file that does not exist yet
    with serve(tmp_path / "first.duckdb", PITWALL_DEMO_SCALE="0.3") as url, browser_page() as page:
        page.goto(f"{url}/reviews?status=pending")
        expect(page.get_by_role("heading", name="Preparing the demo")).to_be_visible()
        expect(page.get_by_test_id("stProgress")).to_be_visible()
        screenshot(page, "first-start-progress")
        heading = page.get_by_role("heading", name="Review moderation", exact=True)
        expect(heading).to_be_visible(timeout=START_TIMEOUT * 1000)
        assert urlparse(page.url).path == "/reviews"
        expect(page.get_by_role("heading", name="Preparing the demo")).to_have_count(0)
        assert_no_exception(page, "reviews after the first start")
