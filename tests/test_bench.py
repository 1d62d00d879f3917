"""The benchmark command runs every registered query on loaded demo data."""

from __future__ import annotations

import pytest

from dashboard import bench
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


@pytest.mark.parametrize("args", [["--scale", "0"], ["--scale", "abc"], ["--repeat", "0"]])
def test_bench_rejects_bad_arguments(args):
    with pytest.raises(SystemExit) as info:
        bench.main(args + ["--database", "duckdb:///:memory:"])
    assert info.value.code == 2
