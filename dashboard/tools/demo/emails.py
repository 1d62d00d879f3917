"""The email outbox: milestone emails already due, as the email job leaves them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dashboard.domain.emails.failures import classify
from dashboard.tools.demo.arrays import NAT, minutes, null_unless, take, take_or_null, ts, uuids
from dashboard.tools.demo.mechanics import Mechanics
from dashboard.tools.demo.plan import Plan
from dashboard.tools.demo.vocabulary import EMAIL_REFUSED, EMAIL_TRANSIENT, SUPPORT_EMAIL

EMAIL_BACKLOG = np.timedelta64(2, "h")  # emails due this close to now still wait in the outbox
EMAIL_MAX_ATTEMPTS = 5  # the email job's default


def emails_table(rng, plan: Plan, c: dict, ses: dict, mech: Mechanics) -> pa.Table:
    """Milestone emails already due: mostly sent, a few failed, skipped for opted-out customers."""
    could_start = np.maximum(ses["scheduled"], ses["accepted"])
    late = ses["started"] - could_start
    events = (  # milestone, rows, time, recipient (0 customer, 1 mechanic, 2 support)
        ("booking_confirmed", np.ones(len(late), bool), ses["created"], 0),
        ("mechanic_assigned", ~np.isnat(ses["accepted"]), ses["accepted"], 0),
        (
            "session_starting",
            ~np.isnat(ses["started"]) & (ses["scheduled"] - minutes(5) > ses["created"]),
            ses["scheduled"] - minutes(5),
            0,
        ),
        ("session_ended", ~np.isnat(ses["ended"]), ses["ended"], 0),
        ("summary_delivered", ~np.isnat(ses["summary"]), ses["summary"], 0),
        ("mechanic_nudge", late > minutes(3), could_start + minutes(3), 1),
        ("support_alert", late > minutes(8), could_start + minutes(8), 2),
    )
    rows, milestone, at, to = [], [], [], []
    for i, (_, mask, when, recipient) in enumerate(events):
        r = np.nonzero(mask & (when < plan.now))[0]
        rows.append(r), milestone.append(np.full(len(r), i)), at.append(when[r]), to.append(np.full(len(r), recipient))
    row, milestone, at, to = map(np.concatenate, (rows, milestone, at, to))
    k = len(row)
    customer = ses["cust"][row]
    recipient = pc.if_else(
        pa.array(to == 0),
        c["emails"].take(pa.array(customer)),
        pc.if_else(
            pa.array(to == 1),
            take_or_null(mech.emails, np.where(to == 1, ses["mech"][row], -1)),
            pa.scalar(SUPPORT_EMAIL),
        ),
    )
    # The job sends most at the first attempt, some after retries; Resend refuses a few
    # addresses, and the job gives up on a few after the maximum attempts. Emails due in the
    # last EMAIL_BACKLOG still wait: most not tried yet, some rate-limited and due again soon.
    u = rng.random(k)
    skipped = (to == 0) & c["opt_out"][customer]
    waiting = ~skipped & (at >= plan.now - EMAIL_BACKLOG)
    retrying = waiting & (u < 0.3)
    done = ~skipped & ~waiting
    refused, gave_up = done & (u < 0.006), done & (u >= 0.006) & (u < 0.012)
    status = np.select([skipped, waiting, refused | gave_up], ["skipped", "pending", "failed"], "sent")
    attempts = np.select(
        [skipped | (waiting & ~retrying), retrying, refused, gave_up, u < 0.06],
        [0, rng.integers(1, EMAIL_MAX_ATTEMPTS, k), 1, EMAIL_MAX_ATTEMPTS, rng.integers(2, 4, k)],
        1,
    )
    backoff = minutes(2.0 ** np.maximum(attempts - 1, 0))  # the job's wait after an attempt: 1, 2, 4 ... minutes
    done_at = at + (backoff - minutes(1)) + minutes(rng.uniform(0.02, 0.5, k))  # after 1 + 2 + ... minutes of retries
    tried_at = at + (plan.now - at) * rng.random(k)  # a waiting email's last attempt
    errors = (
        *EMAIL_REFUSED,
        *(f"gave up after {EMAIL_MAX_ATTEMPTS} attempts: {e}" for e in EMAIL_TRANSIENT),
        EMAIL_TRANSIENT[0],
    )
    error = np.select(
        [refused, gave_up, retrying],
        [
            rng.integers(0, len(EMAIL_REFUSED), k),
            len(EMAIL_REFUSED) + rng.integers(0, len(EMAIL_TRANSIENT), k),
            len(errors) - 1,
        ],
        -1,
    )
    sent = status == "sent"
    causes = pa.array([classify(e).code for e in errors])  # what the job stores when it records the failure
    return pa.table(
        {
            "id": uuids(rng, k),
            "session_id": ses["ids"].take(pa.array(row)),
            "milestone": take([e[0] for e in events], milestone),
            "recipient": recipient,
            "status": pa.array(status.tolist(), pa.string()),
            "attempts": pa.array(attempts, pa.int32()),
            "next_attempt_at": ts(np.select([retrying, done & ~sent], [tried_at + backoff, done_at], at)),
            "last_error": take_or_null(pa.array(errors), error),
            "failure_cause": take_or_null(causes, np.where(status == "failed", error, -1)),
            "skip_reason": null_unless(skipped, pa.array(np.full(k, "customer opted out of emails").tolist())),
            "provider_message_id": null_unless(sent, uuids(rng, k)),
            "sent_at": ts(np.where(sent, done_at, NAT)),
            "updated_at": ts(np.select([done, retrying], [done_at, tried_at], at)),
            "created_at": ts(at),
        }
    )
