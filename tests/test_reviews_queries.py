"""The moderation queue and the review lists on small hand-computed fixtures (both backends)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from dashboard.core import schema as s
from dashboard.core.period import Period
from dashboard.domain import overview as rollups
from dashboard.ui.paging import Page, page_of
from queries import reviews as rq
from tests.factories import NOW, add_mechanic, add_review, add_user, read, tables_read

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


def test_paging_counts_and_ranges(engine):
    """The page of rows, the count and "N–M of K" at the edges: empty, exactly one page, a last partial page."""
    size = 3

    def page(number, **filters):
        total = int(read(engine, rq.queue_size, **filters)["reviews"].iloc[0])
        at, notice = page_of(str(number), total, size)
        rows = read(engine, rq.moderation_queue, limit=size, offset=at.offset, **filters)
        return at.range_text(), list(rows["id"]), notice

    empty = read(engine, rq.queue_size)
    assert int(empty["reviews"].iloc[0]) == 0 and pd.isna(empty["oldest"].iloc[0])
    assert page(1) == ("0 of 0", [], None)
    assert page(2)[2] == "There is no page 2 (the list has 1 page): showing the last."

    with engine.begin() as conn:
        rita = add_mechanic(conn, "Rita")
        waiting = [
            add_review(conn, rita, 4, "pending", created_at=NOW - (10 - i) * DAY, flags=["review_burst"])
            for i in range(7)
        ]
        add_review(conn, rita, 5, "published", created_at=NOW - 20 * DAY)
    sizes = read(engine, rq.queue_size)
    assert int(sizes["reviews"].iloc[0]) == 7
    assert pd.Timestamp(sizes["oldest"].iloc[0]) == pd.Timestamp(NOW - 10 * DAY)
    assert page(1) == ("1–3 of 7", waiting[:3], None)
    assert page(2) == ("4–6 of 7", waiting[3:6], None)
    assert page(3) == ("7 of 7", waiting[6:], None)  # the last page, partial
    assert page(4) == ("7 of 7", waiting[6:], "There is no page 4 (the list has 3 pages): showing the last.")
    assert page(1, status="published")[0] == "1 of 1"
    with engine.begin() as conn:
        for _ in range(2):
            add_review(conn, rita, 3, "pending", created_at=NOW)
    assert page(3) == ("7–9 of 9", page(3)[1], None)  # exactly full pages
    assert int(read(engine, rq.queue_size, flags=["review_burst"])["reviews"].iloc[0]) == 7
    assert page(1, ratings=[3]) == ("1–2 of 2", page(1, ratings=[3])[1], None)
    for bad in (dict(offset=-1), dict(limit=0), dict(limit=10_000), dict(offset=10**12)):
        with pytest.raises(ValueError):
            read(engine, rq.moderation_queue, **bad)


def utc(*args) -> dt.datetime:
    return dt.datetime(2026, *args, tzinfo=dt.UTC)


def test_published_reviews_are_counted_like_overviews_reviews_published(engine):
    """Published reviews filtered by nothing but the period: Overview's "reviews published", from
    its roll-up on PostgreSQL once built. 10-11 March 2026 is [03-10 00:00Z, 03-12 00:00Z) in UTC
    and [03-09 18:30Z, 03-11 18:30Z) in Asia/Kolkata (+5:30)."""
    with engine.begin() as conn:
        rita = add_mechanic(conn, "Rita")
        for rating, created in ((5, utc(3, 9, 18, 20)), (4, utc(3, 10, 0, 5)), (2, utc(3, 10, 18, 29))):
            add_review(conn, rita, rating, "published", created_at=created)
        add_review(conn, rita, 5, "published", created_at=utc(3, 11, 18, 40))
        waiting = add_review(conn, rita, 3, "pending", created_at=utc(3, 10, 11))
        add_review(conn, rita, 1, "hidden", created_at=utc(3, 10, 12))
    days = (dt.date(2026, 3, 10), dt.date(2026, 3, 11))

    def sizes():
        found = {
            name: read(engine, rq.queue_size, status="published", **filters).iloc[0]
            for name, filters in (
                ("all", {}),
                ("utc", {"period": Period(*days, "UTC")}),
                ("kolkata", {"period": Period(*days, "Asia/Kolkata")}),
                ("fives", {"ratings": [5]}),  # another filter: counted from the reviews
            )
        }
        return {name: (int(row.reviews), pd.Timestamp(row.oldest)) for name, row in found.items()}

    expected = {
        "all": (4, pd.Timestamp(utc(3, 9, 18, 20))),
        "utc": (3, pd.Timestamp(utc(3, 10, 0, 5))),
        "kolkata": (2, pd.Timestamp(utc(3, 10, 0, 5))),
        "fives": (2, pd.Timestamp(utc(3, 9, 18, 20))),
    }
    assert sizes() == expected  # from the raw rows: no roll-up built
    rollups.refresh(engine, rebuild=True)
    with tables_read(engine, s.kpi_buckets) as roll_ups:
        assert sizes() == expected
    assert roll_ups == ({"kpi_buckets"} if engine.dialect.name == "postgresql" else set())
    with engine.begin() as conn:  # a moderator's decision written by another tool
        conn.execute(s.mechanic_reviews.update().where(s.mechanic_reviews.c.id == waiting).values(status="published"))
    changed = {**expected, "all": (5, expected["all"][1]), "utc": (4, expected["utc"][1])}
    changed["kolkata"] = (3, expected["kolkata"][1])
    assert sizes() == changed
    assert list(read(engine, rq.moderation_queue, status="published")["matching"]) == [5] * 5
    rollups.refresh(engine)
    assert sizes() == changed


def test_page_numbers_from_a_link():
    assert page_of(None, 45, 20) == (Page(1, 20, 45), None)
    assert page_of("2", 45, 20) == (Page(2, 20, 45), None)
    assert Page(2, 20, 45).range_text() == "21–40 of 45" and Page(3, 20, 45).range_text() == "41–45 of 45"
    assert Page(1, 20, 20).range_text() == "1–20 of 20" and not Page(1, 20, 20).has_next
    assert Page(1, 20, 29_775).range_text() == "1–20 of 29,775" and Page(1, 20, 29_775).pages == 1489
    assert Page(1, 20, 29_775).range_text("review") == "1–20 of 29,775 reviews"
    assert (
        Page(1, 20, 1).range_text("review") == "1 of 1 review"
        and Page(1, 20, 0).range_text("review") == "0 of 0 reviews"
    )
    for bad in ("0", "-1", "two", "1.5", " ", "9" * 30, "\x00"):
        page, notice = page_of(bad, 45, 20)
        assert page.number == 1 and "is not a page number" in notice, bad
