"""Throughput: ``python -m jobs emails-bench --database URL [--emails 10000] [--workers 1]``.

On a scratch copy of a PostgreSQL database loaded with demo data (``CREATE
DATABASE ... TEMPLATE``; the original is not touched, the copy is dropped at
the end), it books ``--emails`` new sessions for customers who accept email,
so that exactly that many booking confirmations are due, and times the email
job sending them through the real resend SDK to ``jobs.local_resend`` on
loopback, in batches of 100, with ``--workers`` job processes at once. It
prints the time, the rate, the requests made and the duplicates delivered
(an email delivered twice counts once per extra copy). Milestones already due
in the copy are sent first, untimed, so that the timed run sends exactly the
booked emails.
"""

from __future__ import annotations

import collections
import concurrent.futures
import datetime as dt
import multiprocessing
import os
import time

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from dashboard.config import ConfigError, normalize_url
from dashboard.db import check_connection, make_engine
from dashboard.schema import email_outbox, profiles, sessions, users
from jobs.emails.settings import EmailSettings, load_email_settings
from jobs.emails.worker import RunResult, run_once, utc_now
from jobs.local_resend import LocalResend


def _ready() -> None:
    """Nothing: run once in each worker process so that its imports happen before the clock starts."""


def _run(url: str, settings: EmailSettings) -> RunResult:
    engine = make_engine(url)
    try:
        return run_once(engine, settings)
    finally:
        engine.dispose()


def _book(engine, count: int) -> int:
    """Book ``count`` sessions (copies of the latest ones) for customers who accept email."""
    now = utc_now()
    latest = (sa.select(sessions.c.request_id, sessions.c.customer_id, sessions.c.session_type,
                        sessions.c.price_cents)
              .join(profiles, profiles.c.id == sessions.c.customer_id)
              .join(users, users.c.id == sessions.c.customer_id)
              .where(sa.not_(profiles.c.email_opt_out), users.c.email.contains("@"))
              .order_by(sessions.c.created_at.desc()).limit(count).subquery())
    booked = sa.select(latest, sa.literal("scheduled"), sa.literal(now + dt.timedelta(days=1)), sa.literal(now))
    insert = sessions.insert().from_select(
        ["request_id", "customer_id", "session_type", "price_cents", "status", "scheduled_at", "created_at"], booked)
    with engine.begin() as conn:
        return len(conn.execute(insert.returning(sessions.c.id)).all())


def _bench(url: str, count: int, workers: int) -> int:
    with LocalResend() as server:
        settings = load_email_settings({"RESEND_API_KEY": server.api_key, "RESEND_API_URL": server.url}, secrets={})
        warmup = _run(url, settings)
        print(f"already due in the copy, sent first (untimed): {warmup.summary()}")
        before = len(server.deliveries)
        engine = make_engine(url)
        booked = _book(engine, count)
        print(f"booked {booked:,} sessions: {booked:,} booking confirmations due")
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            for ready in [pool.submit(_ready) for _ in range(workers)]:
                ready.result()
            started = time.perf_counter()
            results = list(pool.map(_run, [url] * workers, [settings] * workers))
            elapsed = time.perf_counter() - started
        delivered = collections.Counter(
            tag["value"] for d in server.deliveries[before:] for tag in d.email["tags"] if tag["name"] == "outbox_id")
        with engine.connect() as conn:
            by_status = dict(conn.execute(sa.select(email_outbox.c.status, sa.func.count())
                                          .group_by(email_outbox.c.status)).all())
        engine.dispose()
    sent = sum(r.outcomes["sent"] for r in results)
    print(f"workers {workers}: sent {sent:,} emails in {sum(r.requests for r in results)} batch requests "
          f"in {elapsed:.2f} s = {sent / elapsed:,.0f} emails/s")
    print(f"delivered {len(delivered):,} distinct emails, duplicates {sum(delivered.values()) - len(delivered)}; "
          f"outbox now {by_status}")
    return 0 if sent == booked and len(delivered) == booked else 1


def main(args) -> int:
    url = make_url(normalize_url(args.database))
    if url.get_backend_name() != "postgresql":
        raise ConfigError("emails-bench runs on PostgreSQL: pass --database postgresql://...")
    if not 1 <= args.emails <= 1_000_000 or not 1 <= args.workers <= 16:
        raise ConfigError("--emails must be 1 to 1,000,000 and --workers 1 to 16")
    probe = make_engine(url.render_as_string(hide_password=False))
    check_connection(probe)
    probe.dispose()  # a template database must have no open connection
    source, copy = url.database, f"{url.database}_emailbench_{os.getpid()}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    started = time.perf_counter()
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{copy}" TEMPLATE "{source}"'))
    except sa.exc.OperationalError as exc:
        raise ConfigError(f"Cannot copy {source}: {str(exc.orig).splitlines()[0]} "
                          "(close the other connections to it and try again)") from None
    print(f"copied {source} to {copy} in {time.perf_counter() - started:.1f} s")
    try:
        return _bench(url.set(database=copy).render_as_string(hide_password=False), args.emails, args.workers)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)'))
        admin.dispose()
