"""Engines for PostgreSQL and the embedded DuckDB; ``DatabaseUnavailable`` (core/errors.py)
is the one error users see when the database cannot be reached.

Engines hide SQL parameters from their errors and logs (``hide_parameters``):
those values are customer emails and search text. Messages name the database
only through ``redact``, which removes every credential of its URL.
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from dashboard.core.errors import DatabaseUnavailable


def is_duckdb(bind) -> bool:
    return bind.dialect.name == "duckdb"


SECRET_QUERY_KEY = re.compile(r"pass|secret|token|key", re.I)  # password, sslpassword, passfile, sslkey, ...
HIDDEN = "***"


def is_write_conflict(exc: BaseException) -> bool:
    """A transaction lost a race with a concurrent one and may be retried: a unique key
    taken meanwhile, or (DuckDB, which checks at commit instead of waiting) a conflict."""
    if isinstance(exc, sa.exc.IntegrityError):
        return True
    text = str(getattr(exc, "orig", None) or exc)
    return (
        isinstance(exc, sa.exc.OperationalError)
        and "TransactionContext Error" in text
        and re.search(r"conflict|constraint violation", text, re.I) is not None
    )


T = TypeVar("T")
CONFLICT_ATTEMPTS = 5
CONFLICT_BACKOFF_SECONDS = 0.02


def retry_on_conflict(write: Callable[[], T], attempts: int = CONFLICT_ATTEMPTS) -> T:
    """Run the transaction ``write`` again (it reads afresh) when it lost a race
    (``is_write_conflict``), up to ``attempts`` times in all, waiting a little longer each
    time so the winner can commit."""
    attempt = 1
    while True:
        try:
            return write()
        except sa.exc.DBAPIError as exc:
            if attempt >= attempts or not is_write_conflict(exc):
                raise
            time.sleep(CONFLICT_BACKOFF_SECONDS * attempt * (1 + random.random()))
            attempt += 1


def redact(url: str) -> str:
    """The URL without any credential, for messages and logs: the password of the user part
    and every query parameter that holds one (``?password=``, ``sslpassword``, ``sslkey``...)."""
    try:
        parsed = make_url(url)
    except Exception:  # not even a URL: show nothing of it
        return HIDDEN
    query = {key: (HIDDEN if SECRET_QUERY_KEY.search(key) else value) for key, value in parsed.query.items()}
    return parsed.set(query=query).render_as_string(hide_password=True).replace("%2A%2A%2A", HIDDEN)


def _secrets_of(url: str) -> list[str]:
    """The credential values in ``url`` (to scrub them from a driver's message)."""
    try:
        parsed = make_url(url)
    except Exception:
        return []
    values = [parsed.password] + [value for key, value in parsed.query.items() if SECRET_QUERY_KEY.search(key)]
    flat = [v for value in values if value for v in ([value] if isinstance(value, str) else value)]
    return [str(v) for v in flat if str(v)]


def locking(conn, stmt, *, read: bool = False, **for_update):
    """``stmt`` locking the rows it reads on PostgreSQL (FOR UPDATE, or FOR SHARE when ``read``;
    ``for_update`` as ``with_for_update`` takes it: ``skip_locked``, ``key_share``) until the
    transaction ends; unchanged on DuckDB, which has one writer and no row locks."""
    return stmt.with_for_update(read=read, **for_update) if conn.dialect.name == "postgresql" else stmt


_DUCKDB_WRITERS: dict[str, threading.Lock] = {}


def one_writer(engine: Engine) -> contextlib.AbstractContextManager:
    """Around a write transaction: on DuckDB, one such transaction of this process at a time,
    since DuckDB refuses a second writer of the same rows instead of making it wait (and the
    embedded demo serves every browser session from one process). Nothing on PostgreSQL,
    whose locks make writers wait."""
    if not is_duckdb(engine):
        return contextlib.nullcontext()
    return _DUCKDB_WRITERS.setdefault(engine.url.render_as_string(hide_password=False), threading.Lock())


def make_engine(url: str) -> Engine:
    """An engine whose sessions run in UTC; ``auth.*`` maps to DuckDB's default schema."""
    if url.startswith("duckdb://"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, hide_parameters=True, execution_options={"schema_translate_map": {"auth": None}})
        sa.event.listen(engine, "connect", _duckdb_session_utc)
        return engine
    return sa.create_engine(
        url,
        hide_parameters=True,  # errors and logs never carry the values (customer emails, search text)
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        connect_args={"connect_timeout": 5, "options": "-c timezone=UTC"},
    )


def _duckdb_session_utc(dbapi_connection, _record) -> None:
    # The TimeZone setting needs ICU, which is loaded only once a connection exists.
    dbapi_connection.execute("SET TimeZone = 'UTC'")


def explain_failure(exc: BaseException, url: str) -> str:
    """One line that says what is wrong and what to check, never a traceback."""
    if isinstance(exc, DatabaseUnavailable):  # explained already
        return str(exc)
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for secret in _secrets_of(url):
        text = text.replace(secret, HIDDEN)
    where = redact(url)
    if url.startswith("duckdb://"):
        if re.search(r"lock|Conflicting lock", text, re.I):
            return (
                f"The embedded database {make_url(url).database} is open in another process "
                "(DuckDB allows one writer): stop the app or run this from its Emails page."
            )
        return f"Cannot open the embedded database {make_url(url).database}: {text}"
    return f"Cannot reach the database at {where}: {text}. Check DATABASE_URL and that the server is running."


def check_connection(engine: Engine) -> None:
    """Raise DatabaseUnavailable with a one-line reason if the database does not answer."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any driver error means "unavailable" to the caller
        raise DatabaseUnavailable(explain_failure(exc, engine.url.render_as_string(hide_password=False))) from exc
