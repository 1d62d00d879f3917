"""The Review moderation page (and what a manager may see of it) with streamlit's AppTest on PostgreSQL;
the ``shop`` fixture is in conftest."""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from dashboard.core import schema as s
from dashboard.domain.reviews import moderation_required
from tests.factories import add_review
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

    at.segmented_control(key="show").set_value("hidden").run()
    assert "Hidden: Off topic" in text(at.markdown)
    at.button(key=f"restore_{waiting}").click().run()
    assert status_of(shop["engine"], waiting) == "published"

    at.toggle(key="moderate_all").set_value(True).run()
    with shop["engine"].connect() as conn:
        assert moderation_required(conn)


def test_bulk_publish_and_filters(shop):
    with shop["engine"].begin() as conn:
        second = add_review(conn, shop["rita"], 1, "pending", flags=["short_negative"], review_text="Bad")
    at = open_page(AppTest.from_file(str(APP), default_timeout=60).run(), "reviews.py")
    assert "2 reviews match; showing the oldest 2" in text(at.caption)
    at.multiselect(key="queue_flags").set_value(["short_negative"]).run()
    assert "1 review matches these filters" in text(at.caption)
    at.multiselect(key="queue_flags").set_value([]).run()
    at.button[0].click().run()  # Select all shown
    assert at.checkbox(key=f"select_{second}").value
    next(b for b in at.button if b.label == "Publish 2 selected").click().run()
    assert not at.exception and not at.error
    assert {status_of(shop["engine"], rid) for rid in (second, shop["waiting"])} == {"published"}
    assert "The queue is clear." in text(at.info)


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
