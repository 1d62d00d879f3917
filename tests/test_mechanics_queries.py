"""Leaderboard, profile, response-time and public-profile queries of mechanics on small
hand-computed fixtures (both backends)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from dashboard.core import schema as s
from dashboard.core.period import Period
from dashboard.domain.reviews import bayesian_rating, refresh_aggregates
from queries import mechanics as mq
from tests.factories import NOW, add_mechanic, add_review, add_session, add_user, add_user_id, read

DAY = dt.timedelta(days=1)


@pytest.fixture
def board(engine):
    """Rita: 5, 4 (4.50 over 2, plus a hidden 1); Bo: 5 (5.00 over 1); Cy: 4, 4, 4, 3 (3.75 over 4);
    Dee: none; Old: inactive, 5, 5, 5 (not ranked, but its reviews count in the mean).

    C = (9 + 5 + 15 + 15) / (2 + 1 + 4 + 3) = 4.4. Bayesian (m = 10): Bo (44 + 5)/11 = 4.4545,
    Rita (44 + 9)/12 = 4.4167, Dee 44/10 = 4.4, Cy (44 + 15)/14 = 4.2143.
    """
    with engine.begin() as conn:
        ids = {
            "rita": add_mechanic(
                conn,
                "Rita",
                specialties=["brakes", "electrical"],
                bio="Brakes <b>expert</b>",
                years_experience=12,
                response_sla_minutes=10,
            ),
            "bo": add_mechanic(conn, "Bo", specialties=["engine"]),
            "cy": add_mechanic(conn, "Cy", specialties=["brakes"]),
            "dee": add_mechanic(conn, "Dee"),  # no specialties listed
            "old": add_mechanic(conn, "Old", is_active=False),
        }
        for name, ratings in {"rita": (5, 4), "bo": (5,), "cy": (4, 4, 4, 3), "old": (5, 5, 5)}.items():
            for rating in ratings:
                add_review(conn, ids[name], rating)
        add_review(conn, ids["rita"], 1, "hidden")
        refresh_aggregates(conn)
    return ids


def test_leaderboard_ranks_by_bayesian_rating(engine, board):
    frame = read(engine, mq.leaderboard)
    assert list(frame["display_name"]) == ["Bo", "Rita", "Dee", "Cy"]
    assert list(frame["rank"]) == [1, 2, 3, 4]
    assert list(frame["bayesian_rating"]) == pytest.approx([49 / 11, 53 / 12, 4.4, 59 / 14])
    assert list(frame["avg_rating"]) == [5.0, 4.5, 0.0, 3.75]
    assert list(frame["total_reviews"]) == [1, 2, 0, 4]
    assert list(frame["global_mean"]) == pytest.approx([4.4] * 4)
    assert list(frame["specialties"]) == [["engine"], ["brakes", "electrical"], [], ["brakes"]]
    assert list(frame["bayesian_rating"]) == pytest.approx(  # the SQL agrees with the documented formula
        [bayesian_rating(r.avg_rating, r.total_reviews, 4.4) for r in frame.itertuples()]
    )


def test_leaderboard_filters_by_specialty_and_limits(engine, board):
    brakes = read(engine, mq.leaderboard, specialty="brakes")
    assert list(brakes["display_name"]) == ["Rita", "Cy"] and list(brakes["rank"]) == [1, 2]
    assert read(engine, mq.leaderboard, specialty="tyres").empty
    assert list(read(engine, mq.leaderboard, limit=1)["display_name"]) == ["Bo"]
    assert read(engine, mq.specialties) == ["brakes", "electrical", "engine"]


def test_one_five_star_review_does_not_outrank_two_hundred_at_4_8(engine):
    with engine.begin() as conn:
        add_mechanic(conn, "Lucky", avg_rating="5.00", total_reviews=1)
        add_mechanic(conn, "Steady", avg_rating="4.80", total_reviews=200)
        add_mechanic(conn, "Shaky", avg_rating="3.00", total_reviews=100)
    # C = (5 + 960 + 300) / 301 = 1265/301
    frame = read(engine, mq.leaderboard)
    assert list(frame["display_name"]) == ["Steady", "Lucky", "Shaky"]
    c = 1265 / 301
    assert list(frame["bayesian_rating"]) == pytest.approx(
        [(10 * c + 960) / 210, (10 * c + 5) / 11, (10 * c + 300) / 110]
    )


def test_profile_and_rating_distribution(engine, board):
    (row,) = read(engine, mq.profile, mechanic_id=board["rita"]).to_dict("records")
    assert row["display_name"] == "Rita" and row["bio"] == "Brakes <b>expert</b>"
    assert row["years_experience"] == 12 and list(row["specialties"]) == ["brakes", "electrical"]
    assert (row["avg_rating"], row["total_reviews"], row["response_sla_minutes"]) == (4.5, 2, 10)
    assert row["bayesian_rating"] == pytest.approx(53 / 12) and row["global_mean"] == pytest.approx(4.4)
    assert (row["rank"], row["ranked_mechanics"]) == (2, 4)
    (old,) = read(engine, mq.profile, mechanic_id=board["old"]).to_dict("records")
    assert pd.isna(old["rank"])  # inactive: not ranked
    assert read(engine, mq.profile, mechanic_id=add_user_id(engine)).empty

    dist = read(engine, mq.rating_distribution, mechanic_id=board["rita"])
    assert dist.to_dict("list") == {"stars": [1, 2, 3, 4, 5], "reviews": [0, 0, 0, 1, 1]}  # hidden 1-star left out


def test_response_times_against_sla(engine):
    """Two weeks of sessions accepted 2, 8 and 20 minutes after the request (SLA 10 minutes)."""
    monday = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    with engine.begin() as conn:
        mechanic = add_mechanic(conn, "Rita", response_sla_minutes=10)
        customer = add_user(conn)
        for created, waited in [
            (monday, 2),
            (monday + DAY, 8),
            (monday + DAY, 20),
            (monday + 7 * DAY, 20),
            (monday + 30 * DAY, 1),
        ]:  # the last one is outside the period
            request = conn.execute(
                s.requests.insert().values(customer_id=customer, created_at=created).returning(s.requests.c.id)
            ).scalar_one()
            add_session(
                conn, customer, mechanic, request_id=request, accepted_at=created + dt.timedelta(minutes=waited)
            )
        add_session(conn, customer, mechanic)  # never accepted: no response time
    period = Period(dt.date(2026, 3, 1), dt.date(2026, 3, 14), "UTC")
    weekly = read(engine, mq.response_times, mechanic_id=mechanic, period=period)
    assert [w for w in weekly["week"]] == [dt.date(2026, 3, 2), dt.date(2026, 3, 9)]
    assert list(weekly["sessions"]) == [3, 1]
    assert list(weekly["median_minutes"]) == pytest.approx([8, 20])
    assert list(weekly["within_sla_share"]) == pytest.approx([2 / 3, 0])
    (summary,) = read(engine, mq.response_summary, mechanic_id=mechanic, period=period).to_dict("records")
    assert summary["sessions"] == 4
    assert summary["median_minutes"] == pytest.approx(14)
    assert summary["within_sla_share"] == pytest.approx(0.5)


def test_empty_database_gives_empty_frames_with_columns(engine):
    period = Period(dt.date(2026, 3, 1), dt.date(2026, 3, 14), "UTC")
    assert read(engine, mq.leaderboard).empty and read(engine, mq.specialties) == []
    assert read(engine, mq.response_times, mechanic_id=add_user_id(engine), period=period).empty


def test_public_profile_of_an_active_mechanic(engine, board):
    rita = read(engine, mq.public_profile, mechanic_id=board["rita"])
    assert rita == {
        "mechanic_id": board["rita"],
        "name": "Rita",
        "bio": "Brakes <b>expert</b>",
        "years_experience": 12,
        "specialties": ["brakes", "electrical"],
        "average_rating": 4.5,
        "review_count": 2,
        "ranking_score": round(53 / 12, 4),
        "rank": 2,
        "rating_distribution": {1: 0, 2: 0, 3: 0, 4: 1, 5: 1},  # the hidden 1-star is not counted
    }
    dee = read(engine, mq.public_profile, mechanic_id=str(board["dee"]))
    assert (dee["years_experience"], dee["specialties"], dee["review_count"], dee["rank"]) == (None, [], 0, 3)
    assert read(engine, mq.public_profile, mechanic_id=board["old"]) is None  # inactive: not public
    assert read(engine, mq.public_profile, mechanic_id=add_user_id(engine)) is None
    with pytest.raises(ValueError, match="not a valid id"):
        read(engine, mq.public_profile, mechanic_id="1 OR 1=1")


def test_published_reviews_come_a_page_at_a_time_newest_first(engine):
    with engine.begin() as conn:
        mia, other = add_mechanic(conn, "Mia"), add_mechanic(conn, "Other")
        times = [NOW - DAY * n for n in (5, 4, 3, 3, 3, 1)]  # three at the same instant: ties go by id
        published = [(at, add_review(conn, mia, 4, created_at=at)) for at in times]
        add_review(conn, mia, 1, "pending", created_at=NOW)
        add_review(conn, mia, 2, "hidden", created_at=NOW)
        add_review(conn, other, 5, created_at=NOW)
    expected = [rid for _, rid in sorted(published, key=lambda p: (p[0], p[1]), reverse=True)]
    seen, cursor = [], None
    for page_number in range(3):
        rows, cursor = read(engine, mq.published_reviews_page, mechanic_id=mia, after=cursor, limit=2)
        seen += [row["id"] for row in rows]
        assert len(rows) == 2 and set(rows[0]) == {"id", "rating", "review_text", "helpful_count", "created_at"}
        if page_number == 0:  # a review arriving meanwhile goes on top and shifts nothing
            with engine.begin() as conn:
                add_review(conn, mia, 5, created_at=NOW + DAY)
    assert seen == expected and cursor is None
    rows, cursor = read(engine, mq.published_reviews_page, mechanic_id=mia)
    assert len(rows) == 7 and cursor is None


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"limit": 0}, "page size"),
        ({"limit": 101}, "page size"),
        ({"limit": "20"}, "page size"),
        ({"after": "bm90IGEgY3Vyc29y"}, "cursor"),
        ({"after": "%%%"}, "cursor"),
        ({"after": "x" * 500}, "cursor"),
        ({"mechanic_id": "garbage"}, "not a valid id"),
    ],
)
def test_bad_review_page_requests_are_refused(engine, changes, message):
    with engine.begin() as conn:
        call = {"mechanic_id": add_mechanic(conn), **changes}
    with pytest.raises(ValueError, match=message):
        read(engine, mq.published_reviews_page, **call)
