"""The API as deployed: ``python -m dashboard api`` with workers, requests racing on PostgreSQL, a write
cut off before its answer is stored, a database that is down or not migrated."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from api.auth import Principal
from api.idempotency import IdempotencyKey, prune_replies, run_write
from dashboard.core import schema as s
from dashboard.core.db import make_engine
from dashboard.core.migrate import upgrade
from dashboard.domain import followups
from tests.api_support import JWT_SECRET, ApiServer, api_server
from tests.browser_support import free_port
from tests.factories import add_mechanic, add_session, add_user
from tests.throwaway_pg import throwaway_cluster

ROOT = Path(__file__).resolve().parents[1]
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def pg_api(request, tmp_path_factory):
    with api_server(request, tmp_path_factory, "postgres") as server:
        yield server


@pytest.fixture
def world(pg_api):
    with pg_api.engine.begin() as conn:
        customer = add_user(conn)
        mechanic = add_mechanic(conn, "Rita")
        session = add_session(conn, customer, mechanic, ended_at=NOW - dt.timedelta(hours=3))
    return {"customer": customer, "mechanic": mechanic, "session": session}


def follow_ups(api, session) -> list:
    with api.engine.connect() as conn:
        return conn.execute(sa.select(s.requests.c.id).where(s.requests.c.parent_session_id == session)).all()


def test_concurrent_follow_ups_keep_the_limit_per_session(pg_api, world):
    headers = pg_api.as_customer(world["customer"])
    body = {"parent_session_id": str(world["session"]), "follow_up_type": "quick_question", "text": "Which fuse?"}
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: pg_api.post("/v1/follow-ups", headers, body), range(6)))
    assert sorted(a.status_code for a in answers) == [201, 201, 422, 422, 422, 422]
    assert all("limit is 2" in a.json()["detail"] for a in answers if a.status_code == 422)
    assert len(follow_ups(pg_api, world["session"])) == 2


def test_one_idempotency_key_sent_at_once_writes_once(pg_api, world):
    headers = pg_api.as_customer(world["customer"])
    body = {"parent_session_id": str(world["session"]), "follow_up_type": "quick_question", "text": "Tyre size?"}
    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda _: pg_api.post("/v1/follow-ups", headers, body, key="same-key"), range(5)))
    assert [a.status_code for a in answers] == [201] * 5
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 4
    assert len(follow_ups(pg_api, world["session"])) == 1


def test_concurrent_booking_checks_agree(pg_api, world):
    day = (NOW + dt.timedelta(days=2)).date()
    with pg_api.engine.begin() as conn:
        conn.execute(
            s.mechanic_availability_slots.insert().values(
                mechanic_id=world["mechanic"],
                day_of_week=(day.weekday() + 1) % 7,
                start_time=dt.time(9),
                end_time=dt.time(12),
                price_multiplier="1.50",
            )
        )
        conn.execute(s.session_base_prices.delete())
        conn.execute(s.session_base_prices.insert().values(session_type="video", price_cents=1999))
        add_session(
            conn,
            world["customer"],
            world["mechanic"],
            "scheduled",
            scheduled_at=dt.datetime.combine(day, dt.time(11), dt.UTC),
        )
    headers = pg_api.as_platform(world["customer"])

    def check(hour):
        start = dt.datetime.combine(day, dt.time(hour), dt.UTC).isoformat()
        return pg_api.post(
            "/v1/bookings/check",
            headers,
            {"mechanic_id": str(world["mechanic"]), "start": start, "session_type": "video"},
        )

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(check, [9, 11] * 8))
    free, taken = answers[::2], answers[1::2]
    assert {(a.status_code, a.json()["price_cents"]) for a in free} == {(200, 2999)}  # 1,999 x 1.50 = 2,998.5
    assert {(a.status_code, a.json()["code"]) for a in taken} == {(409, "not_bookable")}


def test_a_write_cut_off_before_its_answer_leaves_nothing_and_the_retry_writes_once(pg_api, world):
    customer = world["customer"]
    principal = Principal("customer", customer)
    key = IdempotencyKey("cut-off", "hash-of-the-request")

    def write_then_die(db):
        followups.create_follow_up(
            db,
            None,
            on_behalf_of_customer=True,
            parent_session_id=world["session"],
            customer_id=customer,
            follow_up_type="quick_question",
            text="Lost?",
        )
        raise RuntimeError("the worker died here")

    with pytest.raises(RuntimeError):
        run_write(pg_api.engine, principal, key, write_then_die)
    assert follow_ups(pg_api, world["session"]) == []
    with pg_api.engine.connect() as conn:
        assert (
            conn.execute(sa.select(s.api_idempotency).where(s.api_idempotency.c.idempotency_key == "cut-off")).first()
            is None
        )
    body = {"parent_session_id": str(world["session"]), "follow_up_type": "quick_question", "text": "Lost?"}
    retried = pg_api.post("/v1/follow-ups", pg_api.as_customer(customer), body, key="cut-off")
    assert retried.status_code == 201
    assert len(follow_ups(pg_api, world["session"])) == 1


def test_a_database_that_is_down_answers_503(tmp_path):
    (tmp_path / "secrets.toml").write_text("")
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    server = ApiServer(make_engine(url), url, tmp_path / "secrets.toml", service_key=False)
    try:
        health = server.http.get("/healthz")
        assert health.status_code == 503 and health.json()["code"] == "database_unavailable"
        assert health.headers["Retry-After"] == "5" and "127.0.0.1" not in health.text
        review = server.post(
            "/v1/reviews", server.as_customer(uuid.uuid4()), {"session_id": str(uuid.uuid4()), "rating": 5}
        )
        assert review.status_code == 503 and review.json()["code"] == "database_unavailable"
    finally:
        server.close()


def test_healthz_says_when_the_database_is_not_migrated(tmp_path):
    (tmp_path / "secrets.toml").write_text("")
    url = f"duckdb:///{tmp_path / 'empty.duckdb'}"
    engine = make_engine(url)
    server = ApiServer(engine, url, tmp_path / "secrets.toml", service_key=False)
    try:
        health = server.http.get("/healthz")
        assert health.status_code == 503 and health.json()["code"] == "not_migrated"
        assert "python -m dashboard migrate" in health.json()["detail"]
    finally:
        server.close()
        engine.dispose()


def _serve(*args, env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dashboard", "api", "--host", "127.0.0.1", "--port", str(port), *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, f"http://127.0.0.1:{port}"


def _healthy(process: subprocess.Popen, url: str) -> httpx.Response:
    deadline = time.monotonic() + 60
    while True:
        try:
            return httpx.get(f"{url}/healthz", timeout=2)
        except httpx.TransportError:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "python -m dashboard api did not start"
            time.sleep(0.2)


def _pg_env(pg_api, tmp_path) -> dict:
    return {
        "DATABASE_URL": pg_api.engine.url.render_as_string(hide_password=False),
        "PITWALL_SECRETS": str(tmp_path / "none.toml"),
        "SUPABASE_JWT_SECRET": JWT_SECRET,
    }


def test_python_m_api_serves_with_workers(pg_api, tmp_path):
    process, url = _serve("--workers", "2", env=_pg_env(pg_api, tmp_path))
    try:
        health = _healthy(process, url)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        key = pg_api.service_key
        answers = [
            httpx.get(f"{url}/v1/mechanics/{uuid.uuid4()}", headers={"Authorization": f"Bearer {key}"})
            for _ in range(4)
        ]
        assert {a.status_code for a in answers} == {404}
        assert "server" not in health.headers
    finally:
        process.terminate()
        process.wait(30)


def test_the_embedded_database_takes_one_worker(tmp_path):
    env = {"DATABASE_URL": f"duckdb:///{tmp_path / 'one.duckdb'}", "PITWALL_SECRETS": str(tmp_path / "none.toml")}
    process, _ = _serve("--workers", "2", env=env)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 2 and "one writer process" in output and "Traceback" not in output


def test_stored_answers_older_than_a_day_are_pruned(pg_api):
    t = s.api_idempotency
    with pg_api.engine.begin() as conn:
        for key, age in (("old-key", dt.timedelta(days=2)), ("new-key", dt.timedelta(hours=1))):
            conn.execute(
                t.insert().values(
                    principal="customer:prune-test",
                    idempotency_key=key,
                    request_hash="h",
                    status_code=201,
                    response_body="{}",
                    created_at=NOW - age,
                )
            )
    assert prune_replies(pg_api.engine) >= 1
    with pg_api.engine.connect() as conn:
        left = conn.execute(sa.select(t.c.idempotency_key).where(t.c.principal == "customer:prune-test")).scalars()
        assert list(left) == ["new-key"]


def test_a_killed_worker_leaves_nothing_and_the_retry_writes_once(pg_api, world, tmp_path):
    """The API process is killed while its write waits on a row lock: the transaction never
    commits (no follow-up, no claimed key); the retry with the same key writes once."""
    body = {"parent_session_id": str(world["session"]), "follow_up_type": "quick_question", "text": "Killed?"}
    headers = {**pg_api.as_customer(world["customer"]), "Idempotency-Key": "killed-worker"}
    process, url = _serve(env=_pg_env(pg_api, tmp_path))
    with pg_api.engine.connect() as blocker:
        try:
            assert _healthy(process, url).status_code == 200
            blocker.execute(sa.select(s.sessions.c.id).where(s.sessions.c.id == world["session"]).with_for_update())
            with ThreadPoolExecutor(1) as pool:
                pending = pool.submit(httpx.post, f"{url}/v1/follow-ups", json=body, headers=headers, timeout=30)
                deadline = time.monotonic() + 20
                while not _waiting_for_lock(pg_api.engine):
                    assert time.monotonic() < deadline, "the write never reached the session's lock"
                    time.sleep(0.05)
                process.kill()
                process.wait(10)
                with pytest.raises(httpx.TransportError):
                    pending.result()
        finally:
            blocker.rollback()
            if process.poll() is None:
                process.kill()
    deadline = time.monotonic() + 10
    while _waiting_for_lock(pg_api.engine, any_state=True) and time.monotonic() < deadline:
        time.sleep(0.05)  # the killed worker's backend ends once it finds its client gone
    assert follow_ups(pg_api, world["session"]) == []
    with pg_api.engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(s.api_idempotency).where(s.api_idempotency.c.idempotency_key == "killed-worker")
            ).first()
            is None
        )
    retried = pg_api.post("/v1/follow-ups", pg_api.as_customer(world["customer"]), body, key="killed-worker")
    assert retried.status_code == 201, retried.text
    assert len(follow_ups(pg_api, world["session"])) == 1


def _waiting_for_lock(engine, any_state: bool = False) -> bool:
    """Whether another backend of this database waits on a lock (or, ``any_state``, is in a transaction)."""
    condition = "state <> 'idle'" if any_state else "wait_event_type = 'Lock'"
    with engine.connect() as conn:
        return (
            conn.execute(
                sa.text(
                    f"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    f"AND pid <> pg_backend_pid() AND {condition}"
                )
            ).scalar_one()
            > 0
        )


def test_a_restarted_database_is_reconnected_to(tmp_path):
    (tmp_path / "secrets.toml").write_text("")
    with throwaway_cluster() as cluster:
        engine = make_engine(cluster.url)
        upgrade(engine)
        server = ApiServer(engine, cluster.url, tmp_path / "secrets.toml")
        try:
            with engine.begin() as conn:
                mechanic = add_mechanic(conn, "Rita")
            headers = server.as_platform()
            assert server.get(f"/v1/mechanics/{mechanic}", headers).status_code == 200
            cluster.stop("immediate")
            down = server.get(f"/v1/mechanics/{mechanic}", headers)
            assert down.status_code == 503 and down.json()["code"] == "database_unavailable"
            cluster.start()
            assert server.get(f"/v1/mechanics/{mechanic}", headers).json()["name"] == "Rita"
        finally:
            server.close()
            engine.dispose()
