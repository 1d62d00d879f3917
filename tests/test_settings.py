"""Settings: the table walked (documented, defaults, one precedence rule), precedence and
messages, and the one-line message for an unreachable database."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pytest
import sqlalchemy as sa

from dashboard.core.db import DatabaseUnavailable, check_connection, explain_failure, make_engine, redact
from dashboard.core.settings import (
    DEFAULT_DUCKDB,
    DEFAULTS,
    ROOT,
    SETTINGS,
    ConfigError,
    Settings,
    leaves,
    load_settings,
    normalize_url,
)
from dashboard.domain.calendars.slots import SlotRules
from dashboard.domain.followups import FollowUpRules

PG = "postgresql+psycopg://u:secret@db.example:5432/app"


@pytest.fixture
def secrets(tmp_path):
    path = tmp_path / "secrets.toml"
    path.write_text(
        '[connections.sql]\nurl = "postgres://s@secrets-host/app"\nread_url = "postgresql://r@replica/app"\n'
        "[pitwall]\nallow_anonymous = true\ndemo_scale = 2\n"
    )
    return path


def readme_table() -> set[tuple]:
    """(environment variable, (section, key)) of each row of README's settings table."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("| setting | environment | secrets.toml | default |") + 2
    rows = set()
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        _, env, secret, _ = (cell.strip().strip("`") for cell in line.strip("|").split("|"))
        section, _, key = secret.partition("] ")
        rows.add((env or None, (section.lstrip("["), key) if secret else None))
    return rows


def nested(dotted: str, value) -> dict:
    for part in reversed(dotted.split(".")):
        value = {part: value}
    return value


EXAMPLE = (ROOT / ".streamlit" / "secrets.toml.example").read_text()
# dotted path -> value of each setting in the example, the commented-out ones (``# key = value``) too;
# [auth] is Streamlit's own (its login), not a setting of the table
DOCUMENTED = {
    path: value
    for path, value in leaves(tomllib.loads(re.sub(r"(?m)^# ([a-z_]+ = )", r"\1", EXAMPLE)))
    if not path.startswith("auth.")
}


def test_every_setting_is_in_the_readme_table_and_nothing_else():
    assert readme_table() == {(setting.env, setting.secret) for setting in SETTINGS}


def test_every_setting_is_in_the_secrets_example_and_nothing_else():
    assert set(DOCUMENTED) == {".".join(setting.secret) for setting in SETTINGS if setting.secret}
    named = set(re.findall(r"\b(?:DATABASE|PITWALL|RESEND|SUPABASE)_[A-Z_]+\b", EXAMPLE))
    assert named == {setting.env for setting in SETTINGS if setting.env}
    load_settings({}, ROOT / ".streamlit" / "secrets.toml.example")  # and every value there is usable


def test_defaults_come_from_the_table():
    assert len({setting.name for setting in SETTINGS}) == len(SETTINGS)
    assert dict(load_settings({}, secrets={}).values) == DEFAULTS
    plain = Settings(
        database_url="duckdb:///x", read_url=None, source="environment", allow_anonymous=False, demo_scale=1, secrets={}
    )
    assert plain.values == DEFAULTS and plain.demo_role == DEFAULTS["app.demo_role"]
    assert SlotRules.from_settings(plain) == SlotRules()
    assert (
        FollowUpRules.from_settings(plain)
        == FollowUpRules()
        == FollowUpRules.from_settings(load_settings({}, secrets={}))
    )


@pytest.mark.parametrize("setting", SETTINGS, ids=[setting.name for setting in SETTINGS])
def test_one_precedence_rule_for_every_setting(setting):
    """An empty variable counts as unset; its text and the secrets key's TOML value give the same value;
    an unusable secrets value is named by its section and key."""
    if setting.env:
        for empty in ("", "  "):
            assert load_settings({setting.env: empty}, secrets={}).values[setting.name] == setting.default
    if not setting.secret:
        return
    dotted = ".".join(setting.secret)
    value = DOCUMENTED[dotted]
    from_secrets = load_settings({setting.env: ""} if setting.env else {}, secrets=nested(dotted, value))
    if setting.env:
        text = str(value).lower() if isinstance(value, bool) else str(value)
        from_env = load_settings({setting.env: text}, secrets=nested(dotted, [1]))  # the environment wins
        assert from_env.values[setting.name] == from_secrets.values[setting.name]
    with pytest.raises(ConfigError, match=re.escape(f"[{setting.secret[0]}] {setting.secret[1]} must be")):
        load_settings({}, secrets=nested(dotted, [1]))


def test_messages_name_the_setting_its_source_and_what_is_allowed(tmp_path):
    path = tmp_path / "secrets.toml"
    path.write_text("[scheduling]\nsession_minutes = 0\n")
    with pytest.raises(ConfigError) as info:
        load_settings({}, path)
    assert str(info.value) == f"[scheduling] session_minutes must be a whole number from 5 to 240, got 0 (in {path})"
    with pytest.raises(ConfigError, match=r"^PITWALL_API_KEY_RATE must be a whole number from 1 to 1,000,000, got 'x'"):
        load_settings({"PITWALL_API_KEY_RATE": "x"}, secrets={})
    with pytest.raises(ConfigError, match=r"^PITWALL_ALLOW_ANONYMOUS must be true or false \(or yes/no"):
        load_settings({"PITWALL_ALLOW_ANONYMOUS": "maybe"}, secrets={})
    path.write_text('[pitwall]\ndemo_scale = "2"\n')  # a number in secrets.toml is a TOML number
    with pytest.raises(ConfigError, match=r"^\[pitwall\] demo_scale must be a number above 0 and at most 1000"):
        load_settings({}, path)
    path.write_text('[resend]\napi_kee = "re_x"\n')
    with pytest.raises(
        ConfigError,
        match=r"^\[resend\] api_kee is not a setting \(in .*\); the settings there "
        r"are api_key, api_url, from, reply_to$",
    ):
        load_settings({}, path)
    with pytest.raises(
        ConfigError,
        match=r"^DATABASE_URL is not usable: Unsupported database URL scheme "
        r"'mysql'",
    ) as info:
        load_settings({"DATABASE_URL": "mysql://u:hunter2@h/db"}, secrets={})
    assert "hunter2" not in str(info.value)


def test_an_empty_variable_leaves_the_secrets_value(secrets):
    settings = load_settings({"DATABASE_URL": "", "PITWALL_ALLOW_ANONYMOUS": "", "PITWALL_DEMO_SCALE": " "}, secrets)
    assert settings.source == "secrets" and settings.allow_anonymous and settings.demo_scale == 2.0


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
    env = {
        "PITWALL_DUCKDB_PATH": str(tmp_path / "x.duckdb"),
        "DATABASE_READ_URL": "postgresql://r@h/db",
        "PITWALL_ALLOW_ANONYMOUS": "yes",
        "PITWALL_SECRETS": str(tmp_path / "none.toml"),
    }
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
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: Cannot reach the database")
    assert "Traceback" not in result.stderr


def test_locked_duckdb_file_is_explained(tmp_path):
    path = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,time; c=duckdb.connect({str(path)!r}); print('ready', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(DatabaseUnavailable, match="open in another process"):
            check_connection(make_engine(f"duckdb:///{path}"))
    finally:
        holder.kill()


@pytest.mark.parametrize(
    "url, secret",
    [
        ("postgresql+psycopg://u:hunter2@db.example/app", "hunter2"),
        ("postgresql+psycopg://u@db.example/app?password=hunter2", "hunter2"),
        ("postgresql+psycopg://u@db.example/app?sslmode=require&sslpassword=keypass", "keypass"),
        ("postgresql+psycopg://u@db.example/app?passfile=/run/pgpass", "/run/pgpass"),
    ],
)
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
    message = explain_failure(
        RuntimeError('invalid option "password=hunter2"'), "postgresql+psycopg://u@h/db?password=hunter2"
    )
    assert "hunter2" not in message and 'invalid option "password=***"' in message


def test_errors_carry_no_sql_parameters(engine):
    with pytest.raises(sa.exc.DBAPIError) as info, engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM no_such_table WHERE email = :email"), {"email": "customer@example.com"})
    assert "customer@example.com" not in str(info.value)
    assert "hidden due to hide_parameters" in str(info.value)
