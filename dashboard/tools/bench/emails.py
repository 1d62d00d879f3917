"""Throughput and faults: ``python -m dashboard bench --emails [N] [--workers 1] [--faults] [--database URL]``.

On a scratch copy of a PostgreSQL database loaded with demo data (``CREATE
DATABASE ... TEMPLATE``; the original is not touched, the copy is dropped at
the end), it books N (default 10,000) new sessions for customers who accept email,
so that exactly that many booking confirmations are due, and times the email
job sending them through the real resend SDK to ``tests.local_resend`` on
loopback, in batches of 100, with ``--workers`` job processes at once. It
prints the time, the rate, the requests made and the duplicates delivered
(an email delivered twice counts once per extra copy). Milestones already due
in the copy are sent first, untimed, so that the timed run sends exactly the
booked emails.

``--faults`` sends the booked emails through faults instead: one batch claimed
and sent 25 hours ago by a worker that died before recording it (Resend has
forgotten its idempotency key), a worker process killed with SIGKILL while its
batch is in flight, then a 500 and two 429s, with ``--workers`` processes
running rounds (each round's clock 5 minutes later, so that leases and backoffs
pass) until nothing is due. It prints the emails due, sent, skipped, duplicated
(deliveries beyond the first for one outbox row), lost (due rows neither sent,
skipped nor held) and held as uncertain; it exits 1 on a duplicate or a loss.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import datetime as dt
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core.db import make_engine
from dashboard.core.schema import email_outbox, profiles, sessions, users
from dashboard.core.settings import ROOT, ConfigError
from dashboard.domain.emails.outbox import IDEMPOTENCY_WINDOW, claim, enqueue
from dashboard.domain.emails.render import load_brand
from dashboard.domain.emails.sender import send_batch
from dashboard.domain.emails.settings import EmailSettings, load_email_settings
from dashboard.domain.emails.worker import RunResult, render_batch, run_once, utc_now
from tests.local_resend import LocalResend

ROUND = dt.timedelta(minutes=5)  # how much later each round of the faults mode runs
MAX_ROUNDS = 12


def _ready() -> None:
    """Nothing: run once in each worker process so that its imports happen before the clock starts."""


def _run(url: str, settings: EmailSettings, later: float = 0.0) -> RunResult:
    """One run in a fresh engine, on a clock ``later`` seconds ahead of the real one."""
    engine = make_engine(url)
    try:
        return run_once(engine, settings, clock=lambda: utc_now() + dt.timedelta(seconds=later))
    finally:
        engine.dispose()


def _book(engine, count: int) -> list:
    """Book ``count`` sessions (copies of the latest ones) for customers who accept email."""
    now = utc_now()
    latest = (
        sa.select(sessions.c.request_id, sessions.c.customer_id, sessions.c.session_type, sessions.c.price_cents)
        .join(profiles, profiles.c.id == sessions.c.customer_id)
        .join(users, users.c.id == sessions.c.customer_id)
        .where(sa.not_(profiles.c.email_opt_out), users.c.email.contains("@"))
        .order_by(sessions.c.created_at.desc())
        .limit(count)
        .subquery()
    )
    booked = sa.select(latest, sa.literal("scheduled"), sa.literal(now + dt.timedelta(days=1)), sa.literal(now))
    insert = sessions.insert().from_select(
        ["request_id", "customer_id", "session_type", "price_cents", "status", "scheduled_at", "created_at"], booked
    )
    with engine.begin() as conn:
        return list(conn.execute(insert.returning(sessions.c.id)).scalars())


def _bench(url: str, count: int, workers: int) -> int:
    with LocalResend() as server:
        settings = load_email_settings({"RESEND_API_KEY": server.api_key, "RESEND_API_URL": server.url}, secrets={})
        warmup = _run(url, settings)
        print(f"already due in the copy, sent first (untimed): {warmup.summary()}")
        before = len(server.deliveries)
        engine = make_engine(url)
        booked = len(_book(engine, count))
        print(f"booked {booked:,} sessions: {booked:,} booking confirmations due")
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            for ready in [pool.submit(_ready) for _ in range(workers)]:
                ready.result()
            started = time.perf_counter()
            results = list(pool.map(_run, [url] * workers, [settings] * workers))
            elapsed = time.perf_counter() - started
        delivered = collections.Counter(
            tag["value"] for d in server.deliveries[before:] for tag in d.email["tags"] if tag["name"] == "outbox_id"
        )
        with engine.connect() as conn:
            by_status = dict(
                conn.execute(sa.select(email_outbox.c.status, sa.func.count()).group_by(email_outbox.c.status)).all()
            )
        engine.dispose()
    sent = sum(r.outcomes["sent"] for r in results)
    print(
        f"workers {workers}: sent {sent:,} emails in {sum(r.requests for r in results)} batch requests "
        f"in {elapsed:.2f} s = {sent / elapsed:,.0f} emails/s"
    )
    print(
        f"delivered {len(delivered):,} distinct emails, duplicates {sum(delivered.values()) - len(delivered)}; "
        f"outbox now {by_status}"
    )
    return 0 if sent == booked and len(delivered) == booked else 1


def _stale_batch(engine, settings: EmailSettings, server: LocalResend) -> int:
    """Enqueue what is due, claim one batch and send it, record nothing, and make it 25 hours old
    (in the outbox and in Resend's memory): a worker that died a day ago. Returns its size."""
    now = utc_now()
    with engine.begin() as conn:
        enqueue(conn, now, settings)
        batch = claim(conn, now, settings)
    emails, _ = render_batch(batch.rows, batch.facts, settings, load_brand(settings.brand_name))
    send_batch(settings, emails, batch.key)
    age = IDEMPOTENCY_WINDOW + dt.timedelta(hours=1)
    with engine.begin() as conn:
        conn.execute(
            email_outbox.update()
            .where(email_outbox.c.provider_message_id == batch.key)
            .values(batch_started_at=now - age)
        )
    server.age_keys(age.total_seconds())
    return len(emails)


def _kill_a_worker_mid_batch(url: str, server: LocalResend, batch_size: int) -> None:
    """Start ``python -m dashboard emails --once`` and SIGKILL it while Resend holds its first answer."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PITWALL_", "RESEND_", "DATABASE_"))}
    env.update(
        DATABASE_URL=url,
        RESEND_API_KEY=server.api_key,
        RESEND_API_URL=server.url,
        PITWALL_EMAIL_BATCH_SIZE=str(batch_size),
        PITWALL_SECRETS=str(ROOT / "absent-secrets.toml"),
    )
    held = server.hold_next()
    worker = subprocess.Popen(
        [sys.executable, "-m", "dashboard", "emails", "--once"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        if not held.wait(60):
            raise RuntimeError("the worker to be killed never sent its batch")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        server.release()


def _faults(url: str, count: int, workers: int) -> int:
    with LocalResend() as server:
        settings = load_email_settings({"RESEND_API_KEY": server.api_key, "RESEND_API_URL": server.url}, secrets={})
        print(f"already due in the copy, sent first: {_run(url, settings).summary()}")
        before = len(server.deliveries)
        engine = make_engine(url)
        booked = _book(engine, count)
        print(f"booked {len(booked):,} sessions: {len(booked):,} booking confirmations due")
        part = min(settings.batch_size, max(1, count // 4))  # each fault takes one batch of at most a quarter
        stale = _stale_batch(engine, dataclasses.replace(settings, batch_size=part), server)
        print(f"fault: a batch of {stale} sent 25 h ago by a worker that died before recording it")
        _kill_a_worker_mid_batch(url, server, part)
        print(f"fault: a worker killed with SIGKILL while its batch of {part} was in flight")
        server.fail_next(500, "application_error")
        server.fail_next(429, "rate_limit_exceeded", retry_after=1)
        server.fail_next(429, "rate_limit_exceeded", retry_after=1)
        print("fault: the next requests answer 500, 429, 429")
        started = time.perf_counter()
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            for number in range(MAX_ROUNDS):
                later = [number * ROUND.total_seconds()] * workers
                results = list(pool.map(_run, [url] * workers, [settings] * workers, later))
                print(f"round {number + 1} (+{number * 5} min): " + " | ".join(r.summary() for r in results))
                if not any(r.requests or sum(r.outcomes.values()) for r in results) and number:
                    break
        elapsed = time.perf_counter() - started
        counts = collections.Counter(
            tag["value"] for d in server.deliveries[before:] for tag in d.email["tags"] if tag["name"] == "outbox_id"
        )
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(email_outbox.c.id, email_outbox.c.status).where(
                    email_outbox.c.session_id.in_(booked), email_outbox.c.milestone == "booking_confirmed"
                )
            ).all()
        engine.dispose()
    by_status = collections.Counter(row.status for row in rows)
    duplicated = sum(counts[str(row.id)] - 1 for row in rows if counts[str(row.id)] > 1)
    lost = len(booked) - by_status["sent"] - by_status["skipped"] - by_status["uncertain"]
    print(
        f"faults, {workers} workers, {elapsed:.1f} s: emails due {len(booked):,}, sent {by_status['sent']:,}, "
        f"skipped {by_status['skipped']:,}, duplicated {duplicated}, lost {lost}, "
        f"held as uncertain {by_status['uncertain']}"
    )
    return 0 if duplicated == 0 and lost == 0 else 1


def run(engine: Engine, *, emails: int, workers: int, faults: bool) -> int:
    """Time (or, with ``faults``, break) the sending of ``emails`` due emails on a copy of the
    database of ``engine``; 0 when every email was sent once."""
    url = engine.url
    if url.get_backend_name() != "postgresql":
        raise ConfigError("The email benchmark runs on PostgreSQL: pass --database postgresql://...")
    engine.dispose()  # a template database must have no open connection
    source, copy = url.database, f"{url.database}_emailbench_{os.getpid()}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    started = time.perf_counter()
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{copy}" TEMPLATE "{source}"'))
    except sa.exc.OperationalError as exc:
        raise ConfigError(
            f"Cannot copy {source}: {str(exc.orig).splitlines()[0]} (close the other connections to it and try again)"
        ) from None
    print(f"copied {source} to {copy} in {time.perf_counter() - started:.1f} s")
    try:
        measure = _faults if faults else _bench
        return measure(url.set(database=copy).render_as_string(hide_password=False), emails, workers)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)'))
        admin.dispose()
