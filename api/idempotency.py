"""``Idempotency-Key`` on every POST, and the one transaction of each write.

The first request with a key claims it (a row of ``api_idempotency`` holding the
request's hash), runs the domain write on the same connection and stores the answer,
all in one transaction: either the write and its stored answer commit together or
neither does, so a retry after a crash runs the write again instead of losing it or
doing it twice. A retry with the same key and the same request gets the stored
answer (header ``Idempotent-Replayed: true``); the same key with another request is
refused with 422. On PostgreSQL a retry that arrives while the first is still running
waits for it on the key's row and then gets its answer.

A rejection by the domain rules (4xx) writes nothing and is stored on its own, so its
retry gets the same answer too. On DuckDB the writes of one process take turns (it has
no row locks). Answers are kept for a day (``REPLY_DAYS``; each process
prunes older ones hourly). A transaction that loses a race (``retry_on_conflict``:
DuckDB checks at commit) runs again from the claim.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from api.auth import Principal
from api.problems import MEDIA_TYPE, Problem, from_domain, problem_body
from dashboard.core.db import one_writer, retry_on_conflict
from dashboard.core.schema import api_idempotency

HEADER = "Idempotency-Key"
KEY_MAX_CHARS = 255
REPLAYED = "Idempotent-Replayed"
CLAIMED = 0  # status_code of a claimed key until its answer is stored (in the same transaction)
REPLY_DAYS = 1  # stored answers are kept this long; a key seen again later is a new request
PRUNE_EVERY = 3600.0  # seconds between two prunings by one process
_pruned_at: dict[str, float] = {}


@dataclass(frozen=True)
class IdempotencyKey:
    key: str
    request_hash: str


async def idempotency_key(request: Request) -> IdempotencyKey:
    """The request's key and a hash of what it asks (method, path, query, acting customer, body)."""
    key = request.headers.get(HEADER)
    if key is None or not key.strip():
        raise Problem(
            400, "idempotency_key_required", f"Every POST needs an {HEADER} header (e.g. a UUID made for this request)."
        )
    key = key.strip()
    if len(key) > KEY_MAX_CHARS or not key.isprintable() or not key.isascii():
        raise Problem(
            400, "invalid_idempotency_key", f"The {HEADER} is printable ASCII of at most {KEY_MAX_CHARS} characters."
        )
    body = await request.body()
    try:
        body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        pass  # not JSON: the body's own bytes; the route's validation refuses it anyway
    digest = hashlib.sha256()
    for part in (
        request.method,
        request.url.path,
        request.url.query,
        request.headers.get("X-Pitwall-Customer", "").strip(),
    ):
        digest.update(part.encode() + b"\x00")
    digest.update(body)
    return IdempotencyKey(key, digest.hexdigest())


class InTransaction:
    """Stands in for the engine a domain write takes: its ``begin()`` and ``connect()``
    hand out the request's connection, inside the request's one transaction."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.dialect = conn.dialect

    @contextlib.contextmanager
    def begin(self):
        yield self.conn

    connect = begin


def _response(status: int, body: dict, replayed: bool = False, headers: dict | None = None) -> JSONResponse:
    headers = {**(headers or {}), **({REPLAYED: "true"} if replayed else {})}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE if status >= 400 else None, headers=headers)


def _stored(conn: Connection, principal: Principal, key: IdempotencyKey) -> JSONResponse:
    t = api_idempotency
    row = conn.execute(
        sa.select(t.c.request_hash, t.c.status_code, t.c.response_body).where(
            t.c.principal == principal.name, t.c.idempotency_key == key.key
        )
    ).one()
    if row.request_hash != key.request_hash:
        raise Problem(
            422,
            "idempotency_key_reused",
            f"This {HEADER} was used for another request; use a new key for each request.",
        )
    return _response(row.status_code, json.loads(row.response_body), replayed=True)


def _claim(conn: Connection, principal: Principal, key: IdempotencyKey, status: int = CLAIMED, body: str = "") -> bool:
    return (
        conn.execute(
            pg_insert(api_idempotency)
            .values(
                principal=principal.name,
                idempotency_key=key.key,
                request_hash=key.request_hash,
                status_code=status,
                response_body=body,
            )
            .on_conflict_do_nothing()
            .returning(api_idempotency.c.principal)
        ).first()
        is not None
    )


def prune_replies(engine: Engine, days: int = REPLY_DAYS) -> int:
    """Delete the stored answers older than ``days``; returns how many."""
    t = api_idempotency
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    with engine.begin() as conn:
        return conn.execute(t.delete().where(t.c.created_at < cutoff)).rowcount


def _prune_now_and_then(engine: Engine) -> None:
    now, where = time.monotonic(), engine.url.render_as_string(hide_password=True)
    if now - _pruned_at.get(where, -PRUNE_EVERY) >= PRUNE_EVERY:
        _pruned_at[where] = now
        prune_replies(engine)


def run_write(
    engine: Engine,
    principal: Principal,
    key: IdempotencyKey,
    write: Callable[[Any], tuple[int, dict]],
    *,
    shared_transaction: bool = True,
) -> JSONResponse:
    """Run ``write`` once per key: given the transaction's engine stand-in (or, with
    ``shared_transaction`` false, the engine, for a write that takes its own transactions
    and is safe to repeat), it returns the answer's status and body. On DuckDB, which has no
    row locks, this process's writes take turns (``one_writer``): its threads would race past
    the domain's rules."""
    with one_writer(engine):
        _prune_now_and_then(engine)
        return _run_write(engine, principal, key, write, shared_transaction)


def _run_write(engine: Engine, principal: Principal, key: IdempotencyKey, write, shared_transaction: bool):
    try:
        if shared_transaction:
            stored, status, body = retry_on_conflict(lambda: _in_one_transaction(engine, principal, key, write))
            if stored is not None:
                return stored
        else:
            with engine.connect() as conn:
                if _exists(conn, principal, key):
                    return _stored(conn, principal, key)
            status, body = write(engine)
            with engine.begin() as conn:
                if not _claim(conn, principal, key, status, json.dumps(body)):
                    return _stored(conn, principal, key)
    except Exception as exc:  # a rejection is stored below; anything else is answered by problems.CatchAll
        problem = exc if isinstance(exc, Problem) else from_domain(exc)
        if problem is None or not 400 <= problem.status < 500 or problem.status == 429:
            raise
        body = problem_body(problem.status, problem.code, problem.detail, **problem.extra)
        with engine.begin() as conn:
            if not _claim(conn, principal, key, problem.status, json.dumps(body)):
                return _stored(conn, principal, key)
        return _response(problem.status, body, headers=problem.headers)
    return _response(status, body)


def _in_one_transaction(engine: Engine, principal: Principal, key: IdempotencyKey, write):
    """(the stored answer, or None with the status and body of the write just committed)."""
    with engine.begin() as conn:
        if not _claim(conn, principal, key):
            return _stored(conn, principal, key), None, None
        status, body = write(InTransaction(conn))
        _store(conn, principal, key, status, body)
    return None, status, body


def _exists(conn: Connection, principal: Principal, key: IdempotencyKey) -> bool:
    t = api_idempotency
    return (
        conn.execute(
            sa.select(t.c.status_code).where(t.c.principal == principal.name, t.c.idempotency_key == key.key)
        ).first()
        is not None
    )


def _store(conn: Connection, principal: Principal, key: IdempotencyKey, status: int, body: dict) -> None:
    t = api_idempotency
    conn.execute(
        t.update()
        .where(t.c.principal == principal.name, t.c.idempotency_key == key.key)
        .values(status_code=status, response_body=json.dumps(body))
    )
