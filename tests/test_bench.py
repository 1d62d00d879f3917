"""The benchmark command runs every registered query on loaded demo data."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from dashboard.tools.bench import queries as bench
from dashboard.core import schema as s
from dashboard.core.db import make_engine
from queries.registry import CASES, register


def test_registering_a_name_twice_is_refused():
    register("test.twice", lambda conn, ctx: None)
    try:
        with pytest.raises(ValueError, match="registered twice"):
            register("test.twice", lambda conn, ctx: None)
    finally:
        del CASES["test.twice"]


def test_bench_loads_demo_data_and_times_every_registered_query(tmp_path, capsys):
    url = f"duckdb:///{tmp_path / 'bench.duckdb'}"
    assert bench.main(["--scale", "0.01", "--database", url, "--repeat", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("demo data loaded at scale 0.01")
    header = next(i for i, line in enumerate(out) if line.startswith("query"))
    rows = {line.split()[0]: line.split()[1:] for line in out[header + 1:]}
    bench.load_query_modules()
    assert set(rows) == set(CASES) and len(rows) >= 3
    for name, (count, cold, warm) in rows.items():
        assert int(count.replace(",", "")) >= 0 and float(cold) > 0 and float(warm) > 0, name

    assert bench.main(["--database", url, "--repeat", "1", "--only", "overview"]) == 0
    again = capsys.readouterr().out.splitlines()
    assert again[0].startswith("demo data reused")
    assert all(line.startswith("overview") for line in again[again.index(next(
        line for line in again if line.startswith("query"))) + 1:])


def test_bench_reports_unreachable_database_in_one_line(capsys):
    assert bench.main(["--database", "postgresql://postgres@127.0.0.1:1/none"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Cannot reach the database") and err.count("\n") == 1


@pytest.mark.parametrize("args", [["--scale", "0"], ["--scale", "abc"], ["--repeat", "0"], ["--api", "--workers", "0"],
                                  ["--api", "--clients", "1000"], ["--api", "--seconds", "inf"]])
def test_bench_rejects_bad_arguments(args):
    with pytest.raises(SystemExit) as info:
        bench.main(args + ["--database", "duckdb:///:memory:"])
    assert info.value.code == 2


def test_api_bench_reports_every_figure(tmp_path, capsys):
    """A tiny run over HTTP (one worker: DuckDB has one writer); the figures, not their values."""
    url = f"duckdb:///{tmp_path / 'api-bench.duckdb'}"
    args = ["--api", "--scale", "0.01", "--database", url, "--workers", "1", "--samples", "2", "--batches", "2",
            "--clients", "2", "--seconds", "0.5"]
    assert bench.main(args) == 0
    out = capsys.readouterr().out
    for pattern in [r"api on duckdb, 1 worker", r"slots over 14 days, one mechanic: p50 [\d.]+ ms, p95 [\d.]+ ms",
                    r"booking check: p50 [\d.]+ ms, p95 [\d.]+ ms",
                    r"interaction ingest: 1,000 events in batches of 500 from 4 senders: [\d,]+ events/s",
                    r"mixed load: 2 clients for 0.5 s: [\d,]+ requests, [\d,]+ requests/s, p95 [\d.]+ ms, 0 errors"]:
        assert re.search(pattern, out), pattern
    engine = make_engine(url)
    with engine.connect() as conn:  # the run cleans up after itself and revokes its key
        assert conn.execute(sa.select(sa.func.count()).select_from(s.crm_interactions)
                            .where(s.crm_interactions.c.event_id.isnot(None))).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(s.api_idempotency)).scalar_one() == 0
        assert conn.execute(sa.select(s.api_keys.c.revoked_at)).scalar_one() is not None
    engine.dispose()
