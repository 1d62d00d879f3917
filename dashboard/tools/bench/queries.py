"""The query benchmark: ``python -m dashboard bench --scale N [--database URL] [--only PREFIX]``.

Loads demo data at scale N into the database when it is empty (or reuses what
is there), then runs every case of ``dashboard.tools.bench.cases`` and prints
one row per case: rows returned, cold time (first run on a fresh connection)
and warm time (median of the repeats). ``--api`` measures the platform API over
HTTP instead (``dashboard.tools.bench.api``), ``--emails`` the email job
(``dashboard.tools.bench.emails``).
"""

from __future__ import annotations

import statistics
import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard.core import schema as s
from dashboard.tools.bench.cases import CASES, BenchContext


def run_cases(engine: Engine, ctx: BenchContext, repeat: int, only: str | None = None) -> list[dict]:
    rows = []
    for case in sorted(CASES, key=lambda case: case.name):
        if only and not case.name.startswith(only):
            continue
        with engine.connect() as conn:
            arguments = case.arguments(conn, ctx)  # e.g. sample ids, read once: not part of the query's time
        engine.dispose()  # cold: a brand-new connection, nothing prepared or cached in the session
        timings = []
        for _ in range(repeat + 1):
            with engine.connect() as conn:
                started = time.perf_counter()
                count = case.run(conn, arguments)
                timings.append((time.perf_counter() - started) * 1000)
        rows.append(
            {"query": case.name, "rows": count, "cold_ms": timings[0], "warm_ms": statistics.median(timings[1:])}
        )
    return rows


def format_table(rows: list[dict]) -> str:
    width = max([len("query")] + [len(r["query"]) for r in rows])
    lines = [f"{'query':<{width}}  {'rows':>9}  {'cold ms':>9}  {'warm ms':>9}"]
    lines += [f"{r['query']:<{width}}  {r['rows']:>9,}  {r['cold_ms']:>9.1f}  {r['warm_ms']:>9.1f}" for r in rows]
    return "\n".join(lines)


def ensure_demo_data(engine: Engine, scale: float, seed: int) -> str:
    from dashboard.tools.demo.load import load_if_empty

    started = time.perf_counter()
    loaded = load_if_empty(engine, scale=scale, seed=seed)
    with engine.connect() as conn:
        customers = conn.execute(sa.select(sa.func.count()).select_from(s.profiles)).scalar_one()
        interactions = conn.execute(sa.select(sa.func.count()).select_from(s.crm_interactions)).scalar_one()
    how = f"loaded at scale {scale:g} in {time.perf_counter() - started:.1f} s" if loaded else "reused"
    return f"demo data {how}: {customers:,} customers, {interactions:,} interactions"
