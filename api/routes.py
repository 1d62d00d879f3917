"""The routes under ``/v1``: parse, authorize, call the domain function, shape the answer.

Authorization: a customer acts on their own sessions, reviews, follow-ups and upsells
only; another customer's id answers 404 like an unknown one. A service key with the
platform scope acts for the customer it names in ``X-Pitwall-Customer``. The rules
themselves (``docs/api.md`` lists them per route) live in the domain modules.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder

from api.app import caller, parse_id
from api.auth import Principal
from api.idempotency import IdempotencyKey, idempotency_key, run_write
from api.problems import Problem
from api.schemas import (
    PROBLEMS,
    BookableOut,
    BookingCheckIn,
    FollowUpIn,
    FollowUpOut,
    HelpfulOut,
    IngestOut,
    InteractionsIn,
    ProfileOut,
    QuoteOut,
    ReviewIn,
    ReviewOut,
    ReviewsPage,
    SlotsOut,
    UpsellEventOut,
    UpsellsOut,
)
from dashboard.core.db import check_connection
from dashboard.core.errors import NotFound
from dashboard.core.migrate import current_revision, head_revision
from dashboard.core.schema import sessions, users
from dashboard.domain import followups, reviews, upsells
from dashboard.domain.calendars import slots
from dashboard.domain.funnel import interactions
from queries import mechanics as mechanic_queries
from queries import upsells as upsell_queries

router = APIRouter()
Caller = Annotated[Principal, Depends(caller)]
Key = Annotated[IdempotencyKey, Depends(idempotency_key)]


# --- helpers -----------------------------------------------------------------------------


def _engine(request: Request):
    return request.app.state.engine


def _read(request: Request):
    """A connection to the read replica when one is set, else to the database."""
    return request.app.state.read_engine.connect()


def _own_session(conn, session_id: uuid.UUID, customer_id: uuid.UUID) -> None:
    """404 unless the session exists and is the customer's."""
    owner = conn.execute(sa.select(sessions.c.customer_id).where(sessions.c.id == session_id)).scalar()
    if owner != customer_id:
        raise NotFound(f"No session with id {session_id}.")


def _known_customer(conn, principal: Principal, customer_id: uuid.UUID) -> None:
    """404 unless the caller may see the customer and the customer exists."""
    if principal.kind == "customer" and principal.customer_id != customer_id:
        raise NotFound(f"No customer with id {customer_id}.")
    if conn.execute(sa.select(users.c.id).where(users.c.id == customer_id)).first() is None:
        raise NotFound(f"No customer with id {customer_id}.")


def _json(value: Any) -> Any:
    """Plain JSON: times in ISO 8601 with their offset, ids as text, decimals as numbers."""
    return jsonable_encoder(value)


# --- health --------------------------------------------------------------------------------


@router.get("/healthz", tags=["health"])
def healthz(request: Request):
    """200 when the database answers and is migrated to the revision this code needs (no auth)."""
    engine = _engine(request)
    check_connection(engine)
    head = head_revision()
    current = current_revision(engine)
    if current != head:
        raise Problem(
            503,
            "not_migrated",
            f"The database is at revision {current or 'none'}; this API needs {head}: run python -m dashboard migrate.",
        )
    return {"status": "ok", "database": engine.dialect.name, "revision": current}


# --- reviews -------------------------------------------------------------------------------


@router.post("/v1/reviews", status_code=201, tags=["reviews"], responses={**PROBLEMS, 201: {"model": ReviewOut}})
def submit_review(body: ReviewIn, request: Request, principal: Caller, key: Key):
    """A customer's review of their completed session: published at once, or pending when flagged."""
    customer = principal.customer()

    def write(db):
        with db.connect() as conn:
            _own_session(conn, body.session_id, customer)
        review = reviews.submit_review(
            db, session_id=body.session_id, customer_id=customer, rating=body.rating, text=body.text
        )
        return 201, {"id": str(review.id), "status": review.status, "flags": list(review.flags)}

    return run_write(_engine(request), principal, key, write)


@router.post("/v1/reviews/{review_id}/helpful", tags=["reviews"], responses={**PROBLEMS, 200: {"model": HelpfulOut}})
def vote_helpful(review_id: str, request: Request, principal: Caller, key: Key):
    """The customer finds a published review helpful; a second vote by them counts nothing."""
    rid, voter = parse_id(review_id, "review"), principal.customer()

    def write(db):
        counted = reviews.vote_helpful(db, review_id=rid, voter_id=voter)
        return 200, {"review_id": str(rid), "counted": counted}

    return run_write(_engine(request), principal, key, write)


# --- mechanics ------------------------------------------------------------------------------


@router.get("/v1/mechanics/{mechanic_id}", tags=["mechanics"], responses={**PROBLEMS, 200: {"model": ProfileOut}})
def mechanic_profile(mechanic_id: str, request: Request, principal: Caller):
    """The public profile: name, bio, experience, specialties, published reviews' average and count,
    ranking score and rating distribution."""
    mid = parse_id(mechanic_id, "mechanic")
    with _read(request) as conn:
        found = mechanic_queries.public_profile(conn, mid)
    if found is None:
        raise NotFound(f"No mechanic with id {mid}.")
    return _json(found)


@router.get(
    "/v1/mechanics/{mechanic_id}/reviews", tags=["mechanics"], responses={**PROBLEMS, 200: {"model": ReviewsPage}}
)
def mechanic_reviews(
    mechanic_id: str,
    request: Request,
    principal: Caller,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: int = 20,
):
    """Published reviews, newest first; ``next_cursor`` fetches the next page (null on the last)."""
    mid = parse_id(mechanic_id, "mechanic")
    with _read(request) as conn:
        if not mechanic_queries.is_public(conn, mid):
            raise NotFound(f"No mechanic with id {mid}.")
        rows, next_cursor = mechanic_queries.published_reviews_page(conn, mid, after=cursor, limit=limit)
    return {"data": _json(rows), "next_cursor": next_cursor}


@router.get("/v1/mechanics/{mechanic_id}/slots", tags=["calendars"], responses={**PROBLEMS, 200: {"model": SlotsOut}})
def mechanic_slots(
    mechanic_id: str,
    request: Request,
    principal: Caller,
    start: Annotated[str, Query(max_length=20, description="first date, YYYY-MM-DD")],
    end: Annotated[str, Query(max_length=20, description="last date, YYYY-MM-DD (at most 31 days)")],
    time_zone: Annotated[str, Query(alias="timeZone", max_length=64)],
    session_type: Annotated[str, Query(max_length=20)] = "video",
):
    """Bookable starts by date of ``timeZone``, shaped like Cal.com's /v2/slots."""
    mid = parse_id(mechanic_id, "mechanic")
    days = slots.slots_by_day(
        request.app.state.read_engine,
        mid,
        start=start,
        end=end,
        zone=time_zone,
        session_type=session_type,
        rules=request.app.state.settings.slot_rules,
    )
    return {"data": _json(days)}


@router.post("/v1/bookings/check", tags=["calendars"], responses={**PROBLEMS, 200: {"model": BookableOut}})
def check_booking(body: BookingCheckIn, request: Request, principal: Caller, key: Key):
    """Whether the start is bookable now, at what price; 409 with the reason when it is not."""
    rules = request.app.state.settings.slot_rules

    def write(db):
        with db.connect() as conn:
            slot = slots.check_booking(
                conn, body.mechanic_id, body.session_type, body.start, now=dt.datetime.now(dt.UTC), rules=rules
            )
        return 200, {
            "bookable": True,
            "price_cents": slot.price_cents,
            "start": slot.start_utc.isoformat(),
            "end": slot.end_utc.isoformat(),
            "multiplier": str(slot.multiplier),
        }

    return run_write(_engine(request), principal, key, write)


# --- follow-ups -------------------------------------------------------------------------------


@router.get("/v1/follow-ups/quote", tags=["followups"], responses={**PROBLEMS, 200: {"model": QuoteOut}})
def follow_up_quote(
    request: Request, principal: Caller, parent_session_id: str, follow_up_type: Annotated[str, Query(max_length=40)]
):
    """Whether the customer may ask this follow-up on the session now, and its price."""
    customer, session_id = principal.customer(), parse_id(parent_session_id, "session")
    with _engine(request).connect() as conn:
        _own_session(conn, session_id, customer)
    quote = followups.quote(
        _engine(request),
        parent_session_id=session_id,
        customer_id=customer,
        follow_up_type=follow_up_type,
        rules=request.app.state.settings.follow_up_rules,
    )
    return _json(quote)


@router.post("/v1/follow-ups", status_code=201, tags=["followups"], responses={**PROBLEMS, 201: {"model": FollowUpOut}})
def create_follow_up(body: FollowUpIn, request: Request, principal: Caller, key: Key):
    """The customer's follow-up question, priced by the admin-edited rules when it is asked."""
    customer = principal.customer()
    rules = request.app.state.settings.follow_up_rules

    def write(db):
        with db.connect() as conn:
            _own_session(conn, body.parent_session_id, customer)
        created = followups.create_follow_up(
            db,
            None,
            on_behalf_of_customer=True,
            parent_session_id=body.parent_session_id,
            customer_id=customer,
            follow_up_type=body.follow_up_type,
            text=body.text,
            rules=rules,
        )
        return 201, {
            "id": str(created.id),
            "parent_session_id": str(body.parent_session_id),
            "follow_up_type": body.follow_up_type,
            "plan": created.plan,
            "price_cents": created.price_cents,
            "state": "open",
        }

    return run_write(_engine(request), principal, key, write)


# --- CRM ------------------------------------------------------------------------------------------


@router.post("/v1/crm/interactions", tags=["funnel"], responses={**PROBLEMS, 200: {"model": IngestOut}})
def record_interactions(body: InteractionsIn, request: Request, principal: Caller, key: Key):
    """A batch of the platform's events (service key only); each ``event_id`` is recorded once."""
    principal.require_platform()

    def write(engine):
        result = interactions.record_interactions(engine, body.events)
        return 200, {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": [{"index": i, "code": code, "message": message} for i, code, message in result.rejected],
        }

    # record_interactions takes its own transactions (it retries a lost race); event ids keep it once.
    return run_write(_engine(request), principal, key, write, shared_transaction=False)


# --- upsells ----------------------------------------------------------------------------------------


@router.get("/v1/customers/{customer_id}/upsells", tags=["upsells"], responses={**PROBLEMS, 200: {"model": UpsellsOut}})
def customer_upsells(customer_id: str, request: Request, principal: Caller):
    """The customer's open recommendations as cards, and the recommended next service."""
    cid = parse_id(customer_id, "customer")
    with _read(request) as conn:
        _known_customer(conn, principal, cid)
        cards = upsell_queries.customer_cards(conn, cid)
        next_service = upsell_queries.recommended_next_service(conn, cid)
    return _json({"data": cards, "recommended_next_service": next_service})


@router.post(
    "/v1/upsells/{recommendation_id}/{event}", tags=["upsells"], responses={**PROBLEMS, 200: {"model": UpsellEventOut}}
)
def upsell_event(
    recommendation_id: str,
    event: Literal["shown", "clicked", "purchased"],
    request: Request,
    principal: Caller,
    key: Key,
):
    """Sets the recommendation's shown, clicked or purchased time once, with its CRM interaction."""
    rid, customer = parse_id(recommendation_id, "upsell recommendation"), principal.customer()

    def write(db):
        return 200, _json(upsells.record_upsell_event(db, rid, customer, event))

    return run_write(_engine(request), principal, key, write)
