"""The Review moderation page (and what a manager may see of it) with streamlit's AppTest on PostgreSQL;
the ``shop`` fixture is in conftest."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from dashboard.core import schema as s
from dashboard.domain.reviews import moderation_required
from tests.factories import NOW, add_review
from tests.page_support import APP, open_page


def text(elements) -> str:
    return re.sub(r"\\(.)", r"\1", "\n".join(str(element.value) for element in elements))


def html(at: AppTest) -> str:
    return "\n".join(element.proto.body for element in at.html)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def status_of(engine, review_id) -> str:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(s.mechanic_reviews.c.status).where(s.mechanic_reviews.c.id == review_id)
        ).scalar_one()


def test_publishing_from_the_queue_changes_the_profile(shop):
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    profile = {"view": "Profile", "mechanic": str(shop["rita"])}
    at = open_page(at, "mechanics.py", **profile)
    assert not at.exception
    assert metric(at, "Rating") == "5.00 ★"
    assert "Rita \\<i\\>Wrench\\</i\\>" in [h.value for h in at.header]  # escaped, shown as text

    at = open_page(at, "reviews.py")
    assert not at.exception
    card = html(at)
    assert "<script>" not in card and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in card
    assert '<mark class="flag-personal_data" title="Personal data">07700 900123</mark>' in card
    assert "**bold**" in card  # Markdown is not interpreted either
    assert "Cal \\<b\\>Customer\\</b\\>" in "\n".join(m.value for m in at.markdown)
    assert ":red-badge[:material/flag: Personal data]" in "\n".join(m.value for m in at.markdown)
    assert at.selectbox(key=f"reason_{shop['waiting']}").value == "personal_information"  # suggested
    assert "Moderation setting" in [e.label for e in at.expander]

    at.button(key=f"publish_{shop['waiting']}").click().run()
    assert not at.exception and not at.error
    assert status_of(shop["engine"], shop["waiting"]) == "published"
    assert "The queue is clear." in text(at.info)

    at = open_page(at, "mechanics.py", **profile)
    assert metric(at, "Rating") == "4.00 ★"  # (5 + 3) / 2, the cache was cleared


def test_hide_with_a_reason_writes_an_audit_row(shop):
    at = open_page(AppTest.from_file(str(APP), default_timeout=60).run(), "reviews.py")
    waiting = shop["waiting"]
    at.selectbox(key=f"reason_{waiting}").set_value("off_topic").run()
    at.button(key=f"hide_reason_{waiting}").click().run()
    assert not at.exception and not at.error
    assert status_of(shop["engine"], waiting) == "hidden"
    with shop["engine"].connect() as conn:
        audit = conn.execute(sa.select(s.audit_log)).mappings().one()
    assert (audit["action"], audit["actor_role"], audit["reason"]) == ("review.hide", "admin", "off_topic")
    assert json.loads(json.dumps(audit["after"])) == {"status": "hidden", "hidden_reason": "off_topic"}

    at.segmented_control(key="status_pick").set_value("hidden").run()
    assert at.query_params["status"] == "hidden"  # the link contract
    assert "Hidden: Off topic" in text(at.markdown)
    at.button(key=f"restore_{waiting}").click().run()
    assert status_of(shop["engine"], waiting) == "published"

    at.session_state["moderation_setting"] = True  # the expander open
    at.run()
    at.toggle(key="moderate_all").set_value(True).run()
    with shop["engine"].connect() as conn:
        assert moderation_required(conn)


def test_bulk_publish_and_filters(shop):
    with shop["engine"].begin() as conn:
        second = add_review(conn, shop["rita"], 1, "pending", flags=["short_negative"], review_text="Bad")
    at = open_page(AppTest.from_file(str(APP), default_timeout=60).run(), "reviews.py")
    assert "**1–2 of 2 reviews**" in text(at.markdown)
    at.multiselect(key="flag_pick").set_value(["short_negative"]).run()
    assert "**1 of 1 review**" in text(at.markdown) and at.query_params["flag"] == "short_negative"
    at.multiselect(key="flag_pick").set_value([]).run()
    next(b for b in at.button if b.label == "Select all shown").click().run()
    assert at.checkbox(key=f"select_{second}").value
    popover = next(p for p in at.get("popover") if p.proto.popover.label == "Publish 2 selected")
    assert "**2 reviews** become public on their mechanics' profiles" in text(popover.markdown)
    assert {status_of(shop["engine"], rid) for rid in (second, shop["waiting"])} == {"pending"}  # not yet
    at.button(key="bulk_publish").click().run()
    assert not at.exception and not at.error
    assert {status_of(shop["engine"], rid) for rid in (second, shop["waiting"])} == {"published"}
    assert "The queue is clear." in text(at.info) and "Published 2 reviews." in text(at.markdown)
    at.button(key="decision_notice_undo").click().run()  # a bulk decision is undone as one
    assert {status_of(shop["engine"], rid) for rid in (second, shop["waiting"])} == {"pending"}
    assert "Undone: 2 reviews back as before." in text(at.markdown) and "**1–2 of 2 reviews**" in text(at.markdown)


@pytest.fixture
def staff_login(shop, oidc_secrets):
    with shop["engine"].begin() as conn:
        conn.execute(
            s.staff_roles.insert(),
            [{"email": "sam@example.com", "role": "support"}, {"email": "max@example.com", "role": "manager"}],
        )
    return shop


def test_support_moderates_and_a_manager_only_reads_profiles(staff_login):
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.user = {"is_logged_in": True, "email": "sam@example.com", "email_verified": True}
    at = open_page(at.run(), "reviews.py")
    assert not at.exception
    assert "Moderation setting" not in [e.label for e in at.expander]  # admins only
    at.button(key=f"publish_{staff_login['waiting']}").click().run()
    assert status_of(staff_login["engine"], staff_login["waiting"]) == "published"

    at = AppTest.from_file(str(APP), default_timeout=60)
    at.user = {"is_logged_in": True, "email": "max@example.com", "email_verified": True}
    at.run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("../pages/reviews.py")
    at = open_page(at, "mechanics.py")
    assert not at.exception and len(at.dataframe) == 1
    assert not [b for b in at.button if b.label in ("Publish", "Hide")]


# --- paging, suggested actions, undo, keyboard, bad links ----------------------------------


def open_reviews(**params) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    for name, value in params.items():
        at.query_params[name] = value
    return open_page(at, "reviews.py")


def cards(at: AppTest) -> list[str]:
    """The review ids of the cards shown, top to bottom."""
    return [key.removeprefix("publish_") for key in (b.key or "" for b in at.button) if key.startswith("publish_")]


def button(at: AppTest, key: str):
    return at.button(key=key).proto


def test_the_queue_pages_through_any_backlog_oldest_first(shop):
    engine = shop["engine"]
    with engine.begin() as conn:  # 44 more waiting, each older than the shop's (written at NOW)
        older = [
            add_review(conn, shop["rita"], 4, "pending", flags=["review_burst"], created_at=NOW - dt.timedelta(hours=i))
            for i in range(44, 0, -1)
        ]
    at = open_reviews()
    assert not at.exception
    assert "**1–10 of 45 reviews**" in text(at.markdown) and cards(at) == [str(r) for r in older[:10]]
    assert "Waiting now, oldest first; the oldest has waited 1d 20h." in text(at.caption)
    assert "Any date: the sidebar" in text(at.caption)  # the sidebar period is not used, and it says so
    assert ":orange-badge[:material/schedule: Waiting 1d 20h]" in text(at.markdown)  # the age on each card
    previous = next(b for b in at.button if b.label == "Previous page")
    assert previous.proto.disabled
    next(b for b in at.button if b.label == "Next page").click().run()
    assert "**11–20 of 45 reviews**" in text(at.markdown) and at.query_params["page"] == "2"
    assert cards(at) == [str(r) for r in older[10:20]]
    at = open_reviews(page="5")
    assert "**41–45 of 45 reviews**" in text(at.markdown) and cards(at)[-1] == str(shop["waiting"])
    assert next(b for b in at.button if b.label == "Next page").proto.disabled

    at = open_reviews(page="99")  # a link past the end: the last page, and why
    assert "There is no page 99 (the list has 5 pages): showing the last." in text(at.warning)
    assert (
        "**41–45 of 45 reviews**" in text(at.markdown) and at.query_params["page"] == "5"
    )  # the URL says what is shown
    for bad in ("abc", "-1", "0", "1e9", "9" * 40):
        at = open_reviews(page=bad)
        assert not at.exception
        assert "is not a page number: showing page 1." in text(at.warning), bad
        assert "**1–10 of 45 reviews**" in text(at.markdown)


def test_the_suggested_action_is_the_primary_button(shop):
    engine = shop["engine"]
    with engine.begin() as conn:
        rude = add_review(conn, shop["rita"], 2, "pending", flags=["profanity"], review_text="What a load of shit")
        short = add_review(conn, shop["rita"], 1, "pending", flags=["short_negative"], review_text="Bad")
        repeat = add_review(
            conn, shop["rita"], 5, "pending", flags=["duplicate_text"], review_text="Great job, thanks!"
        )
    at = open_reviews()
    personal = str(shop["waiting"])
    for review, primary, reason in [
        (personal, "hide", "personal_information"),
        (rude, "hide", "profanity"),
        (short, "publish", None),
        (repeat, "publish", "not_genuine_experience"),
    ]:
        kinds = {
            action: button(at, key).type
            for action, key in (("publish", f"publish_{review}"), ("hide", f"hide_reason_{review}"))
        }
        assert kinds == {primary: "primary", ({"hide", "publish"} - {primary}).pop(): "secondary"}, review
        assert at.selectbox(key=f"reason_{review}").value == reason
    assert button(at, f"hide_reason_{short}").disabled  # no reason suggested for a short negative: pick one
    assert "Profanity" in at.selectbox(key=f"reason_{rude}").options


def test_undo_takes_a_decision_back_and_refreshes_the_ratings(shop):
    engine, waiting = shop["engine"], shop["waiting"]
    at = open_reviews()
    at.button(key=f"publish_{waiting}").click().run()
    assert status_of(engine, waiting) == "published" and "Published 1 review." in text(at.markdown)
    with engine.connect() as conn:
        rating = conn.execute(sa.select(s.mechanics.c.avg_rating).where(s.mechanics.c.user_id == shop["rita"]))
        assert float(rating.scalar_one()) == 4.0  # (5 + 3) / 2
    assert button(at, "decision_notice_undo").shortcut == "u"
    at.button(key="decision_notice_undo").click().run()
    assert not at.exception and not at.error
    assert status_of(engine, waiting) == "pending" and "Undone: 1 review back as before." in text(at.markdown)
    assert cards(at) == [str(waiting)]  # back in the queue
    with engine.connect() as conn:
        rating = conn.execute(sa.select(s.mechanics.c.avg_rating).where(s.mechanics.c.user_id == shop["rita"]))
        assert float(rating.scalar_one()) == 5.0
        actions = [a for (a,) in conn.execute(sa.select(s.audit_log.c.action).order_by(s.audit_log.c.created_at))]
    assert actions == ["review.publish", "review.undo"]

    at.button(key=f"hide_reason_{waiting}").click().run()  # hidden with the suggested reason
    assert "Hid 1 review." in text(at.markdown) and status_of(engine, waiting) == "hidden"
    with engine.begin() as conn:  # someone restores it before the undo
        conn.execute(
            s.mechanic_reviews.update()
            .where(s.mechanic_reviews.c.id == waiting)
            .values(status="published", hidden_reason=None, moderated_at=sa.func.now())
        )
    at.button(key="decision_notice_undo").click().run()
    assert "was changed" in text(at.error) and status_of(engine, waiting) == "published"  # refused, nothing written


def test_keys_act_on_the_focused_review_only(shop):
    with shop["engine"].begin() as conn:
        older = add_review(
            conn, shop["rita"], 2, "pending", flags=["short_negative"], created_at=NOW - dt.timedelta(hours=3)
        )
    at = open_reviews()
    first, second = str(older), str(shop["waiting"])
    assert cards(at) == [first, second]
    assert (button(at, "review_focus_next").shortcut, button(at, "review_focus_previous").shortcut) == ("j", "k")
    assert (button(at, f"publish_{first}").shortcut, button(at, f"hide_reason_{first}").shortcut) == ("p", "h")
    assert (button(at, f"publish_{second}").shortcut, button(at, f"hide_reason_{second}").shortcut) == ("", "")
    assert f".st-key-review_{first} {{ outline" in html(at)  # the focus ring
    at.button(key="review_focus_next").click().run()  # J
    assert button(at, f"publish_{first}").shortcut == "" and button(at, f"hide_reason_{second}").shortcut == "h"
    assert f".st-key-review_{second} {{ outline" in html(at)
    at.button(key="review_focus_next").click().run()  # J on the last: stays (one page only)
    assert button(at, f"publish_{second}").shortcut == "p"
    at.button(key="review_focus_previous").click().run()  # K
    assert button(at, f"publish_{first}").shortcut == "p"
    at.button(key=f"publish_{first}").click().run()  # P: published, the focus moves on to the next review
    assert status_of(shop["engine"], older) == "published"
    assert button(at, f"publish_{second}").shortcut == "p"


def test_unknown_link_parameters_say_so_and_show_the_waiting_queue(shop):
    at = open_reviews(status="<b>deleted</b>", flag="spam")
    assert not at.exception
    warnings = text(at.warning)
    assert "The link's status '<b>deleted</b>' is not one of pending, published or hidden" in warnings
    assert "The link's flag 'spam' is not a flag reviews get: left out." in warnings
    assert "<b>" not in "\n".join(str(w.value) for w in at.warning)  # escaped
    assert cards(at) == [str(shop["waiting"])]
    assert "status" not in at.query_params and "flag" not in at.query_params  # taken out of the URL

    at = open_reviews(status="pend\x00ing", flag="profanity'; DROP TABLE mechanic_reviews; --")
    assert not at.exception and cards(at) == [str(shop["waiting"])]
    assert "is not one of pending, published or hidden" in text(at.warning)
    assert "is not a flag reviews get" in text(at.warning)

    at = open_reviews(status="hidden")
    assert at.segmented_control(key="status_pick").value == "hidden"
    assert "No hidden reviews yet." in text(at.info)
    at = open_reviews(flag="personal_data")
    assert at.multiselect(key="flag_pick").value == ["personal_data"] and cards(at) == [str(shop["waiting"])]
    at = open_reviews(flag="short_negative")
    assert cards(at) == [] and "No waiting reviews match these filters." in text(at.info)
