"""The Mechanic profiles page with streamlit's AppTest on PostgreSQL (the ``shop`` fixture is in conftest)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.domain.reviews import refresh_aggregates
from queries import mechanics as mq
from tests.factories import add_mechanic
from tests.page_support import APP, open_page


def test_leaderboard_filters_by_specialty(shop):
    at = open_page(AppTest.from_file(str(APP), default_timeout=60).run(), "mechanics.py")
    assert not at.exception
    board = at.dataframe[0].value
    assert list(board["display_name"]) == ["Rita <i>Wrench</i>", "Bo"]
    assert board.mechanic.tolist() == [
        f"mechanics?mechanic={shop['rita']}#Rita <i>Wrench</i>",  # the name shown, linking to the profile
        f"mechanics?mechanic={board.user_id.iloc[1]}#Bo",
    ]
    copy = " ".join(c.value for c in at.caption)
    assert "All time, whatever the period" in copy and "All 2 active mechanics" in copy
    assert "Bayesian" not in copy and "×" not in copy
    at.selectbox(key="specialty").set_value("engine").run()
    assert list(at.dataframe[0].value["display_name"]) == ["Bo"]


def test_the_leaderboard_holds_every_active_mechanic(shop):
    with shop["engine"].begin() as conn:
        for n in range(60):
            add_mechanic(conn, f"Extra {n:02d}")
        refresh_aggregates(conn)
    with shop["engine"].connect() as conn:
        assert len(mq.leaderboard(conn)) == 62
    at = open_page(AppTest.from_file(str(APP), default_timeout=60).run(), "mechanics.py")
    assert len(at.dataframe[0].value) == 62


def test_a_link_opens_the_profile_and_the_author_links_to_the_customer(shop):
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["mechanic"] = str(shop["rita"])
    at = open_page(at.run(), "mechanics.py")
    assert not at.exception
    assert [h.value for h in at.header] == ["Rita \\<i\\>Wrench\\</i\\>"]
    assert {m.label for m in at.metric} >= {"Rating", "Ranking score", "Median response"}
    reviews = [m.value for m in at.markdown if "by [" in m.value]
    assert reviews and all("](customers?customer=" in text for text in reviews)


@pytest.mark.parametrize("mechanic", ["not-an-id", "00000000-0000-0000-0000-000000000000", "<b>x</b>' OR 1=1"])
def test_a_link_to_an_unknown_or_malformed_mechanic_says_so(shop, mechanic):
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params["mechanic"] = mechanic
    at = open_page(at.run(), "mechanics.py")
    assert not at.exception and not at.header
    assert "This link does not name a mechanic" in at.info[-1].value
