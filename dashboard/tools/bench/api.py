"""The API benchmark: ``python -m dashboard bench --api --database URL``.

Starts ``python -m dashboard api --workers 2`` on a free loopback port against the database (demo
data loaded), creates a service key for the run, and measures over HTTP:

- slots: one mechanic's bookable slots over 14 days, p50 and p95 of ``--samples`` requests;
- booking check: ``POST /v1/bookings/check`` of an offered start, p50 and p95;
- interaction ingest: ``--batches`` batches of 500 events from 4 senders, events per second;
- mixed load: ``--clients`` concurrent clients for ``--seconds`` seconds (slots, profile,
  reviews page, booking check, upsell cards, follow-up quote), requests per second, p95
  and errors (any answer other than the expected one, or no answer).

The load is bounded (that many clients, that long, a timeout per request) and only ever
sent to 127.0.0.1. Afterwards the key is revoked and the rows the run wrote (its
interactions and stored idempotent replies) are deleted. The server runs with the
rate limits lifted, since the run is one key sending as fast as it can.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core import schema as s
from dashboard.domain.calendars.slots import slots_by_day

HOST = "127.0.0.1"
SLOT_DAYS = 14
BATCH_EVENTS = 500
SENDERS = 4
WARM_UP = 5  # untimed requests of each kind first, so each worker has its connections and caches
REQUEST_TIMEOUT = 10.0
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Sample:
    """What the requests ask about: a bookable mechanic, a customer with a completed
    session, one start the mechanic offers, and customers to send events for."""

    mechanic_id: uuid.UUID
    customer_id: uuid.UUID
    session_id: uuid.UUID
    booking_start: dt.datetime
    first_day: dt.date
    event_customers: tuple[uuid.UUID, ...]


def pick_sample(engine: Engine) -> Sample:
    """The active mechanic with the most weekly hours who offers a video slot in the next 14 days."""
    m, sl, ses = s.mechanics, s.mechanic_availability_slots, s.sessions
    today = dt.datetime.now(dt.UTC).date()
    with engine.connect() as conn:
        mechanics = (
            conn.execute(
                sa.select(m.c.user_id)
                .join(sl, sl.c.mechanic_id == m.c.user_id)
                .where(m.c.is_active)
                .group_by(m.c.user_id)
                .order_by(sa.func.count().desc(), m.c.user_id)
                .limit(20)
            )
            .scalars()
            .all()
        )
        session = conn.execute(
            sa.select(ses.c.id, ses.c.customer_id)
            .where(ses.c.status == "completed")
            .order_by(ses.c.ended_at.desc())
            .limit(1)
        ).first()
        customers = tuple(
            conn.execute(
                sa.select(s.profiles.c.id).order_by(s.profiles.c.created_at.desc()).limit(BATCH_EVENTS)
            ).scalars()
        )
    if session is None or not customers:
        raise SystemExit("error: the database holds no completed session: load demo data first")
    for mechanic in mechanics:
        days = slots_by_day(
            engine,
            mechanic,
            start=today,
            end=today + dt.timedelta(days=SLOT_DAYS - 1),
            zone="UTC",
            session_type="video",
        )
        offered = [slot["start"] for day in days.values() for slot in day]
        if offered:
            return Sample(mechanic, session.customer_id, session.id, offered[len(offered) // 2], today, customers)
    raise SystemExit("error: no active mechanic offers a video slot in the next 14 days")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start_server(url: str, workers: int) -> tuple[subprocess.Popen, str]:
    """``python -m dashboard api`` on a free loopback port; returns the process and its base URL once healthy."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": url, "PITWALL_API_KEY_RATE": "1000000", "PITWALL_API_CUSTOMER_RATE": "1000000"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dashboard",
            "api",
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://{HOST}:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"error: python -m dashboard api exited with status {server.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return server, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_server(server)
    raise SystemExit(f"error: python -m dashboard api did not answer within {START_TIMEOUT:g} s")


def stop_server(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


class Load:
    """The requests of the run, against one server, as one service key."""

    def __init__(self, base: str, key: str, sample: Sample):
        if httpx.URL(base).host != HOST:
            raise ValueError("the benchmark only sends to the loopback address")
        self.base, self.sample = base, sample
        self.headers = {"Authorization": f"Bearer {key}", "X-Pitwall-Customer": str(sample.customer_id)}
        self.idempotency_keys: list[str] = []
        self.event_ids: list[uuid.UUID] = []
        self._lock = threading.Lock()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=self.headers, timeout=REQUEST_TIMEOUT)

    def _key(self) -> dict:
        key = f"bench-{uuid.uuid4()}"
        with self._lock:
            self.idempotency_keys.append(key)
        return {"Idempotency-Key": key}

    def slots(self, client: httpx.Client) -> httpx.Response:
        last = self.sample.first_day + dt.timedelta(days=SLOT_DAYS - 1)
        return client.get(
            f"/v1/mechanics/{self.sample.mechanic_id}/slots",
            params={
                "start": self.sample.first_day.isoformat(),
                "end": last.isoformat(),
                "timeZone": "UTC",
                "session_type": "video",
            },
        )

    def booking_check(self, client: httpx.Client) -> httpx.Response:
        body = {
            "mechanic_id": str(self.sample.mechanic_id),
            "start": self.sample.booking_start.isoformat(),
            "session_type": "video",
        }
        return client.post("/v1/bookings/check", json=body, headers=self._key())

    def profile(self, client: httpx.Client) -> httpx.Response:
        return client.get(f"/v1/mechanics/{self.sample.mechanic_id}")

    def reviews(self, client: httpx.Client) -> httpx.Response:
        return client.get(f"/v1/mechanics/{self.sample.mechanic_id}/reviews", params={"limit": 20})

    def upsells(self, client: httpx.Client) -> httpx.Response:
        return client.get(f"/v1/customers/{self.sample.customer_id}/upsells")

    def quote(self, client: httpx.Client) -> httpx.Response:
        return client.get(
            "/v1/follow-ups/quote",
            params={"parent_session_id": str(self.sample.session_id), "follow_up_type": "quick_question"},
        )

    def ingest(self, client: httpx.Client) -> httpx.Response:
        now = dt.datetime.now(dt.UTC).isoformat()
        ids = [uuid.uuid4() for _ in range(BATCH_EVENTS)]
        with self._lock:
            self.event_ids += ids
        customers = self.sample.event_customers
        events = [
            {
                "event_id": str(event_id),
                "customer_id": str(customers[n % len(customers)]),
                "interaction_type": "upsell_shown",
                "occurred_at": now,
                "metadata": {"source": "bench"},
            }
            for n, event_id in enumerate(ids)
        ]
        return client.post("/v1/crm/interactions", json={"events": events}, headers=self._key())

    MIX = ("slots", "profile", "reviews", "booking_check", "upsells", "quote")


def timed(call, client: httpx.Client) -> tuple[float, httpx.Response | None]:
    started = time.perf_counter()
    try:
        response = call(client)
    except httpx.HTTPError:
        response = None
    return (time.perf_counter() - started) * 1000, response


def sequential(load: Load, call, samples: int) -> list[float]:
    """Milliseconds of ``samples`` requests one after another; SystemExit on a failed one."""
    timings = []
    with load.client() as client:
        for _ in range(WARM_UP):
            call(client)
        for _ in range(samples):
            ms, response = timed(call, client)
            if response is None or response.status_code != 200:
                detail = "no answer" if response is None else f"{response.status_code} {response.text[:200]}"
                raise SystemExit(f"error: {call.__name__}: {detail}")
            timings.append(ms)
    return timings


def ingest_rate(load: Load, batches: int) -> tuple[int, float]:
    """(events accepted, events per second) of ``batches`` batches from SENDERS senders at once."""

    def send(count: int) -> int:
        accepted = 0
        with load.client() as client:
            for _ in range(count):
                response = load.ingest(client)
                if response.status_code != 200:
                    raise SystemExit(f"error: ingest: {response.status_code} {response.text[:200]}")
                accepted += response.json()["accepted"]
        return accepted

    shares = [batches // SENDERS + (1 if n < batches % SENDERS else 0) for n in range(SENDERS)]
    started = time.perf_counter()
    with ThreadPoolExecutor(SENDERS) as pool:
        accepted = sum(pool.map(send, shares))
    return accepted, accepted / (time.perf_counter() - started)


def mixed(load: Load, clients: int, seconds: float) -> dict:
    """``clients`` threads sending the MIX round-robin until ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    results: list[tuple[float, bool]] = []
    lock = threading.Lock()

    def client_loop(offset: int) -> None:
        mine = []
        with load.client() as client:
            n = offset
            while time.monotonic() < deadline:
                ms, response = timed(getattr(load, Load.MIX[n % len(Load.MIX)]), client)
                mine.append((ms, response is not None and response.status_code == 200))
                n += 1
        with lock:
            results.extend(mine)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client_loop, range(clients)))
    elapsed = time.perf_counter() - started
    timings = [ms for ms, _ in results]
    return {
        "requests": len(results),
        "per_second": len(results) / elapsed,
        "p95": percentile(timings, 0.95) if timings else float("nan"),
        "errors": sum(1 for _, ok in results if not ok),
    }


def cleanup(engine: Engine, load: Load) -> None:
    """Delete what the run wrote: its interactions and stored idempotent replies."""
    with engine.begin() as conn:
        for chunk in range(0, len(load.event_ids), 1000):
            ids = load.event_ids[chunk : chunk + 1000]
            conn.execute(s.crm_interactions.delete().where(s.crm_interactions.c.event_id.in_(ids)))
        for chunk in range(0, len(load.idempotency_keys), 1000):
            keys = load.idempotency_keys[chunk : chunk + 1000]
            conn.execute(s.api_idempotency.delete().where(s.api_idempotency.c.idempotency_key.in_(keys)))


def run(
    engine: Engine, url: str, *, workers: int, samples: int, batches: int, clients: int, seconds: float
) -> list[str]:
    """The figures of one run, as lines to print."""
    from api.auth import create_key, revoke_key

    sample = pick_sample(engine)
    name = f"benchmark {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} {uuid.uuid4().hex[:6]}"
    key = create_key(engine, name)
    engine.dispose()  # the server's workers open their own connections (DuckDB: the one writer)
    server, load = None, None
    try:
        server, base = start_server(url, workers)
        load = Load(base, key, sample)
        slots = sequential(load, load.slots, samples)
        checks = sequential(load, load.booking_check, samples)
        accepted, rate = ingest_rate(load, batches)
        load_figures = mixed(load, clients, seconds)
    finally:
        if server is not None:
            stop_server(server)
        revoke_key(engine, name)
        if load is not None:
            cleanup(engine, load)
    return [
        f"api on {engine.dialect.name}, {workers} worker(s), loopback port {httpx.URL(base).port}",
        f"slots over {SLOT_DAYS} days, one mechanic: p50 {statistics.median(slots):.1f} ms, "
        f"p95 {percentile(slots, 0.95):.1f} ms ({samples} requests)",
        f"booking check: p50 {statistics.median(checks):.1f} ms, p95 {percentile(checks, 0.95):.1f} ms "
        f"({samples} requests)",
        f"interaction ingest: {accepted:,} events in batches of {BATCH_EVENTS} from {SENDERS} senders: "
        f"{rate:,.0f} events/s",
        f"mixed load: {clients} clients for {seconds:g} s: {load_figures['requests']:,} requests, "
        f"{load_figures['per_second']:,.0f} requests/s, p95 {load_figures['p95']:.1f} ms, "
        f"{load_figures['errors']} errors",
    ]
