"""The moderation queue and the review lists on small hand-computed fixtures (both backends)."""

from __future__ import annotations

import datetime as dt

import pytest

from dashboard.core.period import Period
from queries import reviews as rq
from tests.factories import NOW, add_mechanic, add_review, add_user, read

DAY = dt.timedelta(days=1)


def test_moderation_queue_is_oldest_first_with_filters(engine):
    with engine.begin() as conn:
        rita, bo = add_mechanic(conn, "Rita"), add_mechanic(conn, "Bo")
        customer = add_user(conn, "Cal <script>")
        old = add_review(
            conn,
            rita,
            1,
            "pending",
            created_at=NOW - 3 * DAY,
            flags=["short_negative"],
            customer_id=customer,
            review_text="Bad",
        )
        mid = add_review(conn, bo, 4, "pending", created_at=NOW - 2 * DAY, flags=["link_or_promo", "profanity"])
        new = add_review(conn, rita, 5, "pending", created_at=NOW - DAY, flags=[])
        add_review(conn, rita, 2, "published", created_at=NOW - 5 * DAY)
    queue = read(engine, rq.moderation_queue)
    assert list(queue["id"]) == [old, mid, new]
    assert list(queue["matching"]) == [3, 3, 3]
    first = queue.iloc[0]
    assert (first["mechanic_name"], first["customer_name"], first["review_text"]) == ("Rita", "Cal <script>", "Bad")
    assert first["customer_email"].endswith("@example.com") and first["flags"] == ["short_negative"]
    assert queue.iloc[2]["flags"] == [] and queue.iloc[2]["review_text"] is None  # missing text is None, not NaN

    def ids(**filters):
        return list(read(engine, rq.moderation_queue, **filters)["id"])

    assert ids(flags=["profanity", "short_negative"]) == [old, mid]
    assert ids(flags=["personal_data"]) == []
    assert ids(ratings=[4, 5]) == [mid, new]
    assert ids(oldest_first=False) == [new, mid, old]
    assert ids(mechanic_id=rita) == [old, new]
    today = (NOW - DAY).date()
    assert ids(period=Period(today, today, "UTC")) == [new]
    assert ids(limit=1) == [old] and list(read(engine, rq.moderation_queue, limit=1)["matching"]) == [3]
    assert len(ids(status="published")) == 1
    for bad in (dict(flags=["spam"]), dict(ratings=[6]), dict(status="deleted")):
        with pytest.raises(ValueError, match="unknown"):
            ids(**bad)

    counts = read(engine, rq.queue_flag_counts)
    assert dict(zip(counts["flag"], counts["reviews"])) == {
        "personal_data": 0,
        "link_or_promo": 1,
        "profanity": 1,
        "short_negative": 1,
        "duplicate_text": 0,
        "review_burst": 0,
    }


def test_recent_reviews_of_a_customer_and_a_mechanic(engine):
    with engine.begin() as conn:
        rita, bo = add_mechanic(conn, "Rita"), add_mechanic(conn, "Bo")
        cal = add_user(conn, "Cal")
        first = add_review(conn, rita, 5, created_at=NOW - 2 * DAY, customer_id=cal)
        second = add_review(conn, bo, 3, "hidden", created_at=NOW - DAY, customer_id=cal)
        other = add_review(conn, rita, 4, "pending", created_at=NOW)
    assert list(read(engine, rq.recent_reviews, customer_id=cal)["id"]) == [second, first]
    assert list(read(engine, rq.recent_reviews, mechanic_id=rita)["id"]) == [other, first]
    assert list(read(engine, rq.recent_reviews, mechanic_id=rita, statuses=("published", "hidden"))["id"]) == [first]
    assert list(read(engine, rq.recent_reviews, customer_id=cal, limit=1)["id"]) == [second]
    with pytest.raises(ValueError):
        read(engine, rq.recent_reviews)


def test_empty_database_gives_empty_queue_with_columns(engine):
    assert read(engine, rq.moderation_queue).empty
    assert list(read(engine, rq.moderation_queue).columns) == [*rq.REVIEW_COLUMNS, "matching"]
