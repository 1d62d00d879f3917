"""The audit trail: one row per write, in the same transaction as the write.

A row's ``created_at`` is when the change was written (clock time), not when its
transaction began: a long transaction that changes something after a shorter one
committed sorts after it. PostgreSQL's ``clock_timestamp()`` gives that time; DuckDB
has no clock function (its ``now()`` is the transaction's start) and allows one
writing process, so there the time is this process's clock.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from dashboard.core.auth import Actor
from dashboard.core.errors import ChangedMeanwhile
from dashboard.core.schema import audit_log


def _plain(value: Any) -> Any:
    """JSON-safe copy of a row snapshot (uuids, decimals, dates become text)."""
    return json.loads(
        json.dumps(
            value,
            default=lambda v: (
                str(v) if isinstance(v, (uuid.UUID, decimal.Decimal, dt.date, dt.time, dt.datetime)) else repr(v)
            ),
        )
    )


def record_audit(
    conn: Connection,
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: Any,
    before: dict | None = None,
    after: dict | None = None,
    reason: str | None = None,
) -> None:
    """Write an audit row on ``conn``; call it inside the write's transaction."""
    conn.execute(
        audit_log.insert().values(
            actor_email=actor.email,
            actor_role=actor.role,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            before=_plain(before) if before is not None else None,
            after=_plain(after) if after is not None else None,
            reason=reason,
            created_at=_clock(conn),
        )
    )


def _clock(conn: Connection):
    if conn.dialect.name == "postgresql":
        return sa.func.clock_timestamp()
    return dt.datetime.now(dt.UTC)


class _Unchecked:
    def __repr__(self) -> str:
        return "UNCHECKED"


UNCHECKED = _Unchecked()  # "the caller did not say what it saw": an edit without the stale-view check


def unchanged_since_seen(conn: Connection, seen: Any, stored: Any, what: str, entity_type: str, entity_id: Any) -> None:
    """ChangedMeanwhile if the editor saw ``seen`` but ``stored`` is there now (``seen``
    UNCHECKED skips the check): an edit made from an out-of-date view. The message says who
    last changed ``what`` and when, from the audit trail (stored as ``entity_type``/``entity_id``)."""
    if seen is UNCHECKED or stored == seen:
        return
    a = audit_log
    last = conn.execute(
        sa.select(a.c.actor_email, a.c.created_at)
        .where(a.c.entity_type == entity_type, a.c.entity_id == str(entity_id))
        .order_by(a.c.created_at.desc())
        .limit(1)
    ).first()
    by = (
        "meanwhile"
        if last is None
        else (f"by {last.actor_email} at {last.created_at.astimezone(dt.UTC):%d %b %Y %H:%M} UTC")
    )
    raise ChangedMeanwhile(
        f"{what} was changed {by}: reload the page to see the change, then edit again. Nothing was saved."
    )
