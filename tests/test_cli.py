"""``python -m dashboard``: the one preamble (database URL, connection, errors in one line)
and each command's happy path on a DuckDB file."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dashboard.__main__ import main as cli
from dashboard.core import schema as s
from dashboard.core.db import make_engine
from dashboard.core.migrate import head_revision
from tests.local_resend import LocalResend

DOWN = "postgresql://postgres:hunter2@127.0.0.1:1/nowhere"  # a closed port


@pytest.fixture(autouse=True)
def _no_configuration(tmp_path, monkeypatch):
    """Nothing of the machine's settings: no DATABASE_URL, no secrets file, no Resend key."""
    for name in ("DATABASE_URL", "RESEND_API_KEY", "RESEND_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PITWALL_SECRETS", str(tmp_path / "absent-secrets.toml"))


@pytest.fixture
def url(tmp_path) -> str:
    return f"duckdb:///{tmp_path / 'pitwall.duckdb'}"


def one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err and "hunter2" not in captured.err + captured.out
    return captured.err


@pytest.mark.parametrize(
    "command",
    [
        ["migrate"],
        ["demo", "--scale", "0.01"],
        ["bench"],
        ["emails", "--once"],
        ["intake", "--once"],
        ["funnel"],
        ["upsells"],
        ["api"],
        ["keys", "list"],
    ],
)
def test_every_command_reports_a_database_that_is_down_in_one_line(command, capsys):
    assert cli([*command, "--database", DOWN]) == 2
    err = one_line_error(capsys)
    assert err.startswith("error: Cannot reach the database at postgresql+psycopg://postgres:***@127.0.0.1:1/nowhere")


@pytest.mark.parametrize(
    "database, message",
    [
        ("mysql://root:hunter2@db/pitwall", "Unsupported database URL scheme 'mysql'"),
        ("postgresql://postgres:hunter2@db:port/pitwall", "The database URL cannot be read"),
    ],
)
def test_a_bad_database_url_is_told_without_its_password(database, message, capsys):
    assert cli(["migrate", "--database", database]) == 2
    assert message in one_line_error(capsys)


def test_the_configured_database_is_the_default(url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", DOWN)
    assert cli(["funnel"]) == 2
    assert "127.0.0.1:1/nowhere" in one_line_error(capsys)
    monkeypatch.setenv("DATABASE_URL", "sqlite:///x.db")
    assert cli(["funnel"]) == 2
    assert "Unsupported database URL scheme 'sqlite'" in one_line_error(capsys)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["nope"], "invalid choice: 'nope'"),
        ([], "the following arguments are required: command"),
        (["emails"], "one of the arguments --once --loop is required"),
        (["intake", "--loop", "--interval", "0"], "must be more than 0"),
        (["upsells", "--days", "367"], "must be from 1 to 366"),
        (["keys"], "the following arguments are required: action"),
    ],
)
def test_unknown_commands_and_bad_options_are_refused_with_the_usage(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: python -m dashboard") and message in err


def test_a_database_error_midway_is_told_in_one_line(url, capsys):
    assert cli(["funnel", "--database", url]) == 1  # not migrated: the roll-up's tables are missing
    assert "crm_" in one_line_error(capsys)


def test_the_jobs_run_once_on_a_migrated_file(url, monkeypatch, capsys):
    assert cli(["migrate", "--database", url]) == 0
    assert capsys.readouterr().out == f"database at revision {head_revision()}\n"
    assert cli(["migrate", "--database", url]) == 0  # safe to run again
    capsys.readouterr()

    assert cli(["funnel", "--rebuild", "--database", url]) == 0
    assert "funnel " in capsys.readouterr().out
    assert cli(["upsells", "--days", "3", "--database", url]) == 0
    assert capsys.readouterr().out == "upsell recommendations created: none\n"
    assert cli(["intake", "--once", "--database", url]) == 0
    assert capsys.readouterr().out == "intake reviews: none waiting; follow_ups: none waiting\n"

    assert cli(["emails", "--once", "--database", url]) == 2
    assert "RESEND_API_KEY is not set" in one_line_error(capsys)
    with LocalResend() as resend:
        monkeypatch.setenv("RESEND_API_KEY", resend.api_key)
        monkeypatch.setenv("RESEND_API_URL", resend.url)
        assert cli(["emails", "--once", "--database", url]) == 0
    assert capsys.readouterr().out.startswith("enqueued 0 (0 to send, 0 skipped); sent 0,")


def test_keys_take_the_database_after_the_action(url, capsys):
    assert cli(["migrate", "--database", url]) == 0
    capsys.readouterr()
    assert cli(["keys", "create", "platform-web", "--database", url]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("pw_")
    assert cli(["keys", "list", "--database", url]) == 0
    assert '"name": "platform-web"' in capsys.readouterr().out
    assert cli(["keys", "revoke", "nobody", "--database", url]) == 2
    assert "No key named 'nobody'" in one_line_error(capsys)


def test_the_api_refuses_workers_on_the_embedded_file(url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", url)  # (--database would be handed to the workers in the environment)
    assert cli(["migrate"]) == 0
    assert cli(["api", "--workers", "2"]) == 2
    assert "one writer process" in one_line_error(capsys)


def test_demo_loads_then_refuses_a_database_with_data(url, capsys):
    assert cli(["migrate", "--database", url]) == 0
    assert cli(["demo", "--scale", "0.01", "--seed", "3", "--database", url]) == 0
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.profiles)).scalar_one() > 0
    engine.dispose()
    capsys.readouterr()
    assert cli(["demo", "--scale", "0.01", "--database", url]) == 2
    assert "already has data" in one_line_error(capsys)
