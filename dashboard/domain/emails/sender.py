"""One Resend request per batch, through the resend SDK, and what its answer means."""

from __future__ import annotations

from dataclasses import dataclass, field

import resend
from resend.exceptions import NoContentError, ResendError

from dashboard.domain.emails.settings import EmailSettings


@dataclass(frozen=True)
class Outcome:
    """``sent``: Resend took the emails (``ids`` by position, None where unknown; ``errors``
    by position for the emails it refused; ``earlier``: it took them with an earlier request
    under the same key, which held other rows). ``retry``: try again later, not before
    ``retry_after`` seconds. ``failed``: Resend refused the request for good."""

    kind: str
    message: str = ""
    ids: list[str | None] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)
    retry_after: float | None = None
    rate_limited: bool = False
    earlier: bool = False


def send_batch(settings: EmailSettings, emails: list[dict], key: str) -> Outcome:
    """Send ``emails`` as one batch whose idempotency key is ``key`` (permissive validation:
    one invalid address does not hold back the others)."""
    resend.api_key = settings.api_key
    resend.api_url = settings.api_url
    try:
        answer = resend.Batch.send(emails, {"idempotency_key": key, "batch_validation": "permissive"})
    except ResendError as exc:
        return _outcome_of_error(exc)
    except NoContentError:
        return Outcome("retry", "Resend answered without content")
    errors = {int(e["index"]): str(e.get("message", "rejected")) for e in answer.get("errors") or []}
    accepted = iter(item["id"] for item in answer["data"])
    return Outcome(
        "sent", ids=[None if i in errors else next(accepted, None) for i in range(len(emails))], errors=errors
    )


def _outcome_of_error(exc: ResendError) -> Outcome:
    try:
        code = int(exc.code)
    except (TypeError, ValueError):
        code = 500
    message = f"{code} {exc.error_type}: {exc.message}"
    if exc.error_type == "HttpClientError":  # the SDK's wrapper around a connection error or timeout
        message = f"Resend could not be reached: {exc.message}"
    if code == 409 and exc.error_type == "invalid_idempotent_request":
        # The key was used before: the first request of this batch was processed.
        return Outcome("sent", f"already sent under this idempotency key ({message})", earlier=True)
    if code == 429:
        return Outcome("retry", message, retry_after=_retry_after(exc), rate_limited=True)
    if code >= 500 or code == 409:  # 409 here: the same batch is still in flight
        return Outcome("retry", message, retry_after=_retry_after(exc))
    return Outcome("failed", message)  # 400, 401, 403, 422, ...: retrying cannot help


def _retry_after(exc: ResendError) -> float | None:
    headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
    try:
        return max(0.0, float(headers["retry-after"]))
    except (KeyError, ValueError):
        return None
