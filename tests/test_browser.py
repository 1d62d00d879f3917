"""End to end: `streamlit run dashboard/app.py` on a tiny embedded demo database,
driven by Debian's chromium through Playwright. Every page opens as the demo
admin without an error, and a 1280x800 screenshot of each lands in test-artifacts/.
"""

from pathlib import Path

import pytest

from dashboard.ui import access
from tests.browser_support import assert_no_exception, browser_page, open_page, require_chromium, screenshot, serve


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
