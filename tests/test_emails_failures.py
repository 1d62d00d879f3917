"""Why emails failed and what an admin may do about it: the classifier (pure), a retry refused
where it cannot help, the bulk retry of a Resend outage through the real resend SDK and the
loopback Resend (both backends), refused for permanent failures and stale views, and why "Run
now" is unavailable."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from dashboard.core import schema as s
from dashboard.core.auth import Actor
from dashboard.core.errors import ChangedMeanwhile, Conflict, Invalid, PermissionDenied
from dashboard.domain.emails.failures import BY_CODE, CAUSES, OTHER, classify
from dashboard.domain.emails.outbox import decide, retry_cause
from dashboard.domain.emails.worker import run_now_blocker, run_once
from queries.emails import failure_groups
from tests.emails_support import DRIVER, MINUTE, NOW, booked, settings_for
from tests.factories import add_session, add_user, staff_fixture

ADMIN = Actor("boss@pitwall.example", "admin")
SUPPORT = Actor("help@pitwall.example", "support")
staff = staff_fixture(ADMIN, SUPPORT)


# --- the classifier ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        ("rejected by Resend: Invalid `to` field. The email address needs to follow the format.", "address"),
        ("422 validation_error: This address is on the suppression list", "address"),
        ("REJECTED BY RESEND: EMAIL BOUNCED", "address"),  # case does not matter
        ("gave up after 5 attempts: 503 application_error: Service down", "outage"),
        ("gave up after 5 attempts: Resend could not be reached: timed out", "outage"),
        ("Resend answered without content", "outage"),
        ("gave up after 2 attempts: no answer recorded: the worker stopped while sending", "outage"),
        ("gave up after 5 attempts: 429 rate_limit_exceeded: slow down", "rate_limited"),
        ("could not render: TemplateSyntaxError: unexpected '}'", "template"),
        ("403 invalid_api_key: API key is invalid.", "key"),
        ("422 validation_error: Missing `from` field.", "rejected"),
        ("400 validation_error: bad request", "rejected"),
        ("teapot", "other"),
        ("", "other"),
        (None, "other"),
        ("\x00" * 3 + "<b>x</b>", "other"),
    ],
)
def test_classify(error, cause):
    assert classify(error).code == cause


def test_only_address_failures_are_beyond_a_retry_and_only_transient_ones_go_in_bulk():
    assert [c.code for c in CAUSES if not c.retry] == ["address"]
    assert [c.code for c in CAUSES if c.bulk] == ["rate_limited", "outage"]
    assert OTHER.retry and not OTHER.bulk and BY_CODE["other"] is OTHER
    assert tuple(BY_CODE) == s.EMAIL_FAILURE_CAUSES  # the codes the outbox's failure_cause accepts
    assert all(c.label and c.sentence.endswith(".") for c in (*CAUSES, OTHER))


# --- retries ---------------------------------------------------------------------------


def failed_rows(engine, errors: dict[str, str]) -> list[uuid.UUID]:
    """A failed email per error, with the cause the job stores for it (``errors``: error -> cause)."""
    with engine.begin() as conn:
        sid = add_session(conn, add_user(conn, DRIVER, email="c@example.com"), **booked())
        return [
            conn.execute(
                s.email_outbox.insert()
                .values(
                    session_id=sid,
                    milestone=s.EMAIL_MILESTONES[n],
                    recipient="c@example.com",
                    status="failed",
                    attempts=5,
                    last_error=error,
                    failure_cause=cause,
                    updated_at=NOW - n * MINUTE,
                )
                .returning(s.email_outbox.c.id)
            ).scalar_one()
            for n, (error, cause) in enumerate(errors.items())
        ]


def snapshot(engine) -> tuple:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(s.email_outbox).order_by(s.email_outbox.c.id)).mappings().all()
        audits = conn.execute(sa.select(sa.func.count()).select_from(s.audit_log)).scalar_one()
    return [dict(r) for r in rows], audits


def test_a_retry_is_refused_where_it_cannot_help(engine):
    (suppressed, outage) = failed_rows(
        engine,
        {
            "rejected by Resend: the address is suppressed": "address",
            "gave up after 5 attempts: 503 application_error": "outage",
        },
    )
    before = snapshot(engine)
    with pytest.raises(Conflict, match="Suppressed or invalid address: Resend will not deliver to these addresses"):
        decide(engine, ADMIN, suppressed, "retry", NOW)
    assert snapshot(engine) == before
    decide(engine, ADMIN, outage, "retry", NOW)  # a transient failure may be retried
    assert snapshot(engine)[1] == before[1] + 1


def seen_of(engine, cause: str) -> tuple[int, dt.datetime]:
    with engine.connect() as conn:
        group = failure_groups(conn).set_index("cause").loc[cause]
    return int(group.emails), group.latest_at.to_pydatetime()


def test_bulk_retry_of_an_outage_sends_them_through_resend(engine, resend_api):
    with engine.begin() as conn:
        for n in range(3):
            add_session(conn, add_user(conn, DRIVER, email=f"c{n}@example.com"), **booked())
    settings = settings_for(resend_api, PITWALL_EMAIL_MAX_ATTEMPTS="1")
    resend_api.stop()  # Resend is down: one attempt each, then they fail
    run_once(engine, settings, clock=lambda: NOW)
    resend_api.start()
    with engine.connect() as conn:
        failed = conn.execute(
            sa.select(s.email_outbox.c.last_error, s.email_outbox.c.failure_cause).where(
                s.email_outbox.c.status == "failed"
            )
        ).all()
    assert len(failed) == 3 and all(classify(e).code == cause == "outage" for e, cause in failed)  # stored as read
    seen = seen_of(engine, "outage")
    assert seen[0] == 3

    with pytest.raises(PermissionDenied):
        retry_cause(engine, SUPPORT, "outage", seen=seen, now=NOW + MINUTE)
    assert retry_cause(engine, ADMIN, "outage", seen=seen, now=NOW + MINUTE) == 3
    with pytest.raises(ChangedMeanwhile, match="now 0 emails, you saw 3"):  # a second click: nothing left
        retry_cause(engine, ADMIN, "outage", seen=seen, now=NOW + MINUTE)
    run_once(engine, settings, clock=lambda: NOW + 2 * MINUTE)
    with engine.connect() as conn:
        statuses = conn.execute(sa.select(s.email_outbox.c.status)).scalars().all()
        audits = conn.execute(
            sa.select(s.audit_log.c.action, s.audit_log.c.actor_email).where(s.audit_log.c.action == "email.retry")
        ).all()
    assert statuses == ["sent"] * 3 and len(resend_api.deliveries) == 3
    assert [tuple(a) for a in audits] == [("email.retry", ADMIN.email)] * 3  # one audit row per email


def test_bulk_retry_refuses_permanent_causes_stale_views_and_bad_input(engine):
    failed_rows(
        engine,
        {
            "gave up after 5 attempts: 503 application_error": "outage",
            "gave up after 5 attempts: 502 bad gateway": "outage",
            "rejected by Resend: Invalid `to` field": "address",
            "could not render: KeyError": "template",
        },
    )
    seen = seen_of(engine, "outage")
    before = snapshot(engine)
    for cause, seen_as, error, message in [
        ("address", seen, Invalid, "Suppressed or invalid address: these emails are retried one by one"),
        ("template", seen, Invalid, "Template error: these emails are retried one by one"),
        ("nonsense", seen, Invalid, "Unknown cause of failure 'nonsense'"),
        ("<b>x</b>'; DROP TABLE email_outbox; --", seen, Invalid, "Unknown cause of failure"),
        (None, seen, Invalid, "Unknown cause of failure"),
        ("outage", (2, None), ChangedMeanwhile, "changed meanwhile"),
        ("outage", (3, seen[1]), ChangedMeanwhile, "now 2 emails, you saw 3"),
        ("outage", (2, seen[1] - MINUTE), ChangedMeanwhile, "changed meanwhile"),
        ("outage", (10**30, seen[1]), ChangedMeanwhile, "changed meanwhile"),
        ("outage", ("2", seen[1]), Invalid, "Say how many emails"),
        ("outage", (True, seen[1]), Invalid, "Say how many emails"),
        ("outage", 2, Invalid, "Say how many emails"),
    ]:
        with pytest.raises(error, match=message):
            retry_cause(engine, ADMIN, cause, seen=seen_as, now=NOW)
    assert snapshot(engine) == before
    # the job retried one meanwhile: the admin's view of the group is stale
    with engine.begin() as conn:
        conn.execute(
            s.email_outbox.update()
            .where(s.email_outbox.c.last_error.like("%502%"))
            .values(status="pending", updated_at=NOW + MINUTE)
        )
    with pytest.raises(ChangedMeanwhile, match="now 1 emails, you saw 2"):
        retry_cause(engine, ADMIN, "outage", seen=seen, now=NOW + 2 * MINUTE)


# --- "Run now" ---------------------------------------------------------------------------


def test_run_now_says_why_it_is_unavailable(resend_api):
    settings, keyless = settings_for(resend_api), settings_for(resend_api, RESEND_API_KEY="")
    ready = dict(running=False, due=3, in_flight=0)
    assert run_now_blocker("admin", settings, **ready) is None
    assert run_now_blocker("support", settings, **ready) == (
        "Only admins can run the email job; you are signed in as support."
    )
    assert run_now_blocker("admin", keyless, **ready).startswith("No Resend key is configured: set RESEND_API_KEY")
    assert run_now_blocker("admin", settings, running=True, due=3, in_flight=0).startswith(
        "A run is sending emails right now: wait"
    )
    assert run_now_blocker("admin", settings, running=False, due=3, in_flight=7).startswith(
        "A run is sending emails right now (7 in flight)"
    )
    assert run_now_blocker("admin", settings, running=False, due=0, in_flight=0) == (
        "Nothing is due: no email waits to be sent and no milestone is due yet."
    )
