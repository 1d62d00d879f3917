"""Shared pieces of the email tests: a loopback Resend, settings that point at it
(also as the environment of a job subprocess), sessions at each stage of their
life written row by row, and a worker that stops between sending and recording."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from dashboard.core import schema as s
from dashboard.domain.emails.outbox import claim, enqueue
from dashboard.domain.emails.render import load_brand
from dashboard.domain.emails.sender import send_batch
from dashboard.domain.emails.settings import EmailSettings, load_email_settings
from dashboard.domain.emails.worker import render_batch
from tests.local_resend import LocalResend

NOW = dt.datetime(2026, 3, 3, 12, 0, tzinfo=dt.timezone.utc)
MINUTE = dt.timedelta(minutes=1)
SUPPORT = "support@pitwall.example"


@pytest.fixture
def resend_api():
    with LocalResend() as server:
        yield server


def settings_env(server: LocalResend, **env: str) -> dict[str, str]:
    return {"RESEND_API_KEY": server.api_key, "RESEND_API_URL": server.url,
            "PITWALL_EMAIL_FROM": "Pitwall <mail@pitwall.example>", "PITWALL_SUPPORT_EMAIL": SUPPORT,
            "PITWALL_APP_URL": "https://app.example.com", **env}


def settings_for(server: LocalResend, **env: str) -> EmailSettings:
    return load_email_settings(settings_env(server, **env), secrets={})


def add_person(conn, email: str, name: str | None = "Sam Driver", *, opt_out: bool = False,
               timezone: str = "UTC") -> uuid.UUID:
    uid = uuid.uuid4()
    conn.execute(s.users.insert().values(id=uid, email=email))
    conn.execute(s.profiles.insert().values(id=uid, full_name=name, email_opt_out=opt_out, timezone=timezone))
    return uid


def add_mechanic(conn, email: str = "mechanic@example.com", name: str = "Alex Wrench") -> uuid.UUID:
    uid = uuid.uuid4()
    conn.execute(s.users.insert().values(id=uid, email=email))
    conn.execute(s.mechanics.insert().values(user_id=uid, display_name=name, specialties=["brakes"],
                                             avg_rating=4.5, total_reviews=10, years_experience=7))
    return uid


def add_session(conn, customer_id: uuid.UUID, *, status: str = "scheduled", mechanic_id=None,
                created_at: dt.datetime = NOW - MINUTE, scheduled_at: dt.datetime = NOW + dt.timedelta(days=1),
                **columns) -> uuid.UUID:
    request_id = uuid.uuid4()
    conn.execute(s.requests.insert().values(id=request_id, customer_id=customer_id, vehicle_make="Honda",
                                            vehicle_model="Civic", vehicle_year=2017, category="brakes",
                                            description="Grinding noise", status="matched"))
    sid = uuid.uuid4()
    conn.execute(s.sessions.insert().values(id=sid, request_id=request_id, customer_id=customer_id,
                                            mechanic_id=mechanic_id, status=status, created_at=created_at,
                                            scheduled_at=scheduled_at, price_cents=4900, **columns))
    return sid


def delivered_outbox_ids(server: LocalResend) -> list[str]:
    """The outbox id of every email the server delivered (one entry per delivery)."""
    return [tag["value"] for d in server.deliveries for tag in d.email["tags"] if tag["name"] == "outbox_id"]


def crash_after_sending(engine, settings: EmailSettings, now: dt.datetime) -> str:
    """What a worker killed between Resend's answer and its commit leaves behind: the due emails
    enqueued, one batch claimed and sent, nothing recorded. Returns the batch's key."""
    with engine.begin() as conn:
        enqueue(conn, now, settings)
        batch = claim(conn, now, settings)
    emails, errors = render_batch(batch.rows, batch.facts, settings, load_brand(settings.brand_name))
    assert not errors and send_batch(settings, emails, batch.key).kind == "sent"
    return batch.key
