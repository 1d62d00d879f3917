"""The benchmark command (``python -m dashboard bench``) runs every case on loaded demo data,
and every query of ``queries/`` has a case."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest
import sqlalchemy as sa

import queries
from dashboard.__main__ import main as cli
from dashboard.core import schema as s
from dashboard.core.db import make_engine
from dashboard.tools.bench.cases import CASES
from tests.browser_support import require_chromium


def _query_functions() -> dict[str, object]:
    """Every public function of ``queries/`` that takes a connection first, by dotted name."""
    found = {}
    for info in pkgutil.iter_modules(queries.__path__):
        module = importlib.import_module(f"queries.{info.name}")
        for name, function in vars(module).items():
            if (
                inspect.isfunction(function)
                and function.__module__ == module.__name__
                and not name.startswith("_")
                and next(iter(inspect.signature(function).parameters), None) == "conn"
            ):
                found[f"{info.name}.{name}"] = function
    return found


def test_every_query_has_a_benchmark_case_under_a_name_of_its_own():
    functions = _query_functions()
    assert len(functions) > 40 and "reviews.moderation_queue" in functions and "calendars.week_bounds" not in functions
    benchmarked = {case.query for case in CASES}
    assert [name for name, function in functions.items() if function not in benchmarked] == []
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


def test_bench_loads_demo_data_and_times_every_case(tmp_path, capsys):
    url = f"duckdb:///{tmp_path / 'bench.duckdb'}"
    assert cli(["bench", "--scale", "0.01", "--database", url, "--repeat", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("demo data loaded at scale 0.01")
    header = next(i for i, line in enumerate(out) if line.startswith("query"))
    rows = {line.split()[0]: line.split()[1:] for line in out[header + 1 :]}
    assert set(rows) == {case.name for case in CASES} and len(rows) >= 3
    for name, (count, cold, warm) in rows.items():
        assert int(count.replace(",", "")) >= 0 and float(cold) > 0 and float(warm) > 0, name

    assert cli(["bench", "--database", url, "--repeat", "1", "--only", "overview"]) == 0
    again = capsys.readouterr().out.splitlines()
    assert again[0].startswith("demo data reused")
    assert all(
        line.startswith("overview")
        for line in again[again.index(next(line for line in again if line.startswith("query"))) + 1 :]
    )


def test_bench_reports_unreachable_database_in_one_line(capsys):
    assert cli(["bench", "--database", "postgresql://postgres@127.0.0.1:1/none"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Cannot reach the database") and err.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["--scale", "0"],
        ["--scale", "abc"],
        ["--repeat", "0"],
        ["--api", "--workers", "0"],
        ["--api", "--clients", "1000"],
        ["--api", "--seconds", "inf"],
        ["--emails", "0"],
        ["--api", "--emails"],
        ["--load", "--sessions", "0"],
        ["--load", "--sessions", "1000"],
        ["--load", "--interval", "0"],
        ["--pages", "--load"],
        ["--pages", "--api"],
    ],
)
def test_bench_rejects_bad_arguments(args):
    with pytest.raises(SystemExit) as info:
        cli(["bench", *args, "--database", "duckdb:///:memory:"])
    assert info.value.code == 2


def test_api_bench_reports_every_figure(tmp_path, capsys):
    """A tiny run over HTTP (one worker: DuckDB has one writer); the figures, not their values."""
    url = f"duckdb:///{tmp_path / 'api-bench.duckdb'}"
    args = [
        "--api",
        "--scale",
        "0.01",
        "--database",
        url,
        "--workers",
        "1",
        "--samples",
        "2",
        "--batches",
        "2",
        "--clients",
        "2",
        "--seconds",
        "0.5",
    ]
    assert cli(["bench", *args]) == 0
    out = capsys.readouterr().out
    for pattern in [
        r"api on duckdb, 1 worker",
        r"slots over 14 days, one mechanic: p50 [\d.]+ ms, p95 [\d.]+ ms",
        r"booking check: p50 [\d.]+ ms, p95 [\d.]+ ms",
        r"interaction ingest: 1,000 events in batches of 500 from 4 senders: [\d,]+ events/s",
        r"mixed load: 2 clients for 0.5 s: [\d,]+ requests, [\d,]+ requests/s, p95 [\d.]+ ms, 0 errors",
    ]:
        assert re.search(pattern, out), pattern
    engine = make_engine(url)
    with engine.connect() as conn:  # the run cleans up after itself and revokes its key
        assert (
            conn.execute(
                sa.select(sa.func.count())
                .select_from(s.crm_interactions)
                .where(s.crm_interactions.c.event_id.isnot(None))
            ).scalar_one()
            == 0
        )
        assert conn.execute(sa.select(sa.func.count()).select_from(s.api_idempotency)).scalar_one() == 0
        assert conn.execute(sa.select(s.api_keys.c.revoked_at)).scalar_one() is not None
    engine.dispose()


def test_load_bench_drives_the_app_over_its_websocket(tmp_path, capsys):
    """The protocol client against a real app for a few seconds, 2 sessions: every page's server
    time and the load run's figures, with 0 errors (the figures, not their values)."""
    url = f"duckdb:///{tmp_path / 'load-bench.duckdb'}"
    args = ["--load", "--scale", "0.01", "--database", url, "--samples", "1", "--sessions", "2"]
    assert cli(["bench", *args, "--interval", "1", "--seconds", "3"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^(\S.*?)\s+(\d+)\s+(\d+)\s+0$", out, re.M)
    assert {page for page, *_ in rows} >= {"Overview", "CRM funnel", "Emails"}, out
    assert all(int(p50) <= int(p95) for _, p50, p95 in rows)
    assert re.search(r"median of the pages' p50: \d+ ms", out)
    found = re.search(r"load: 2 sessions, a page every 1 s each, for 3 s: (\d+) pages, .* (\d+) errors", out)
    assert found and int(found[1]) >= 2 and found[2] == "0", out


def test_load_client_goes_to_loopback_only():
    import asyncio

    from dashboard.tools.bench.load import Session

    with pytest.raises(ValueError, match="127.0.0.1 only"):
        asyncio.run(Session.open("http://example.com:8501"))


def test_pages_bench_says_when_no_page_has_the_title(capsys):
    assert cli(["bench", "--pages", "--only", "Nowhere", "--database", "duckdb:///:memory:"]) == 2
    assert capsys.readouterr().err == "error: no page's title starts with 'Nowhere' (--only)\n"


def test_pages_bench_times_a_page_in_the_browser(tmp_path, capsys):
    """Headless Chromium over a real app at demo scale on DuckDB, one page (``--only``), two
    samples: the report has that page's row with a figure in every column (not their values)."""
    require_chromium()
    url = f"duckdb:///{tmp_path / 'pages-bench.duckdb'}"
    args = ["--pages", "--scale", "0.01", "--database", url, "--samples", "2", "--only", "CRM"]
    assert cli(["bench", *args]) == 0
    out = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(out) if line.startswith("page"))
    columns = re.split(r"\s{2,}", out[header])
    assert columns == [
        "page",
        "sidebar p50 s",
        "p95 s",
        "full load p50 s",
        "timezone s",
        "interaction",
        "first s",
        "again p50 s",
    ]
    rows = out[header + 1 : -1]
    assert len(rows) == 1, out  # the one page --only chose
    cells = re.split(r"\s{2,}", rows[0])
    assert cells[0] == "CRM funnel" and cells[5] == "breakdown", cells
    assert all(re.fullmatch(r"\d+\.\d\d", cell) for cell in cells[1:5] + cells[6:]), cells
    assert out[-1].startswith("targets: sidebar (warm) 0.5 s, full load 1.5 s")
