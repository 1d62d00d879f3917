"""Why an email failed, read from what the outbox stores (``last_error``), and whether an
admin's retry can help.

The job writes a failed row's ``last_error`` in a few forms (``outbox.record`` and
``sender._outcome_of_error``): ``"<status> <name>: <message>"`` for a request Resend
refused, ``"rejected by Resend: <message>"`` for one email of a batch it refused,
``"could not render: <error>"`` for a template that failed, ``"Resend could not be
reached: …"`` for a timeout or a refused connection, each behind
``"gave up after <n> attempts: "`` once the attempts are used up. ``CAUSES`` reads them
in order, the first whose words occur in the lower-cased error wins:

| cause          | words (any of)                                    | retry helps                |
|----------------|---------------------------------------------------|----------------------------|
| ``address``    | suppressed, bounced, complained, invalid ``to``…  | no: the address is the problem |
| ``template``   | could not render                                  | after the template is fixed |
| ``key``        | 401, 403, missing/invalid/restricted API key      | after the key is fixed      |
| ``rate_limited`` | 429, rate limit, too many requests              | yes (also all at once)      |
| ``outage``     | 5xx, could not be reached, timed out, no answer…  | yes (also all at once)      |
| ``rejected``   | 400, 422, validation error, rejected by Resend    | after the content is fixed  |
| ``other``      | anything else, or no error recorded               | maybe: read the error       |

``classify`` is the rule in Python: the job stores its code in the row's ``failure_cause``
when it records the failure, and the Emails page groups and filters by that column
(``queries.emails.failure_groups``). ``CAUSE`` is the same rule as a SQL expression, which
fills the column of the failed rows written before it existed (``classify_failed``): both use
"the words occur in the text" (``in`` / ``strpos``), and the tests check that they agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.core.schema import email_outbox


@dataclass(frozen=True)
class Cause:
    code: str
    label: str
    sentence: str  # what happened and what to do, one sentence
    retry: bool  # an admin's retry can help (maybe after a fix)
    bulk: bool  # offered as one "Retry all" for the whole group
    words: tuple[str, ...]  # lower-case text whose presence in last_error means this cause


CAUSES = (
    Cause(
        "address",
        "Suppressed or invalid address",
        "Resend will not deliver to these addresses (bounced, marked as spam, or not a valid address): "
        "correct the address on the platform; sending again cannot help.",
        retry=False,
        bulk=False,
        words=(
            "suppress",
            "bounced",
            "complain",
            "invalid `to`",
            "invalid to field",
            "invalid email address",
            "invalid recipient",
            "not a valid email",
            "blocked recipient",
        ),
    ),
    Cause(
        "template",
        "Template error",
        "The email could not be made from its template: once the template is fixed, retry them.",
        retry=True,
        bulk=False,
        words=("could not render",),
    ),
    Cause(
        "key",
        "Resend key refused",
        "Resend refused the API key: once RESEND_API_KEY is corrected, retry them.",
        retry=True,
        bulk=False,
        words=("401 ", "403 ", "missing_api_key", "invalid_api_key", "restricted_api_key"),
    ),
    Cause(
        "rate_limited",
        "Rate limited by Resend",
        "Resend asked the job to slow down (429): nothing is wrong with these emails, retry them all.",
        retry=True,
        bulk=True,
        words=("429 ", "rate limit", "rate_limit", "too many requests"),
    ),
    Cause(
        "outage",
        "Resend outage",
        "Resend did not answer or failed on its side (5xx, timeouts, refused connections) until the "
        "attempts ran out: once Resend works again, retry them all.",
        retry=True,
        bulk=True,
        words=(
            "500 ",
            "502 ",
            "503 ",
            "504 ",
            "application_error",
            "internal_server_error",
            "service_unavailable",
            "could not be reached",
            "timed out",
            "timeout",
            "answered without content",
            "no answer recorded",
        ),
    ),
    Cause(
        "rejected",
        "Rejected by Resend's checks",
        "Resend refused the email's content or sender (400 or 422): once the sender or template is "
        "corrected, retry them.",
        retry=True,
        bulk=False,
        words=("400 ", "422 ", "validation_error", "rejected by resend", "missing `"),
    ),
)
OTHER = Cause(
    "other",
    "Other errors",
    "Errors the console does not recognise: read each one below before retrying it.",
    retry=True,
    bulk=False,
    words=(),
)
BY_CODE = {cause.code: cause for cause in (*CAUSES, OTHER)}


def classify(last_error: str | None) -> Cause:
    """The cause of a failure from its stored error (``OTHER`` when none matches or none is stored)."""
    text = (last_error or "").lower()
    return next((cause for cause in CAUSES if any(word in text for word in cause.words)), OTHER)


def cause_expression(error: sa.ColumnElement) -> sa.ColumnElement:
    """``classify`` in SQL: the cause's code of ``error``."""
    text = sa.func.lower(sa.func.coalesce(error, ""))
    return sa.case(
        *[
            (sa.or_(*[sa.func.strpos(text, sa.literal(word, sa.Text)) > 0 for word in cause.words]), cause.code)
            for cause in CAUSES
        ],
        else_=OTHER.code,
    )


CAUSE = cause_expression(email_outbox.c.last_error)


def classify_failed(conn: Connection) -> int:
    """Store the cause of every failed row that has none yet (rows failed before step 22) from
    its error, with ``CAUSE``; returns how many rows it classified."""
    o = email_outbox
    unclassified = sa.and_(o.c.status == "failed", o.c.failure_cause.is_(None))
    return conn.execute(o.update().where(unclassified).values(failure_cause=CAUSE)).rowcount
