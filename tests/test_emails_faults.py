"""Faults while the email job runs, on PostgreSQL with the real resend SDK and the loopback
Resend: the database stopped and started (a throwaway cluster of the test's own), Resend
unreachable, and workers killed with SIGKILL mid-batch. Each ends with every due email sent
exactly once and a clear message while the fault lasted."""

from __future__ import annotations

import collections
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import sqlalchemy as sa

from dashboard.core import schema as s
from dashboard.core.db import make_engine
from dashboard.core.migrate import upgrade
from dashboard.core.settings import ROOT
from dashboard.domain.emails.worker import run_once
from jobs.emails import run_loop
from tests.emails_support import DRIVER, MINUTE, NOW, booked, delivered_outbox_ids, settings_env, settings_for
from tests.factories import add_session, add_user
from tests.throwaway_pg import throwaway_cluster


def at(moment: dt.datetime):
    return lambda: moment


def book(engine, count: int, now: dt.datetime) -> None:
    with engine.begin() as conn:
        for i in range(count):
            add_session(
                conn,
                add_user(conn, DRIVER, email=f"c{i}@example.com"),
                **booked(created_at=now - MINUTE, scheduled_at=now + dt.timedelta(days=1)),
            )


def statuses(engine) -> collections.Counter:
    with engine.connect() as conn:
        return collections.Counter(conn.execute(sa.select(s.email_outbox.c.status)).scalars())


def assert_each_sent_once(engine, server, count: int) -> None:
    delivered = collections.Counter(delivered_outbox_ids(server))
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(s.email_outbox.c.id, s.email_outbox.c.status, s.email_outbox.c.provider_message_id)
        ).all()
    assert len(rows) == count and {row.status for row in rows} == {"sent"}
    assert set(delivered) == {str(row.id) for row in rows} and max(delivered.values()) == 1
    ids = {d.email["headers"]["X-Entity-Ref-ID"]: d.id for d in server.deliveries}
    assert all(row.provider_message_id == ids[str(row.id)] for row in rows)  # Resend's ids, none lost


def wait_for(condition, timeout: float = 60, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_the_database_stopped_and_started_while_the_job_runs(resend_api):
    with throwaway_cluster() as cluster:
        engine = make_engine(cluster.url)
        upgrade(engine)
        book(engine, 60, dt.datetime.now(dt.UTC))
        resend_api.delay = 0.05
        settings = settings_for(resend_api, PITWALL_EMAIL_BATCH_SIZE="5", PITWALL_EMAIL_LEASE_SECONDS="1")
        stop, lines = threading.Event(), []
        loop = threading.Thread(target=run_loop, args=(engine, settings, 0.2, stop, lines.append))
        loop.start()
        try:
            wait_for(lambda: len(resend_api.deliveries) >= 10, what="the first batches")
            cluster.stop("immediate")  # a crash: connections drop mid-transaction
            wait_for(lambda: sum("run failed" in line for line in lines) >= 2, what="the outage reports")
            cluster.start()
            wait_for(
                lambda: len(set(delivered_outbox_ids(resend_api))) == 60 and _all_sent(engine),
                what="every email sent after the restart",
            )
            assert loop.is_alive()  # the loop never stopped
        finally:
            stop.set()
            loop.join(30)
        failures = [line for line in lines if "run failed" in line]
        assert all("\n" not in line and "Traceback" not in line for line in lines)
        assert all("retrying in 0.2 s: Cannot reach the database at" in line for line in failures)
        assert all(f"127.0.0.1:{cluster.port}" in line for line in failures)  # which server is down
        assert_each_sent_once(engine, resend_api, 60)
        engine.dispose()


def _all_sent(engine) -> bool:
    try:
        return set(statuses(engine)) == {"sent"}
    except sa.exc.OperationalError:
        return False


def test_resend_unreachable_marks_nothing_sent_or_failed_and_sends_everything_once_back(pg_engine, resend_api):
    book(pg_engine, 12, NOW)
    settings = settings_for(resend_api, PITWALL_EMAIL_BATCH_SIZE="5", PITWALL_EMAIL_MAX_ATTEMPTS="5")
    resend_api.stop()
    for minutes in (0, 1, 3, 7):  # attempts 1 to 4 of the first batch, each after its backoff
        result = run_once(pg_engine, settings, clock=at(NOW + minutes * MINUTE))
        assert result.requests == 1 and result.outcomes["pending"] == 5  # the run stops after one batch
        assert result.stopped.startswith("Resend did not answer (Resend could not be reached: ")
        assert "Connection refused" in result.summary() and "\n" not in result.summary()
        assert statuses(pg_engine) == {"pending": 12}
    with pg_engine.connect() as conn:
        attempts = collections.Counter(conn.execute(sa.select(s.email_outbox.c.attempts)).scalars())
    assert attempts == {4: 5, 0: 7} and not resend_api.requests  # every connection was refused
    resend_api.start()
    run_once(pg_engine, settings, clock=at(NOW + 30 * MINUTE))
    assert_each_sent_once(pg_engine, resend_api, 12)


def _worker(server, database_url: str, **env: str) -> subprocess.Popen:
    environment = {
        **os.environ,
        **settings_env(server, **env),
        "DATABASE_URL": database_url,
        "PITWALL_SECRETS": str(ROOT / "absent-secrets.toml"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "dashboard", "emails", "--once"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_a_worker_killed_mid_batch_beside_a_second_worker_then_a_rerun(pg_engine, resend_api):
    book(pg_engine, 20, dt.datetime.now(dt.UTC))  # the workers run on the real clock
    url = pg_engine.url.render_as_string(hide_password=False)
    held = resend_api.hold_next()  # the first batch is delivered, its answer never arrives
    killed = _worker(resend_api, url, PITWALL_EMAIL_BATCH_SIZE="5", PITWALL_EMAIL_LEASE_SECONDS="60")
    try:
        assert held.wait(30), killed.stderr.read().decode()
        second = _worker(resend_api, url, PITWALL_EMAIL_BATCH_SIZE="5")
        assert second.wait(60) == 0, second.stderr.read().decode()
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    resend_api.release()
    assert statuses(pg_engine) == {"sending": 5, "sent": 15} and len(resend_api.deliveries) == 20

    later = dt.datetime.now(dt.UTC) + 2 * MINUTE  # past the killed worker's lease
    rerun = run_once(pg_engine, settings_for(resend_api, PITWALL_EMAIL_BATCH_SIZE="5"), clock=at(later))
    assert rerun.outcomes["sent"] == 5 and rerun.requests == 1
    assert_each_sent_once(pg_engine, resend_api, 20)
    first_key = resend_api.requests[0]["headers"]["idempotency-key"]
    assert [r["headers"]["idempotency-key"] for r in resend_api.requests].count(first_key) == 2  # the re-send


@pytest.mark.parametrize("workers", [2])
def test_two_workers_through_a_500_and_429s_send_each_email_once(pg_engine, resend_api, workers):
    book(pg_engine, 60, NOW)
    resend_api.delay = 0.02
    resend_api.fail_next(500, "application_error")
    resend_api.fail_next(429, "rate_limit_exceeded", retry_after=1)
    resend_api.fail_next(429, "rate_limit_exceeded", retry_after=1)
    settings = settings_for(resend_api, PITWALL_EMAIL_BATCH_SIZE="10")
    for minutes in (0, 2, 5, 10):
        threads = [
            threading.Thread(target=run_once, args=(pg_engine, settings, at(NOW + minutes * MINUTE)))
            for _ in range(workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert_each_sent_once(pg_engine, resend_api, 60)
    with pg_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.max(s.email_outbox.c.attempts))).scalar_one() <= 2
