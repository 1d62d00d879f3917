"""One run of the email job: enqueue due milestones, then claim, render, send and
record batches until nothing is due, or until Resend asks us to wait (429) or does
not answer (5xx, network): then the run stops, so that an outage costs one attempt
of one batch, not of every row. The job's loop is ``jobs.emails.run_loop``."""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core.audit import record_audit
from dashboard.core.auth import Actor, require_current_role
from dashboard.core.db import is_duckdb
from dashboard.core.schema import email_outbox
from dashboard.core.settings import ConfigError
from dashboard.domain.emails.outbox import Batch, claim, enqueue, record
from dashboard.domain.emails.render import Brand, email_context, load_brand, render
from dashboard.domain.emails.sender import Outcome, send_batch
from dashboard.domain.emails.settings import EmailSettings

Clock = Callable[[], dt.datetime]

# The embedded DuckDB has one writer: in the app, one run at a time (PostgreSQL
# runs can overlap safely, see dashboard.domain.emails.outbox).
_embedded_run = threading.Lock()


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class RunResult:
    enqueued: collections.Counter = field(default_factory=collections.Counter)
    outcomes: collections.Counter = field(default_factory=collections.Counter)  # sent, failed, skipped, pending
    requests: int = 0
    stopped: str | None = None  # why the run stopped before nothing was due

    def summary(self) -> str:
        new = sum(self.enqueued.values())
        line = (
            f"enqueued {new} ({self.enqueued['pending']} to send, {self.enqueued['skipped']} skipped); "
            f"sent {self.outcomes['sent']}, failed {self.outcomes['failed']}, "
            f"skipped {self.outcomes['skipped']}, to retry {self.outcomes['pending']}, "
            f"uncertain {self.outcomes['uncertain']} "
            f"in {self.requests} request{'s' if self.requests != 1 else ''}"
        )
        return line + (f"; stopped early: {self.stopped}" if self.stopped else "")


def check_ready(engine: Engine, settings: EmailSettings) -> None:
    """Raise ConfigError with the fix if the job cannot run against this database."""
    if not settings.api_key:
        raise ConfigError(
            "RESEND_API_KEY is not set (or [resend] api_key in .streamlit/secrets.toml): "
            "the email job needs it to send."
        )
    if not sa.inspect(engine).has_table(email_outbox.name):
        raise ConfigError("The database has no email_outbox table: run `python -m dashboard migrate` first.")


def run_once(engine: Engine, settings: EmailSettings, clock: Clock = utc_now) -> RunResult:
    """Enqueue what is due, then send until nothing is due (or Resend rate-limits us)."""
    check_ready(engine, settings)
    brand = load_brand(settings.brand_name)
    result = RunResult()
    with _embedded_run if is_duckdb(engine) else contextlib.nullcontext():
        with engine.begin() as conn:
            result.enqueued = enqueue(conn, clock(), settings)
        while True:
            with engine.begin() as conn:
                batch = claim(conn, clock(), settings)
            if batch is None:
                break
            result.outcomes.update(batch.finished)
            if batch.rows:
                outcome, done = _send(engine, batch, settings, brand, clock)
                result.outcomes.update(done)
                result.requests += 1
                if outcome.kind == "retry":
                    result.stopped = (
                        "Resend rate limit" if outcome.rate_limited else f"Resend did not answer ({outcome.message})"
                    )
                    break
    return result


def render_batch(rows: list, facts: dict, settings: EmailSettings, brand: Brand) -> tuple[list[dict], dict]:
    """The emails of ``rows`` in their order, and the rows that could not be rendered (id -> error)."""
    emails, render_errors = [], {}
    for row in rows:
        try:
            emails.append(_email(row, facts[row.session_id], settings, brand))
        except Exception as exc:  # a template bug fails this email, not the batch
            render_errors[row.id] = f"{type(exc).__name__}: {exc}"
    return emails, render_errors


def _send(
    engine: Engine, batch: Batch, settings: EmailSettings, brand: Brand, clock: Clock
) -> tuple[Outcome, collections.Counter]:
    emails, render_errors = render_batch(batch.rows, batch.facts, settings, brand)
    outcome = send_batch(settings, emails, batch.key) if emails else Outcome("sent")
    if outcome.earlier:
        outcome = _first_answer(batch, settings, brand, outcome)
    with engine.begin() as conn:
        return outcome, record(conn, batch, outcome, render_errors, clock(), settings)


def _first_answer(batch: Batch, settings: EmailSettings, brand: Brand, conflict: Outcome) -> Outcome:
    """The key's first request was processed (409 for a re-send without the rows the rules now hold
    back): ask again with the first request's rows, in its order, for Resend's first answer and its ids."""
    emails, render_errors = render_batch(batch.first_rows, batch.facts, settings, brand)
    if render_errors:
        return conflict
    again = send_batch(settings, emails, batch.key)
    if again.kind != "sent" or again.earlier:
        return conflict  # the content changed since: the ids stay unknown
    return Outcome(
        "sent",
        "sent by an earlier request under this idempotency key",
        ids=again.ids,
        errors=again.errors,
        earlier=True,
    )


def _email(row, facts, settings: EmailSettings, brand: Brand) -> dict:
    rendered = render(row.milestone, email_context(row.milestone, facts, settings, brand))
    email = {
        "from": settings.sender,
        "to": [row.recipient],
        "subject": rendered.subject,
        "html": rendered.html,
        "text": rendered.text,
        "headers": {"X-Entity-Ref-ID": str(row.id)},  # keeps mail apps from threading distinct emails
        "tags": [{"name": "milestone", "value": row.milestone}, {"name": "outbox_id", "value": str(row.id)}],
    }
    if settings.reply_to:
        email["reply_to"] = settings.reply_to
    return email


def run_running() -> bool:
    """A run holds the embedded database's one writer in this process right now."""
    return _embedded_run.locked()


def run_now_blocker(
    role: str | None, settings: EmailSettings, *, running: bool, due: int, in_flight: int
) -> str | None:
    """Why "Run now" cannot be used now, as a sentence for the page, or None when it can: not an
    admin, no Resend key, a run already sending (``running`` here, or ``in_flight`` rows another
    worker holds under a lease), or nothing due (``due``: outbox rows due now plus milestones due
    and not queued yet)."""
    if role != "admin":
        return f"Only admins can run the email job; you are signed in as {role or 'nobody'}."
    if not settings.api_key:
        return "No Resend key is configured: set RESEND_API_KEY (or [resend] api_key in .streamlit/secrets.toml)."
    if running or in_flight:
        return (
            "A run is sending emails right now"
            + (f" ({in_flight:,} in flight)" if in_flight else "")
            + ": wait for it to finish, then reload the page."
        )
    if not due:
        return "Nothing is due: no email waits to be sent and no milestone is due yet."
    return None


def run_now(engine: Engine, actor: Actor | None, settings: EmailSettings, clock: Clock = utc_now) -> RunResult:
    """The Emails page's "Run now": one run inside the app (admin only), audited with its result."""
    with engine.begin() as conn:
        actor = require_current_role(conn, actor, "admin")
    check_ready(engine, settings)
    result = None
    try:
        result = run_once(engine, settings, clock)
        return result
    finally:
        with engine.begin() as conn:
            record_audit(
                conn,
                actor,
                "email.run_now",
                "email_job",
                clock().isoformat(),
                after={"summary": result.summary()} if result else None,
                reason=None if result else "the run stopped with an error",
            )
