"""The Mechanic profiles page with streamlit's AppTest on PostgreSQL (the ``shop`` fixture is in conftest)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.page_support import APP, open_page


def test_leaderboard_filters_by_specialty(shop):
    at = open_page(AppTest.from_file(str(APP), default_timeout=60).run(), "mechanics.py")
    assert not at.exception
    board = at.dataframe[0].value
    assert list(board["display_name"]) == ["Rita <i>Wrench</i>", "Bo"]
    at.selectbox(key="specialty").set_value("engine").run()
    assert list(at.dataframe[0].value["display_name"]) == ["Bo"]
