"""The API's routes over a real uvicorn on loopback, on DuckDB and on PostgreSQL.

One server per backend for the whole module; each test creates the rows it uses.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from api.schemas import (
    BookableOut,
    FollowUpOut,
    HelpfulOut,
    IngestOut,
    ProfileOut,
    QuoteOut,
    ReviewOut,
    ReviewsPage,
    SlotsOut,
    UpsellEventOut,
    UpsellsOut,
)
from dashboard.core import schema as s
from tests.api_support import api_server
from tests.factories import add_mechanic, add_review, add_session, add_user

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def api(request, tmp_path_factory):
    with api_server(request, tmp_path_factory, PITWALL_API_MAX_BODY_BYTES="65536") as server:
        yield server


@pytest.fixture
def world(api):
    """A customer, another customer, a mechanic and a completed session of the customer's."""
    with api.engine.begin() as conn:
        customer, other = add_user(conn, "Cora"), add_user(conn, "Otto")
        mechanic = add_mechanic(
            conn, "Rita", bio="Brakes and <b>bold</b> claims", years_experience=12, specialties=["brakes", "engine"]
        )
        session = add_session(conn, customer, mechanic, ended_at=NOW - dt.timedelta(days=1))
    return {"customer": customer, "other": other, "mechanic": mechanic, "session": session}


def rows(api, table, **where):
    with api.engine.connect() as conn:
        return conn.execute(sa.select(table).where(*[table.c[k] == v for k, v in where.items()])).mappings().all()


def shaped(model, response) -> dict:
    """The answer's JSON, checked against the model OpenAPI documents for it."""
    model.model_validate(response.json())
    return response.json()


def problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code and body["status"] == status
    assert "Traceback" not in response.text and "sqlalchemy" not in response.text.lower()
    return body


# --- health, docs, errors ------------------------------------------------------------------


def test_healthz_says_the_database_is_migrated(api):
    response = api.http.get("/healthz")
    assert response.status_code == 200
    with api.engine.connect() as conn:
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert response.json() == {"status": "ok", "database": api.engine.dialect.name, "revision": revision}


def test_openapi_and_docs(api):
    spec = api.http.get("/openapi.json").json()
    assert {"ReviewOut", "SlotsOut", "ProblemOut", "IngestOut"} <= set(spec["components"]["schemas"])
    assert {
        "/v1/reviews",
        "/v1/mechanics/{mechanic_id}/slots",
        "/v1/crm/interactions",
        "/v1/bookings/check",
        "/v1/follow-ups",
    } <= set(spec["paths"])
    assert "swagger-ui" in api.http.get("/docs").text


def test_unknown_route_and_method_are_problems(api, world):
    problem(api.get("/v1/nothing", api.as_customer(world["customer"])), 404, "no_such_route")
    problem(api.http.delete("/v1/reviews"), 405, "method_not_allowed")


# --- reviews -------------------------------------------------------------------------------


def test_a_review_is_published_and_counted(api, world):
    response = api.post(
        "/v1/reviews",
        api.as_customer(world["customer"]),
        {"session_id": str(world["session"]), "rating": 4, "text": "Found the leak in minutes."},
    )
    assert response.status_code == 201, response.text
    body = shaped(ReviewOut, response)
    assert body["status"] == "published" and body["flags"] == []
    [stored] = rows(api, s.mechanic_reviews, session_id=world["session"])
    assert str(stored["id"]) == body["id"] and stored["rating"] == 4
    [mechanic] = rows(api, s.mechanics, user_id=world["mechanic"])
    assert mechanic["total_reviews"] == 1 and float(mechanic["avg_rating"]) == 4.0


def test_a_flagged_review_waits_and_html_stays_text(api, world):
    text = "<script>alert(1)</script> mail me at cora@example.com"
    response = api.post(
        "/v1/reviews",
        api.as_platform(world["customer"]),
        {"session_id": str(world["session"]), "rating": 5, "text": text},
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "pending" and response.json()["flags"] == ["personal_data"]
    assert response.headers["content-type"] == "application/json"
    [stored] = rows(api, s.mechanic_reviews, session_id=world["session"])
    assert stored["review_text"] == text


def test_another_customers_session_is_not_found(api, world):
    response = api.post(
        "/v1/reviews", api.as_customer(world["other"]), {"session_id": str(world["session"]), "rating": 5}
    )
    assert problem(response, 404, "not_found")["detail"] == f"No session with id {world['session']}."
    assert rows(api, s.mechanic_reviews, session_id=world["session"]) == []


@pytest.mark.parametrize(
    "change, status, code",
    [
        ({"rating": "5"}, 422, "invalid_request"),  # text, not a number
        ({"rating": 4.0}, 422, "invalid_request"),  # not a whole number
        ({"rating": True}, 422, "invalid_request"),
        ({"rating": 10**30}, 422, "review_rejected"),  # huge
        ({"rating": 0}, 422, "review_rejected"),
        ({"text": "fine\x00work"}, 422, "review_rejected"),  # NUL
        ({"text": "x" * 2001}, 422, "review_rejected"),
        ({"text": 12}, 422, "invalid_request"),
        ({"session_id": "not-an-id"}, 422, "invalid_request"),
        ({"session_id": str(uuid.UUID(int=7))}, 404, "not_found"),
        ({"stars": 5}, 422, "invalid_request"),  # unknown field
    ],
)
def test_bad_reviews_are_refused_and_write_nothing(api, world, change, status, code):
    body = {"session_id": str(world["session"]), "rating": 5, **change}
    problem(api.post("/v1/reviews", api.as_customer(world["customer"]), body), status, code)
    assert rows(api, s.mechanic_reviews, session_id=world["session"]) == []


def test_a_body_that_is_not_json_is_refused(api, world):
    response = api.post(
        "/v1/reviews", {**api.as_customer(world["customer"]), "Content-Type": "application/json"}, content=b"{not json"
    )
    problem(response, 422, "invalid_request")


def test_helpful_votes_count_once_per_voter(api, world):
    with api.engine.begin() as conn:
        review = add_review(conn, world["mechanic"], 5)
    first = api.post(f"/v1/reviews/{review}/helpful", api.as_customer(world["other"]))
    again = api.post(f"/v1/reviews/{review}/helpful", api.as_customer(world["other"]))
    assert shaped(HelpfulOut, first) == {"review_id": str(review), "counted": True}
    assert again.json() == {"review_id": str(review), "counted": False}
    assert rows(api, s.mechanic_reviews, id=review)[0]["helpful_count"] == 1
    problem(api.post(f"/v1/reviews/{uuid.UUID(int=3)}/helpful", api.as_customer(world["other"])), 404, "not_found")
    problem(api.post("/v1/reviews/nope/helpful", api.as_customer(world["other"])), 404, "not_found")


# --- idempotency and limits ---------------------------------------------------------------------


def test_a_replayed_key_gets_the_same_answer_and_writes_once(api, world):
    body = {"session_id": str(world["session"]), "rating": 5, "text": "Great help."}
    headers = api.as_customer(world["customer"])
    first = api.post("/v1/reviews", headers, body, key="review-1")
    again = api.post("/v1/reviews", headers, body, key="review-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert len(rows(api, s.mechanic_reviews, session_id=world["session"])) == 1
    other_body = api.post("/v1/reviews", headers, {**body, "rating": 1}, key="review-1")
    problem(other_body, 422, "idempotency_key_reused")


def test_a_replayed_rejection_is_the_same_rejection(api, world):
    headers = api.as_customer(world["customer"])
    body = {"session_id": str(world["session"]), "rating": 9}
    first = api.post("/v1/reviews", headers, body, key="bad-review")
    again = api.post("/v1/reviews", headers, body, key="bad-review")
    assert problem(first, 422, "review_rejected") == problem(again, 422, "review_rejected")


def test_every_post_needs_an_idempotency_key(api, world):
    response = api.http.post(
        "/v1/reviews",
        headers=api.as_customer(world["customer"]),
        json={"session_id": str(world["session"]), "rating": 5},
    )
    problem(response, 400, "idempotency_key_required")
    assert rows(api, s.mechanic_reviews, session_id=world["session"]) == []


def test_an_oversize_body_is_refused(api, world):
    body = {"session_id": str(world["session"]), "rating": 5, "text": "x" * 70_000}
    problem(api.post("/v1/reviews", api.as_customer(world["customer"]), body), 413, "body_too_large")
    chunks = (b'{"session_id": "%s", "rating": 5, "text": "' % str(world["session"]).encode(), b"y" * 70_000, b'"}')
    streamed = api.post(
        "/v1/reviews", {**api.as_customer(world["customer"]), "Content-Type": "application/json"}, content=iter(chunks)
    )  # no Content-Length: counted while it arrives
    problem(streamed, 413, "body_too_large")
    assert rows(api, s.mechanic_reviews, session_id=world["session"]) == []


# --- slots and the booking check --------------------------------------------------------------


@pytest.fixture
def calendar(api, world):
    """Rita (UTC) works 09:00-11:00 every day at 1.25x; chat sessions cost 19.99; a day off in 4 days."""
    day = (NOW + dt.timedelta(days=3)).date()
    with api.engine.begin() as conn:
        for weekday in range(7):
            conn.execute(
                s.mechanic_availability_slots.insert().values(
                    mechanic_id=world["mechanic"],
                    day_of_week=weekday,
                    start_time=dt.time(9),
                    end_time=dt.time(11),
                    price_multiplier="1.25",
                )
            )
        conn.execute(
            s.mechanic_availability_overrides.insert().values(
                mechanic_id=world["mechanic"], date=day + dt.timedelta(days=1), is_available=False, reason="Holiday"
            )
        )
        conn.execute(s.session_base_prices.delete())
        conn.execute(s.session_base_prices.insert().values(session_type="chat", price_cents=1999))
    return {"day": day}


def at(day: dt.date, hour: int, minute: int = 0) -> str:
    return dt.datetime.combine(day, dt.time(hour, minute), dt.UTC).isoformat()


def test_slots_are_listed_by_day_in_the_asked_timezone(api, world, calendar):
    day = calendar["day"]
    response = api.get(
        f"/v1/mechanics/{world['mechanic']}/slots",
        api.as_customer(world["customer"]),
        start=day.isoformat(),
        end=day.isoformat(),
        timeZone="Europe/Berlin",
        session_type="chat",
    )
    assert response.status_code == 200, response.text
    shaped(SlotsOut, response)
    # 09:00-11:00 UTC is 10:00-12:00 in Berlin in winter; 1,999 x 1.25 = 2,498.75 -> 2,499 cents
    assert response.json() == {
        "data": {
            day.isoformat(): [
                {
                    "start": f"{day}T{hour}:00+01:00",
                    "end": f"{day}T{end}:00+01:00",
                    "price_cents": 2499,
                    "multiplier": "1.25",
                }
                for hour, end in (("10:00", "10:30"), ("10:30", "11:00"), ("11:00", "11:30"), ("11:30", "12:00"))
            ]
        }
    }


@pytest.mark.parametrize(
    "params, status, code",
    [
        ({"end": "+40"}, 422, "invalid_input"),  # 40 days
        ({"timeZone": "Mars/Olympus"}, 422, "invalid_input"),
        ({"start": "2026-02-30"}, 422, "invalid_input"),
        ({"session_type": "phone"}, 422, "invalid_input"),
        ({"mechanic": str(uuid.UUID(int=5))}, 404, "not_found"),
    ],
)
def test_bad_slot_questions_are_refused(api, world, calendar, params, status, code):
    day = calendar["day"]
    query = {"start": day.isoformat(), "end": day.isoformat(), "timeZone": "UTC", "session_type": "chat", **params}
    if query["end"] == "+40":
        query["end"] = (day + dt.timedelta(days=39)).isoformat()
    mechanic = query.pop("mechanic", world["mechanic"])
    problem(api.get(f"/v1/mechanics/{mechanic}/slots", api.as_customer(world["customer"]), **query), status, code)


def test_booking_check_gives_the_price_or_the_reason(api, world, calendar):
    day, mechanic = calendar["day"], str(world["mechanic"])
    with api.engine.begin() as conn:
        add_session(conn, world["other"], world["mechanic"], "scheduled", scheduled_at=at(day, 10))
    headers = api.as_platform(world["customer"])

    def check(start):
        return api.post(
            "/v1/bookings/check", headers, {"mechanic_id": mechanic, "start": start, "session_type": "chat"}
        )

    ok = check(at(day, 9))
    assert ok.status_code == 200, ok.text
    assert shaped(BookableOut, ok) == {
        "bookable": True,
        "price_cents": 2499,
        "start": at(day, 9),
        "end": at(day, 9, 30),
        "multiplier": "1.25",
    }
    taken = problem(check(at(day, 10, 30)), 409, "not_bookable")
    assert taken["reason"] == "taken" and "booked session" in taken["detail"]
    outside = problem(check(at(day, 14)), 409, "not_bookable")
    assert outside["reason"] == "outside_hours" and "open start time" in outside["detail"]
    day_off = problem(check(at(day + dt.timedelta(days=1), 9)), 409, "not_bookable")
    assert day_off["reason"] == "day_off" and "does not work on" in day_off["detail"]
    problem(check("2026-12-03T09:00:00"), 422, "invalid_request")  # no offset
    problem(
        api.post(
            "/v1/bookings/check", headers, {"mechanic_id": mechanic, "start": at(day, 9), "session_type": "phone"}
        ),
        422,
        "invalid_request",
    )


def test_booking_check_refuses_too_soon(api, world):
    with api.engine.begin() as conn:
        mechanic = add_mechanic(conn, "Nia")
        for weekday in range(7):
            conn.execute(
                s.mechanic_availability_slots.insert().values(
                    mechanic_id=mechanic, day_of_week=weekday, start_time=dt.time(0), end_time=dt.time(23, 59)
                )
            )
        if not conn.execute(
            sa.select(s.session_base_prices).where(s.session_base_prices.c.session_type == "video")
        ).first():
            conn.execute(s.session_base_prices.insert().values(session_type="video", price_cents=2999))
    soon = NOW + dt.timedelta(minutes=30)
    soon = soon.replace(minute=0 if soon.minute == 0 else 30 if soon.minute <= 30 else 0, second=0) + (
        dt.timedelta(hours=1) if soon.minute > 30 else dt.timedelta()
    )
    if soon.time() >= dt.time(23, 30):  # 23:30 is no start: the day's window ends at 23:59
        soon += dt.timedelta(minutes=30)
    response = api.post(
        "/v1/bookings/check",
        api.as_customer(world["customer"]),
        {"mechanic_id": str(mechanic), "start": soon.isoformat(), "session_type": "video"},
    )
    too_soon = problem(response, 409, "not_bookable")
    assert too_soon["reason"] == "too_soon" and "notice" in too_soon["detail"]


# --- CRM ingest -------------------------------------------------------------------------------------


def event(customer, kind="intake", **extra) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "customer_id": str(customer),
        "interaction_type": kind,
        "occurred_at": (NOW - dt.timedelta(hours=1)).isoformat(),
        **extra,
    }


def test_a_batch_keeps_good_events_and_records_each_once(api, world):
    batch = [
        event(world["customer"]),
        event(world["customer"], "lunch"),
        event(world["customer"], "session", session_id=str(world["session"])),
        event(world["customer"], metadata={"note": "nul\x00here"}),
    ]
    first = api.post("/v1/crm/interactions", api.as_platform(), {"events": batch})
    assert first.status_code == 200, first.text
    body = shaped(IngestOut, first)
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(1, "invalid"), (3, "invalid")]
    assert "lunch" in body["rejected"][0]["message"]
    retried = api.post("/v1/crm/interactions", api.as_platform(), {"events": batch})  # a new key: a retried batch
    assert (retried.json()["accepted"], retried.json()["duplicates"], len(retried.json()["rejected"])) == (0, 2, 2)
    assert len(rows(api, s.crm_interactions, customer_id=world["customer"])) == 2


def test_batch_ingest_is_for_service_keys_and_at_most_1000_events(api, world):
    problem(
        api.post("/v1/crm/interactions", api.as_customer(world["customer"]), {"events": [event(world["customer"])]}),
        403,
        "forbidden",
    )
    too_many = [{}] * 1001  # small, so it is the count that is refused, not the size
    problem(api.post("/v1/crm/interactions", api.as_platform(), {"events": too_many}), 422, "invalid_request")
    problem(api.post("/v1/crm/interactions", api.as_platform(), {"events": "all of them"}), 422, "invalid_request")
    assert rows(api, s.crm_interactions, customer_id=world["customer"]) == []


# --- mechanics' public pages ------------------------------------------------------------------------


def test_public_profile_counts_published_reviews_only(api, world):
    with api.engine.begin() as conn:
        mechanic = add_mechanic(
            conn,
            "Ada",
            bio="<i>Hybrid</i> systems",
            years_experience=9,
            specialties=["electrical"],
            avg_rating="4.33",
            total_reviews=3,
        )
        for rating, status in ((5, "published"), (4, "published"), (4, "published"), (1, "pending"), (2, "hidden")):
            add_review(conn, mechanic, rating, status)
        total, weighted = conn.execute(
            sa.text("SELECT sum(total_reviews), sum(avg_rating * total_reviews) FROM mechanics")
        ).one()
    mean = float(weighted) / float(total)
    response = api.get(f"/v1/mechanics/{mechanic}", api.as_customer(world["customer"]))
    assert response.status_code == 200, response.text
    body = shaped(ProfileOut, response)
    assert {
        k: body[k]
        for k in (
            "name",
            "bio",
            "years_experience",
            "specialties",
            "average_rating",
            "review_count",
            "rating_distribution",
        )
    } == {
        "name": "Ada",
        "bio": "<i>Hybrid</i> systems",
        "years_experience": 9,
        "specialties": ["electrical"],
        "average_rating": 4.33,
        "review_count": 3,
        "rating_distribution": {"1": 0, "2": 0, "3": 0, "4": 2, "5": 1},
    }
    assert body["ranking_score"] == pytest.approx((10 * mean + 3 * 4.33) / 13, abs=1e-4)


def test_unknown_or_inactive_mechanics_are_not_found(api, world):
    with api.engine.begin() as conn:
        retired = add_mechanic(conn, "Gone", is_active=False)
    for mechanic in (retired, uuid.UUID(int=9), "x' OR 1=1 --"):
        problem(api.get(f"/v1/mechanics/{mechanic}", api.as_customer(world["customer"])), 404, "not_found")
        problem(api.get(f"/v1/mechanics/{mechanic}/reviews", api.as_customer(world["customer"])), 404, "not_found")


def test_published_reviews_come_a_page_at_a_time(api, world):
    with api.engine.begin() as conn:
        mechanic = add_mechanic(conn, "Bo")
        newest, middle, oldest = (
            add_review(conn, mechanic, 5 - n, created_at=NOW - dt.timedelta(days=n), review_text=f"review {n}")
            for n in range(3)
        )
        add_review(conn, mechanic, 1, "pending", created_at=NOW)
    headers = api.as_customer(world["customer"])
    first = shaped(ReviewsPage, api.get(f"/v1/mechanics/{mechanic}/reviews", headers, limit=2))
    assert [r["id"] for r in first["data"]] == [str(newest), str(middle)]
    assert first["data"][0]["created_at"] == NOW.isoformat() and first["data"][0]["review_text"] == "review 0"
    second = api.get(f"/v1/mechanics/{mechanic}/reviews", headers, limit=2, cursor=first["next_cursor"]).json()
    assert [r["id"] for r in second["data"]] == [str(oldest)] and second["next_cursor"] is None
    problem(api.get(f"/v1/mechanics/{mechanic}/reviews", headers, cursor="bm90IGEgY3Vyc29y"), 422, "invalid_input")
    problem(api.get(f"/v1/mechanics/{mechanic}/reviews", headers, limit=500), 422, "invalid_input")
    problem(api.get(f"/v1/mechanics/{mechanic}/reviews", headers, limit="many"), 422, "invalid_request")


# --- follow-ups -----------------------------------------------------------------------------------


def quote(api, headers, session, follow_up_type="quick_question"):
    return api.get("/v1/follow-ups/quote", headers, parent_session_id=str(session), follow_up_type=follow_up_type)


def test_follow_up_price_comes_from_the_rules_and_is_fixed_when_asked(api, world):
    headers = api.as_customer(world["customer"])
    with api.engine.begin() as conn:
        premium = add_user(conn, "Pia")
        conn.execute(s.profiles.update().where(s.profiles.c.id == premium).values(plan="premium"))
        premium_session = add_session(conn, premium, world["mechanic"], ended_at=NOW - dt.timedelta(hours=2))
        conn.execute(s.follow_up_pricing.delete())
        conn.execute(
            s.follow_up_pricing.insert().values(
                plan="standard", follow_up_type="mini_extension", price_cents=1250, updated_by="admin@example.com"
            )
        )
    assert shaped(QuoteOut, quote(api, headers, world["session"])) == {
        "eligible": True,
        "reason": None,
        "price_cents": 500,
        "plan": "standard",
    }  # the default micro-charge
    assert quote(api, headers, world["session"], "mini_extension").json()["price_cents"] == 1250  # the admin's rule
    assert quote(api, api.as_customer(premium), premium_session).json()["price_cents"] == 0  # free on premium

    created = api.post(
        "/v1/follow-ups",
        headers,
        {"parent_session_id": str(world["session"]), "follow_up_type": "mini_extension", "text": "Which oil?"},
    )
    assert created.status_code == 201, created.text
    assert shaped(FollowUpOut, created) == {
        "id": created.json()["id"],
        "parent_session_id": str(world["session"]),
        "follow_up_type": "mini_extension",
        "plan": "standard",
        "price_cents": 1250,
        "state": "open",
    }
    with api.engine.begin() as conn:
        conn.execute(s.follow_up_pricing.update().values(price_cents=1500))
    [stored] = rows(api, s.requests, id=uuid.UUID(created.json()["id"]))
    assert stored["follow_up_price_cents"] == 1250 and stored["description"] == "Which oil?"
    assert stored["customer_id"] == world["customer"]
    with api.engine.connect() as conn:
        actors = (
            conn.execute(sa.select(s.audit_log.c.actor_email).where(s.audit_log.c.entity_id == created.json()["id"]))
            .scalars()
            .all()
        )
    assert actors == ["platform"]
    with api.engine.begin() as conn:
        conn.execute(s.follow_up_pricing.delete())


def test_follow_ups_on_another_customers_session_are_not_found(api, world):
    headers = api.as_customer(world["other"])
    problem(quote(api, headers, world["session"]), 404, "not_found")
    created = api.post(
        "/v1/follow-ups",
        headers,
        {"parent_session_id": str(world["session"]), "follow_up_type": "quick_question", "text": "Mine?"},
    )
    problem(created, 404, "not_found")
    assert rows(api, s.requests, parent_session_id=world["session"]) == []


def test_a_follow_up_after_the_window_is_quoted_as_not_eligible(api, world):
    with api.engine.begin() as conn:
        old = add_session(conn, world["customer"], world["mechanic"], ended_at=NOW - dt.timedelta(days=20))
    body = quote(api, api.as_customer(world["customer"]), old).json()
    assert body["eligible"] is False and body["price_cents"] is None and "14 days" in body["reason"]
    created = api.post(
        "/v1/follow-ups",
        api.as_customer(world["customer"]),
        {"parent_session_id": str(old), "follow_up_type": "quick_question", "text": "Still?"},
    )
    assert "14 days" in problem(created, 422, "follow_up_rejected")["detail"]


@pytest.mark.parametrize(
    "change, status, code",
    [
        ({"follow_up_type": "lifetime_support"}, 422, "follow_up_rejected"),
        ({"text": "   "}, 422, "follow_up_rejected"),
        ({"text": "why\x00"}, 422, "follow_up_rejected"),
        ({"text": None}, 422, "invalid_request"),
        ({"follow_up_type": 3}, 422, "invalid_request"),
    ],
)
def test_bad_follow_ups_are_refused_and_write_nothing(api, world, change, status, code):
    body = {"parent_session_id": str(world["session"]), "follow_up_type": "quick_question", "text": "Ok?", **change}
    problem(api.post("/v1/follow-ups", api.as_customer(world["customer"]), body), status, code)
    assert rows(api, s.requests, parent_session_id=world["session"]) == []


# --- upsells ----------------------------------------------------------------------------------------


@pytest.fixture
def offer(api, world):
    """An open follow-up recommendation for the customer, shown a day ago, and one they bought."""
    rec = s.upsell_recommendations
    with api.engine.begin() as conn:
        open_id, bought_id = uuid.uuid4(), uuid.uuid4()
        conn.execute(
            rec.insert().values(
                id=open_id,
                customer_id=world["customer"],
                session_id=world["session"],
                recommendation_type="follow_up",
                service_title="Follow-up call",
                service_description="Check the <b>brakes</b> again",
                price_cents=2900,
                shown_at=NOW - dt.timedelta(days=1),
            )
        )
        conn.execute(
            rec.insert().values(
                id=bought_id,
                customer_id=world["customer"],
                session_id=world["session"],
                recommendation_type="maintenance_plan",
                service_title="Care plan",
                price_cents=4900,
                shown_at=NOW - dt.timedelta(days=2),
                purchased_at=NOW - dt.timedelta(days=1),
            )
        )
    return open_id


def test_upsell_cards_are_the_customers_open_recommendations(api, world, offer):
    response = api.get(f"/v1/customers/{world['customer']}/upsells", api.as_customer(world["customer"]))
    assert response.status_code == 200, response.text
    assert shaped(UpsellsOut, response) == {
        "data": [
            {
                "id": str(offer),
                "kind": "follow_up",
                "title": "Follow-up call",
                "description": "Check the <b>brakes</b> again",
                "price_cents": 2900,
                "reason": "open recommendation, shown but not clicked",
            }
        ],
        "recommended_next_service": {
            "kind": "follow_up",
            "title": "Follow-up call",
            "price_cents": 2900,
            "reason": "open recommendation, shown but not clicked",
        },
    }
    assert api.get(f"/v1/customers/{world['customer']}/upsells", api.as_platform()).json() == response.json()
    for headers, customer in (
        (api.as_customer(world["other"]), world["customer"]),
        (api.as_platform(), uuid.UUID(int=11)),
    ):
        problem(api.get(f"/v1/customers/{customer}/upsells", headers), 404, "not_found")


def test_upsell_events_are_recorded_once_with_their_interaction(api, world, offer):
    headers = api.as_customer(world["customer"])
    first = api.post(f"/v1/upsells/{offer}/clicked", headers)
    again = api.post(f"/v1/upsells/{offer}/clicked", headers)
    assert first.status_code == again.status_code == 200, first.text
    assert shaped(UpsellEventOut, first)["changed"] is True and again.json()["changed"] is False
    assert "nothing changed" in again.json()["message"]
    [stored] = rows(api, s.upsell_recommendations, id=offer)
    assert stored["clicked_at"] is not None and dt.datetime.fromisoformat(first.json()["at"]) == stored["clicked_at"]
    clicks = rows(api, s.crm_interactions, customer_id=world["customer"], interaction_type="upsell_clicked")
    assert len(clicks) == 1
    problem(api.post(f"/v1/upsells/{offer}/purchased", api.as_customer(world["other"])), 404, "not_found")
    assert rows(api, s.upsell_recommendations, id=offer)[0]["purchased_at"] is None
    bought = api.post(f"/v1/upsells/{offer}/purchased", api.as_platform(world["customer"]))
    assert bought.status_code == 200 and bought.json()["changed"] is True
    [purchase] = rows(api, s.crm_interactions, customer_id=world["customer"], interaction_type="purchase")
    metadata = purchase["metadata"]  # JSON text on DuckDB
    assert (json.loads(metadata) if isinstance(metadata, str) else metadata)["price_cents"] == 2900
    problem(api.post(f"/v1/upsells/{offer}/liked", headers), 422, "invalid_request")


def test_concurrent_follow_ups_keep_the_limit_on_either_backend(api, world):
    body = {"parent_session_id": str(world["session"]), "follow_up_type": "quick_question", "text": "Which fuse?"}
    with ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(lambda _: api.post("/v1/follow-ups", api.as_customer(world["customer"]), body), range(6))
        )
    assert sorted(a.status_code for a in answers) == [201, 201, 422, 422, 422, 422]
    assert len(rows(api, s.requests, parent_session_id=world["session"])) == 2
