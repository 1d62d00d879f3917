"""User text is inert everywhere: Markdown (escaped, and no auto-links), badges and plotly
labels, hovers and legends, checked in the helpers and in a real browser."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px

from dashboard.ui import components as ui
from tests.browser_support import browser_page, require_chromium, serve, settle
from tests.factories import HOSTILE


def test_escaped_text_breaks_every_address_markdown_would_link():
    escaped = [ui.escape_markdown(text) for text in HOSTILE[1:4]]
    assert escaped == [
        "call www\u2060\\.evil\\.example/b now",
        "see https\\:\u2060//evil\\.example/c",
        "write to boss@\u2060evil\\.example",
    ]
    assert ui.escape_markdown("WWW.Example.com") == "WWW\u2060\\.Example\\.com"
    assert ui.escape_markdown("no address here") == "no address here"


def test_figure_text_is_escaped_and_numbers_are_left_alone():
    frame = pd.DataFrame({"group": [HOSTILE[0], "B&B"], "value": [1, 2]})
    fig = px.bar(frame, x="value", y="group", color="group", custom_data=["group"])
    fig.update_yaxes(categoryorder="array", categoryarray=[HOSTILE[0], "B&B"])
    ui.inert_figure(fig)
    first, second = fig.data
    assert first.name == '&lt;a href="https://evil.example/a"&gt;Ford&lt;/a&gt;'
    assert tuple(first.y) == (first.name,) and first.customdata.tolist() == [[first.name]]
    assert second.name == "B&amp;B" and tuple(second.y) == ("B&amp;B",)
    assert fig.layout.yaxis.categoryarray == (first.name, "B&amp;B")
    assert np.asarray(first.x).tolist() == [1]


def test_no_user_text_becomes_a_link_or_markup_in_the_browser(tmp_path):
    require_chromium()
    with serve(tmp_path / "unused.duckdb", script="tests/inert_text_page.py") as url, browser_page() as page:
        page.goto(url)
        page.get_by_text("Customer wrote:").first.wait_for(timeout=60_000)
        settle(page)
        page.locator(".js-plotly-plot").first.wait_for()
        links = page.eval_on_selector_all(
            "a", "els => els.map(a => a.getAttribute('href') || a.getAttribute('xlink:href') || '')"
        )
        assert not [href for href in links if "evil" in href or "mailto" in href]
        assert page.locator("b", has_text="x").count() == 0 and page.locator("strong", has_text="bold").count() == 0
        body = page.locator("body").inner_text().replace("\u2060", "")
        for text in HOSTILE[1:4]:
            assert text in body  # reads as typed
        chart = page.locator(".js-plotly-plot").first.inner_text()
        assert '<a href="https://evil.example/a">Ford</a>' in chart  # drawn as text, not as a link
