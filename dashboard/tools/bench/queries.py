"""Benchmark: ``python -m dashboard.tools.bench.queries --scale N [--database URL] [--api]``.

Loads demo data at scale N into the database when it is empty (or reuses what
is there), then runs every query registered in ``queries.registry`` and prints
one row per query: rows returned, cold time (first run on a fresh connection)
and warm time (median of the repeats). With ``--api`` it measures the platform
API over HTTP instead (``dashboard.tools.bench.api``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import pkgutil
import statistics
import sys
import time

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

import queries
from dashboard.core import schema as s
from dashboard.core.settings import ConfigError, load_settings, normalize_url
from dashboard.core.db import DatabaseUnavailable, check_connection, make_engine
from queries.registry import CASES, BenchContext


def load_query_modules() -> None:
    """Import every module of ``queries`` so that its cases register."""
    for module in pkgutil.iter_modules(queries.__path__):
        importlib.import_module(f"queries.{module.name}")


def bench_context(conn: Connection, days: int = 30) -> BenchContext:
    """The last ``days`` of the data, and the busiest mechanic and customer as samples."""
    end = conn.execute(sa.select(sa.func.max(s.sessions.c.created_at))).scalar() or dt.datetime.now(dt.timezone.utc)
    mechanic = conn.execute(
        sa.select(s.mechanics.c.user_id).order_by(s.mechanics.c.total_reviews.desc()).limit(1)
    ).scalar()
    customer = conn.execute(
        sa.select(s.sessions.c.customer_id)
        .group_by(s.sessions.c.customer_id)
        .order_by(sa.func.count().desc(), s.sessions.c.customer_id)
        .limit(1)
    ).scalar()
    return BenchContext(start=end - dt.timedelta(days=days), end=end,
                        sample={"mechanic_id": mechanic, "customer_id": customer})


def run_cases(engine: Engine, ctx: BenchContext, repeat: int, only: str | None = None) -> list[dict]:
    rows = []
    for name in sorted(CASES):
        if only and not name.startswith(only):
            continue
        engine.dispose()  # cold: a brand-new connection, nothing prepared or cached in the session
        timings = []
        for _ in range(repeat + 1):
            with engine.connect() as conn:
                started = time.perf_counter()
                frame = CASES[name](conn, ctx)
                timings.append((time.perf_counter() - started) * 1000)
        rows.append({"query": name, "rows": len(frame), "cold_ms": timings[0],
                     "warm_ms": statistics.median(timings[1:])})
    return rows


def format_table(rows: list[dict]) -> str:
    width = max([len("query")] + [len(r["query"]) for r in rows])
    lines = [f"{'query':<{width}}  {'rows':>9}  {'cold ms':>9}  {'warm ms':>9}"]
    lines += [f"{r['query']:<{width}}  {r['rows']:>9,}  {r['cold_ms']:>9.1f}  {r['warm_ms']:>9.1f}" for r in rows]
    return "\n".join(lines)


def ensure_demo_data(engine: Engine, scale: float, seed: int) -> str:
    from dashboard.tools.demo import load_if_empty

    started = time.perf_counter()
    loaded = load_if_empty(engine, scale=scale, seed=seed)
    with engine.connect() as conn:
        customers = conn.execute(sa.select(sa.func.count()).select_from(s.profiles)).scalar_one()
        interactions = conn.execute(sa.select(sa.func.count()).select_from(s.crm_interactions)).scalar_one()
    how = f"loaded at scale {scale:g} in {time.perf_counter() - started:.1f} s" if loaded else "reused"
    return f"demo data {how}: {customers:,} customers, {interactions:,} interactions"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard.tools.bench.queries", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="demo scale to load if the database is empty")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database", help="database URL (default: the configured one)")
    parser.add_argument("--repeat", type=int, default=3, help="warm runs per query (median reported)")
    parser.add_argument("--only", help="run only the queries whose name starts with this")
    api = parser.add_argument_group("API benchmark")
    api.add_argument("--api", action="store_true", help="measure the platform API (python -m api) instead")
    api.add_argument("--workers", type=int, default=2, help="API worker processes (default 2; 1 on DuckDB)")
    api.add_argument("--samples", type=int, default=200, help="timed slot and booking requests (default 200)")
    api.add_argument("--batches", type=int, default=40, help="ingest batches of 500 events (default 40)")
    api.add_argument("--clients", type=int, default=50, help="concurrent clients of the mixed load (default 50)")
    api.add_argument("--seconds", type=float, default=30, help="length of the mixed load (default 30)")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1000 or args.repeat < 1:
        parser.error("--scale must be in (0, 1000] and --repeat at least 1")
    if not (1 <= args.workers <= 8 and 1 <= args.samples <= 10_000 and 1 <= args.batches <= 1_000
            and 1 <= args.clients <= 200 and 0 < args.seconds <= 600):
        parser.error("--workers 1-8, --samples 1-10000, --batches 1-1000, --clients 1-200, --seconds up to 600")
    try:
        url = normalize_url(args.database) if args.database else load_settings().database_url
        engine = make_engine(url)
        check_connection(engine)
    except (ConfigError, DatabaseUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(ensure_demo_data(engine, args.scale, args.seed))
    if args.api:
        from dashboard.tools.bench.api import run

        for line in run(engine, url, workers=args.workers, samples=args.samples, batches=args.batches,
                        clients=args.clients, seconds=args.seconds):
            print(line, flush=True)
        return 0
    load_query_modules()
    with engine.connect() as conn:
        ctx = bench_context(conn)
    print(f"backend {engine.dialect.name}, period {ctx.start:%Y-%m-%d} to {ctx.end:%Y-%m-%d}")
    print(format_table(run_cases(engine, ctx, args.repeat, args.only)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
