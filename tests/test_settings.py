"""Settings precedence and the one-line message for an unreachable database."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa

from dashboard.core.settings import DEFAULT_DUCKDB, ROOT, ConfigError, load_settings, normalize_url
from dashboard.core.db import DatabaseUnavailable, check_connection, explain_failure, make_engine, redact

PG = "postgresql+psycopg://u:secret@db.example:5432/app"


@pytest.fixture
def secrets(tmp_path):
    path = tmp_path / "secrets.toml"
    path.write_text(
        '[connections.sql]\nurl = "postgres://s@secrets-host/app"\nread_url = "postgresql://r@replica/app"\n'
        "[pitwall]\nallow_anonymous = true\ndemo_scale = 2\n"
    )
    return path


def test_environment_beats_secrets(secrets):
    settings = load_settings({"DATABASE_URL": "postgres://u:secret@db.example:5432/app"}, secrets)
    assert settings.database_url == PG and settings.source == "environment"
    assert settings.query_url == "postgresql+psycopg://r@replica/app"  # replica from secrets still honoured


def test_secrets_beat_embedded(secrets):
    settings = load_settings({}, secrets)
    assert settings.database_url == "postgresql+psycopg://s@secrets-host/app"
    assert settings.source == "secrets" and settings.allow_anonymous and settings.demo_scale == 2.0


def test_embedded_default_without_any_setting(tmp_path):
    settings = load_settings({}, tmp_path / "missing.toml")
    assert settings.embedded and settings.database_url == f"duckdb:///{DEFAULT_DUCKDB}"
    assert settings.query_url == settings.database_url and not settings.allow_anonymous
    assert DEFAULT_DUCKDB.parent == ROOT / "data"


def test_environment_overrides_for_path_replica_and_anonymous(tmp_path):
    env = {"PITWALL_DUCKDB_PATH": str(tmp_path / "x.duckdb"), "DATABASE_READ_URL": "postgresql://r@h/db",
           "PITWALL_ALLOW_ANONYMOUS": "yes", "PITWALL_SECRETS": str(tmp_path / "none.toml")}
    settings = load_settings(env)
    assert settings.database_url == f"duckdb:///{tmp_path / 'x.duckdb'}"
    assert settings.read_url == "postgresql+psycopg://r@h/db" and settings.allow_anonymous


@pytest.mark.parametrize("url", ["mysql://u@h/db", "sqlite:///x.db", "nonsense"])
def test_unsupported_url_is_a_clear_error(url):
    with pytest.raises(ConfigError, match="Unsupported database URL scheme"):
        normalize_url(url)


@pytest.mark.parametrize("scale", ["abc", "0", "-1", "5000"])
def test_bad_demo_scale_is_a_clear_error(tmp_path, scale):
    with pytest.raises(ConfigError, match="PITWALL_DEMO_SCALE"):
        load_settings({"PITWALL_DEMO_SCALE": scale}, tmp_path / "none.toml")


def test_invalid_secrets_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "secrets.toml"
    bad.write_text("[connections.sql\nurl=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({}, bad)


def test_unreachable_database_message_is_one_line_without_password():
    engine = make_engine("postgresql+psycopg://postgres:hunter2@127.0.0.1:1/nowhere")
    with pytest.raises(DatabaseUnavailable) as info:
        check_connection(engine)
    message = str(info.value)
    assert "\n" not in message and "hunter2" not in message
    assert message.startswith("Cannot reach the database at postgresql+psycopg://postgres:***@127.0.0.1:1/nowhere")


def test_cli_prints_one_line_error_for_unreachable_database():
    result = subprocess.run(
        [sys.executable, "-m", "dashboard", "migrate", "--database", "postgresql://postgres@127.0.0.1:1/nowhere"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: Cannot reach the database")
    assert "Traceback" not in result.stderr


def test_locked_duckdb_file_is_explained(tmp_path):
    path = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(path)!r}); print('ready', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(DatabaseUnavailable, match="open in another process"):
            check_connection(make_engine(f"duckdb:///{path}"))
    finally:
        holder.kill()


@pytest.mark.parametrize("url, secret", [
    ("postgresql+psycopg://u:hunter2@db.example/app", "hunter2"),
    ("postgresql+psycopg://u@db.example/app?password=hunter2", "hunter2"),
    ("postgresql+psycopg://u@db.example/app?sslmode=require&sslpassword=keypass", "keypass"),
    ("postgresql+psycopg://u@db.example/app?passfile=/run/pgpass", "/run/pgpass"),
])
def test_redact_removes_every_credential_form(url, secret):
    shown = redact(url)
    assert secret not in shown and "***" in shown
    assert shown.startswith("postgresql+psycopg://u") and "db.example/app" in shown


def test_redact_shows_nothing_of_what_is_not_a_url():
    assert redact("u:hunter2@@::/") == "***"


def test_unreachable_database_message_hides_a_password_given_as_query_parameter():
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nowhere?password=hunter2")
    with pytest.raises(DatabaseUnavailable) as info:
        check_connection(engine)
    assert "hunter2" not in str(info.value) and "password=***" in str(info.value)


def test_driver_message_is_scrubbed_of_the_password():
    message = explain_failure(RuntimeError('invalid option "password=hunter2"'),
                              "postgresql+psycopg://u@h/db?password=hunter2")
    assert "hunter2" not in message and 'invalid option "password=***"' in message


def test_errors_carry_no_sql_parameters(engine):
    with pytest.raises(sa.exc.DBAPIError) as info, engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM no_such_table WHERE email = :email"), {"email": "customer@example.com"})
    assert "customer@example.com" not in str(info.value)
    assert "hidden due to hide_parameters" in str(info.value)
