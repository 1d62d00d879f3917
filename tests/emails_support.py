"""Shared pieces of the email tests: settings that point at the loopback Resend (the
``resend_api`` fixture; also as the environment of a job subprocess), the customer,
mechanic and booking the sessions are written with (``tests.factories``), and a worker
that stops between sending and recording."""

from __future__ import annotations

import datetime as dt

from dashboard.domain.emails.outbox import claim, enqueue
from dashboard.domain.emails.render import load_brand
from dashboard.domain.emails.sender import send_batch
from dashboard.domain.emails.settings import EmailSettings, load_email_settings
from dashboard.domain.emails.worker import render_batch
from tests.local_resend import LocalResend

NOW = dt.datetime(2026, 3, 3, 12, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)
SUPPORT = "support@pitwall.example"


def settings_env(server: LocalResend, **env: str) -> dict[str, str]:
    return {
        "RESEND_API_KEY": server.api_key,
        "RESEND_API_URL": server.url,
        "PITWALL_EMAIL_FROM": "Pitwall <mail@pitwall.example>",
        "PITWALL_SUPPORT_EMAIL": SUPPORT,
        "PITWALL_APP_URL": "https://app.example.com",
        **env,
    }


def settings_for(server: LocalResend, **env: str) -> EmailSettings:
    return load_email_settings(settings_env(server, **env), secrets={})


DRIVER = "Sam Driver"  # every customer's name
MECHANIC = {
    "name": "Alex Wrench",
    "email": "mechanic@example.com",
    "specialties": ["brakes"],
    "avg_rating": 4.5,
    "total_reviews": 10,
    "years_experience": 7,
}  # add_mechanic's arguments
REQUEST = {
    "vehicle_make": "Honda",
    "vehicle_model": "Civic",
    "vehicle_year": 2017,
    "category": "brakes",
    "description": "Grinding noise",
    "status": "matched",
}


def booked(**columns) -> dict:
    """``add_session``'s arguments for a session booked a minute before NOW for tomorrow at $49.00,
    from a brakes request on a 2017 Honda Civic; ``columns`` override any of them."""
    return {
        "status": "scheduled",
        "request": REQUEST,
        "created_at": NOW - MINUTE,
        "scheduled_at": NOW + dt.timedelta(days=1),
        "price_cents": 4900,
        **columns,
    }


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
