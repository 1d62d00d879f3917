"""The browser benchmark: ``python -m dashboard bench --pages [--database URL]``.

Headless Chromium (Playwright, Debian's ``/usr/bin/chromium``) over the real app, started on a
free loopback port over the database (``dashboard.tools.bench.load.app_server``), as the
anonymous admin who sees every page. For every page:

- **sidebar, warm**: reached from the sidebar from another page once the caches are warm,
  ``--samples`` times (p50, p95);
- **full load**: the page's URL opened in a new tab (the browser's cache is warm, the
  session new, the server's query cache warm);
- **interaction**: a change of the display timezone in the sidebar (every page follows it).

A page has **settled** when the app says its script run is over and no element is still
loading (no skeleton, no spinner): what ``tests/browser_support.settle`` waits for. A
navigation counts once the new page's title is shown and it settled; a timezone change once
the URL carries the new zone and the page settled.
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass

from dashboard.tools.bench.api import percentile
from dashboard.tools.bench.load import app_server
from dashboard.ui.access import PAGES

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}
SETTLE_MS = 60_000
TARGETS = {"sidebar": 0.5, "full": 1.5, "interaction": 0.5}  # seconds
ZONES = ("Europe/Berlin", "America/New_York")


def settle(page) -> None:
    """Wait until the script run is over and no element is still loading."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning", timeout=SETTLE_MS)
    for pending in ("stSkeleton", "stSpinner"):  # placeholders of elements still loading
        expect(page.get_by_test_id(pending)).to_have_count(0, timeout=SETTLE_MS)


def _heading(page, title: str):
    return page.get_by_role("heading", name=title, exact=True).first


def _url_path(file: str) -> str:
    return "" if file == "overview.py" else file.removesuffix(".py")


@dataclass
class PageTimes:
    title: str
    sidebar: list[float]
    full: float
    interaction: float


def _navigate(page, title: str) -> float:
    from playwright.sync_api import expect

    started = time.perf_counter()
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    expect(_heading(page, title)).to_be_visible(timeout=SETTLE_MS)
    settle(page)
    return time.perf_counter() - started


def _change_zone(page, zone: str) -> float:
    from playwright.sync_api import expect

    box = page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").filter(has_text="Display timezone")
    box.click()
    started = time.perf_counter()
    page.keyboard.type(zone)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile("tz=" + re.escape(zone).replace("/", "(/|%2F)")), timeout=SETTLE_MS)
    settle(page)
    return time.perf_counter() - started


def measure(base: str, samples: int) -> list[PageTimes]:
    from playwright.sync_api import sync_playwright

    titles = [p.title for p in PAGES]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(base)
            _heading(page, titles[0]).wait_for(timeout=SETTLE_MS * 3)
            settle(page)
            for title in titles:  # once each: the server's caches warm
                _navigate(page, title)
            results = []
            for i, spec in enumerate(PAGES):
                other = titles[(i + 1) % len(titles)]
                sidebar = []
                for _ in range(samples):
                    _navigate(page, other)
                    sidebar.append(_navigate(page, spec.title))
                interaction = _change_zone(page, ZONES[i % 2])
                tab = browser.new_page(viewport=VIEWPORT)
                query = page.url.partition("?")[2]  # the same period and zone: the server's caches are warm
                started = time.perf_counter()
                tab.goto(f"{base}/{_url_path(spec.file)}?{query}")
                _heading(tab, spec.title).wait_for(timeout=SETTLE_MS)
                settle(tab)
                full = time.perf_counter() - started
                tab.close()
                results.append(PageTimes(spec.title, sidebar, full, interaction))
            return results
        finally:
            browser.close()


def format_table(results: list[PageTimes]) -> list[str]:
    width = max([len("page")] + [len(r.title) for r in results])
    head = f"{'page':<{width}}  {'sidebar p50 s':>13}  {'p95 s':>6}  {'full load s':>11}  {'interaction s':>13}"
    lines = [head]
    for r in results:
        lines.append(
            f"{r.title:<{width}}  {statistics.median(r.sidebar):>13.2f}  {percentile(r.sidebar, 0.95):>6.2f}  "
            f"{r.full:>11.2f}  {r.interaction:>13.2f}"
        )
    lines.append(
        f"targets: sidebar (warm) {TARGETS['sidebar']:g} s, full load {TARGETS['full']:g} s, "
        f"interaction (a timezone change) {TARGETS['interaction']:g} s"
    )
    return lines


def run(database_url: str, *, samples: int) -> list[str]:
    with app_server(database_url) as base:
        return format_table(measure(base, samples))
