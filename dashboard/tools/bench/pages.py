"""The browser benchmark: ``python -m dashboard bench --pages [--database URL] [--only TITLE]``.

Headless Chromium (Playwright, Debian's ``/usr/bin/chromium``) over the real app, started on a
free loopback port over the database (``dashboard.tools.bench.load.app_server``), as the
anonymous admin who sees every page. For every page (``--only``: those whose title starts so):

- **sidebar, warm**: reached from the sidebar from another page once the caches are warm,
  ``--samples`` times (p50, p95);
- **full load**: the page's URL opened in a new tab of the same browser, ``--samples`` times
  (p50): the browser's cache is warm, the session new, the server's query cache warm;
- **timezone**: a change of the display timezone in the sidebar (every page follows it), to a
  zone the page was not shown in yet, from the choice (Enter, once the zone's name is typed) until
  the page settled;
- **interaction**: the page's own main control (``INTERACTIONS``: a breakdown, a filter, a view,
  a tab, a search), changed between two values ``--samples`` times: the first change (its data
  not read yet) and the p50 of the others.

A page has **settled** when the app says its script run is over and no element is still
loading (no skeleton, no spinner): what ``tests/browser_support.settle`` waits for. A
navigation counts once the new page's title is shown and it settled; a timezone change once
the URL carries the new zone and the page settled; an interaction once the control shows the
new value and, when it asked the server for a run (of the page or of its fragment), that run
is over and the page settled.
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from dashboard.core.errors import ConfigError
from dashboard.tools.bench.api import percentile
from dashboard.tools.bench.load import app_server
from dashboard.ui.access import PAGES, PageSpec

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 800}
SETTLE_MS = 60_000
TARGETS = {"sidebar": 0.5, "full": 1.5, "interaction": 0.5}  # seconds
ZONES = ("Europe/Berlin", "America/New_York")

# In every tab, before the app's own code: watch the app's websocket. Every message is a protobuf
# whose top-level fields are read here (no decoding beyond that): the browser asking for a run
# (BackMsg ``rerun_script``, field 11), and the server saying a run is over (ForwardMsg
# ``script_finished``, field 6, a status other than 2, FINISHED_EARLY_FOR_RERUN). ``waiting`` is
# true from a request until a run ends after it; a fast run can start and end within one frame
# of the page, so the page's own "running" flag alone would miss it.
WATCH_RUNS = """
window.__bench = {requests: 0, waiting: false};
const fields = (bytes, found) => {  // calls found(field, varint value or null) per top-level field
  let i = 0;
  const varint = () => {
    let value = 0, scale = 1, b;
    do { b = bytes[i++]; value += (b & 0x7f) * scale; scale *= 128; } while (b & 0x80);
    return value;
  };
  while (i < bytes.length) {
    const key = varint(), field = Math.floor(key / 8), wire = key % 8;
    if (wire === 0) found(field, varint());
    else if (wire === 2) { found(field, null); const length = varint(); i += length; }
    else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else return;
  }
};
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) {
    super(...args);
    this.addEventListener('message', (event) => {
      if (event.data instanceof ArrayBuffer) fields(new Uint8Array(event.data), (field, value) => {
        if (field === 6 && value !== 2) window.__bench.waiting = false;
      });
    });
  }
  send(data) {
    if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
      fields(new Uint8Array(data.buffer || data, data.byteOffset || 0, data.byteLength), (field) => {
        if (field === 11) { window.__bench.requests += 1; window.__bench.waiting = true; }
      });
    }
    return super.send(data);
  }
};
"""


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


def _timed(page, act: Callable[[], None], shown: Callable[[], None]) -> float:
    """Seconds from ``act()`` until ``shown()`` passes and, if ``act`` asked the server for a run
    (of the page or of a fragment), that run is over and the page settled."""
    requests = page.evaluate("window.__bench.requests")
    started = time.perf_counter()
    act()
    shown()
    if page.evaluate("window.__bench.requests") > requests:
        page.wait_for_function("!window.__bench.waiting", timeout=SETTLE_MS)
        settle(page)
    return time.perf_counter() - started


# --- each page's main control: (what is changed, the two values, how to set one) ------------


def _pick_option(label: str, area: str = "stMain") -> Callable:
    """A select box of the page (or of ``area``, e.g. the sidebar): open it, click the option
    ``value``; shown once the box shows it. A click that scrolled the box into view may only focus
    it: the arrow key opens its list then (and moves the highlight in a list already open)."""

    def pick(page, value: str) -> float:
        from playwright.sync_api import expect

        box = page.get_by_test_id(area).get_by_role("combobox", name=label, exact=True)
        return _timed(
            page,
            lambda: (box.click(), box.press("ArrowDown"), page.get_by_role("option", name=value, exact=True).click()),
            lambda: expect(box).to_have_value(value, timeout=SETTLE_MS),
        )

    return pick


def _press(label: str | None = None) -> Callable:
    """A segmented control (``label``: the one that holds the value) or tabs (None): click the
    value's button; shown once it is the chosen one. ``OFF`` + the value clicks the chosen value
    again, which clears a control that may be left empty."""

    def press(page, value: str) -> float:
        from playwright.sync_api import expect

        clear = value.startswith(OFF)
        value = value.removeprefix(OFF)
        main = page.get_by_test_id("stMain")
        if label is None:
            button, chosen = main.get_by_role("tab", name=value, exact=True).first, "aria-selected"
        else:
            group = main.get_by_test_id("stButtonGroup").filter(has_text=label).first
            button, chosen = group.get_by_role("radio", name=value, exact=True), "aria-checked"
        state = "false" if clear else "true"
        return _timed(page, button.click, lambda: expect(button).to_have_attribute(chosen, state, timeout=SETTLE_MS))

    return press


def _search(page, text: str) -> float:
    from playwright.sync_api import expect

    box = page.get_by_test_id("stMain").get_by_label("Email or name")
    return _timed(
        page,
        lambda: (box.fill(text), box.press("Enter")),
        lambda: expect(page).to_have_url(re.compile(f"q={re.escape(text)}"), timeout=SETTLE_MS),
    )


OFF = "off:"  # a value of ``_press``: the control cleared


@dataclass(frozen=True)
class Interaction:
    what: str
    values: tuple[str, str]  # changed to the second, then back to the first, and so on
    set_to: Callable[[object, str], float]  # (page, value) -> seconds until settled


INTERACTIONS = {
    "Overview": Interaction("period preset", ("Last 30 days", "Last 7 days"), _pick_option("Period", "stSidebar")),
    "CRM funnel": Interaction("breakdown", ("Plan", "Acquisition channel"), _pick_option("Break down by")),
    "Upsells": Interaction("group by", ("Recommendation type", "Service"), _press("Group by")),
    "Review moderation": Interaction("status filter", ("Waiting", "Published"), _press("Show")),
    "Follow-ups": Interaction("due filter", (OFF + "Past their target", "Past their target"), _press("Target")),
    "Customer lookup": Interaction("search", ("smith", "johnson"), _search),
    "Mechanic profiles": Interaction("specialty", ("Engine", "Brakes"), _pick_option("Specialty")),
    "Mechanic calendars & pricing": Interaction("view", ("Week", "Heatmaps"), _press("View")),
    "Emails": Interaction("tab", ("Outbox", "Failed emails"), _press()),
}


@dataclass
class PageTimes:
    title: str
    sidebar: list[float]
    full: list[float]
    timezone: float
    interaction: list[float]  # the first change, then the others


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
    page.keyboard.type(zone)  # the box filters its options as the name is typed, in the browser alone
    started = time.perf_counter()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile("tz=" + re.escape(zone).replace("/", "(/|%2F)")), timeout=SETTLE_MS)
    settle(page)
    return time.perf_counter() - started


def _interact(page, interaction: Interaction, samples: int) -> list[float]:
    """Change the control ``samples`` times, to its second value and back; leave it on the first."""
    first, second = interaction.values
    seconds = [interaction.set_to(page, second if i % 2 == 0 else first) for i in range(samples)]
    if samples % 2:
        interaction.set_to(page, first)
    return seconds


def _full_load(context, url: str, title: str) -> float:
    tab = context.new_page()
    try:
        started = time.perf_counter()
        tab.goto(url)
        _heading(tab, title).wait_for(timeout=SETTLE_MS)
        settle(tab)
        return time.perf_counter() - started
    finally:
        tab.close()


def chosen_pages(only: str | None) -> list[tuple[int, PageSpec]]:
    """The pages to measure (those whose title starts with ``only``), each with its position in the menu."""
    chosen = [(i, spec) for i, spec in enumerate(PAGES) if not only or spec.title.startswith(only)]
    if not chosen:
        raise ConfigError(f"no page's title starts with {only!r} (--only)")
    return chosen


def measure(base: str, samples: int, chosen: list[tuple[int, PageSpec]]) -> list[PageTimes]:
    from playwright.sync_api import sync_playwright

    titles = [p.title for p in PAGES]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT)  # one browser: new tabs share its cache
            context.add_init_script(WATCH_RUNS)
            page = context.new_page()
            page.goto(base)
            _heading(page, titles[0]).wait_for(timeout=SETTLE_MS * 3)
            settle(page)
            for title in titles:  # once each: the server's caches warm
                _navigate(page, title)
            results = []
            for i, spec in chosen:
                other = titles[(i + 1) % len(titles)]
                _navigate(page, spec.title)  # warm in this zone (the last page changed it)
                sidebar = []
                for _ in range(samples):
                    _navigate(page, other)
                    sidebar.append(_navigate(page, spec.title))
                interaction = _interact(page, INTERACTIONS[spec.title], samples)
                timezone = _change_zone(page, ZONES[i % 2])
                query = page.url.partition("?")[2]  # the same period and zone: the server's caches are warm
                url = f"{base}/{_url_path(spec.file)}?{query}"
                full = [_full_load(context, url, spec.title) for _ in range(samples)]
                results.append(PageTimes(spec.title, sidebar, full, timezone, interaction))
            return results
        finally:
            browser.close()


def format_table(results: list[PageTimes]) -> list[str]:
    width = max([len("page")] + [len(r.title) for r in results])
    what = max(len("interaction"), *(len(INTERACTIONS[r.title].what) for r in results))
    head = (
        f"{'page':<{width}}  {'sidebar p50 s':>13}  {'p95 s':>6}  {'full load p50 s':>15}  {'timezone s':>10}  "
        f"{'interaction':<{what}}  {'first s':>7}  {'again p50 s':>11}"
    )
    lines = [head]
    for r in results:
        again = f"{statistics.median(r.interaction[1:]):>11.2f}" if len(r.interaction) > 1 else f"{'—':>11}"
        lines.append(
            f"{r.title:<{width}}  {statistics.median(r.sidebar):>13.2f}  {percentile(r.sidebar, 0.95):>6.2f}  "
            f"{statistics.median(r.full):>15.2f}  {r.timezone:>10.2f}  "
            f"{INTERACTIONS[r.title].what:<{what}}  {r.interaction[0]:>7.2f}  {again}"
        )
    lines.append(
        f"targets: sidebar (warm) {TARGETS['sidebar']:g} s, full load {TARGETS['full']:g} s, "
        f"a timezone change or an interaction {TARGETS['interaction']:g} s"
    )
    return lines


def run(database_url: str, *, samples: int, only: str | None = None) -> list[str]:
    chosen = chosen_pages(only)
    with app_server(database_url) as base:
        return format_table(measure(base, samples, chosen))
