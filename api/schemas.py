"""The JSON bodies of the routes, as OpenAPI shows them.

Requests: numbers and text of exact JSON types (ids and times are text), no unknown fields;
values are the domain's to check. Answers: what the routes return (GET routes are validated
against them; the POST answers are built in the route and replayed as stored).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StrictStr

from dashboard.core.schema import SESSION_TYPES
from dashboard.domain.funnel.interactions import MAX_BATCH


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReviewIn(Body):
    session_id: uuid.UUID
    rating: StrictInt
    text: StrictStr | None = None


class FollowUpIn(Body):
    parent_session_id: uuid.UUID
    follow_up_type: StrictStr
    text: StrictStr


class BookingCheckIn(Body):
    mechanic_id: uuid.UUID
    start: AwareDatetime
    session_type: Literal[SESSION_TYPES]


class InteractionsIn(Body):
    events: list[Any] = Field(
        max_length=MAX_BATCH,
        description="each {event_id, customer_id, interaction_type, occurred_at, session_id?, request_id?, metadata?}",
    )


# --- answers -------------------------------------------------------------------------------------


class ReviewOut(BaseModel):
    id: uuid.UUID
    status: Literal["published", "pending"]
    flags: list[str]


class HelpfulOut(BaseModel):
    review_id: uuid.UUID
    counted: bool


class ProfileOut(BaseModel):
    mechanic_id: uuid.UUID
    name: str
    bio: str | None
    years_experience: int | None
    specialties: list[str]
    average_rating: float
    review_count: int
    ranking_score: float
    rank: int
    rating_distribution: dict[int, int]


class PublishedReview(BaseModel):
    id: uuid.UUID
    rating: int
    review_text: str | None
    helpful_count: int
    created_at: dt.datetime


class ReviewsPage(BaseModel):
    data: list[PublishedReview]
    next_cursor: str | None


class SlotOut(BaseModel):
    start: dt.datetime
    end: dt.datetime
    price_cents: int
    multiplier: str


class SlotsOut(BaseModel):
    data: dict[str, list[SlotOut]]


class BookableOut(BaseModel):
    bookable: Literal[True]
    price_cents: int
    start: dt.datetime
    end: dt.datetime
    multiplier: str


class QuoteOut(BaseModel):
    eligible: bool
    reason: str | None
    price_cents: int | None
    plan: str


class FollowUpOut(BaseModel):
    id: uuid.UUID
    parent_session_id: uuid.UUID
    follow_up_type: str
    plan: str
    price_cents: int
    state: Literal["open"]


class Rejected(BaseModel):
    index: int
    code: str
    message: str


class IngestOut(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[Rejected]


class UpsellCard(BaseModel):
    id: uuid.UUID
    kind: str
    title: str
    description: str | None
    price_cents: int
    reason: str


class NextService(BaseModel):
    kind: str
    title: str
    price_cents: int
    reason: str


class UpsellsOut(BaseModel):
    data: list[UpsellCard]
    recommended_next_service: NextService | None


class UpsellEventOut(BaseModel):
    recommendation_id: uuid.UUID
    event: Literal["shown", "clicked", "purchased"]
    at: dt.datetime
    changed: bool
    message: str


class ProblemOut(BaseModel):
    """RFC 9457 problem details; ``code`` is stable."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    reason: str | None = Field(
        None,
        description="With not_bookable: taken, outside_hours, day_off, too_soon, "
        "price_changed, not_taking_bookings, no_price or invalid.",
    )


PROBLEMS = {
    status: {"model": ProblemOut, "content": {"application/problem+json": {}}}
    for status in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}
