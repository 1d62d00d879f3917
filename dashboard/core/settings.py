"""Settings, declared once (``SETTINGS``) and resolved in one place for the app, the API, the jobs and the tests.

Each setting is read from its environment variable, then from its key in
``.streamlit/secrets.toml`` (``PITWALL_SECRETS`` names another file), then it takes its
default; an empty (or blank) environment variable or secrets value counts as unset.
Environment values are text; in secrets.toml numbers and switches are TOML numbers and
booleans. A key in one of the table's secrets sections that no setting declares is an
error, as is a value outside its limits; the message names the variable or the key (and
the file) and what is allowed. The database is ``DATABASE_URL``, then ``[connections.sql]
url``, then the embedded DuckDB file ``PITWALL_DUCKDB_PATH`` (``data/pitwall.duckdb``).

``load_settings`` parses every setting once; the typed groups the code uses are built
from its ``values`` (``Settings.group``): ``EmailSettings``, ``ApiSettings``,
``SlotRules``, ``FollowUpRules``.
"""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dashboard.core.errors import ConfigError
from dashboard.core.schema import FOLLOW_UP_TYPES, STAFF_ROLES

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SECRETS = ROOT / ".streamlit" / "secrets.toml"
DEFAULT_DUCKDB = ROOT / "data" / "pitwall.duckdb"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


# --- what a value may be: each parser takes the raw value and whether it is environment text,
# and raises ValueError saying what is allowed ---------------------------------------------


def _shown(value) -> str:
    return repr(value[:40] if isinstance(value, str) else value)


def _text(value, text: bool) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be text, got {type(value).__name__}")
    return value.strip()


def _link(value, text: bool) -> str:
    return _text(value, text).rstrip("/")


def _path(value, text: bool) -> Path:
    return Path(_text(value, text))


def _database_url(value, text: bool) -> str:
    try:
        return normalize_url(_text(value, text))
    except ConfigError as exc:  # the message shows the scheme only: a URL may hold a password
        raise ValueError(f"is not usable: {exc}") from None


def _flag(value, text: bool) -> bool:
    if text and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if not text and isinstance(value, bool):
        return value
    raise ValueError(f"must be true or false{' (or yes/no, on/off, 1/0)' if text else ''}, got {_shown(value)}")


def _origins(value, text: bool) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ValueError(f"must be comma-separated text or a list of origins, got {_shown(value)}")
    return tuple(item.strip().rstrip("/") for item in items if item.strip())


def _choice(options: tuple[str, ...]) -> Callable:
    def parse(value, text: bool) -> str:
        chosen = value.strip().lower() if isinstance(value, str) else value
        if chosen not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {_shown(value)}")
        return chosen

    return parse


def _whole(low: int, high: int) -> Callable:
    def parse(value, text: bool) -> int:
        if text:
            try:
                value = int(value.strip())
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be a whole number from {low:,} to {high:,}, got {_shown(value)}")
        return value

    return parse


def _number(low: float, high: float, above: bool = False, then: Callable = float) -> Callable:
    """A number from ``low`` (or, with ``above``, more than ``low``) to ``high``, then converted."""

    def parse(value, text: bool):
        if text:
            try:
                value = float(value.strip())
            except ValueError:
                pass
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not (low < value if above else low <= value)
            or not value <= high
        ):
            allowed = f"above {low:g} and at most {high:g}" if above else f"from {low:g} to {high:g}"
            raise ValueError(f"must be a number {allowed}, got {_shown(value)}")
        return then(value)

    return parse


def _hours(hours: float) -> dt.timedelta:
    return dt.timedelta(hours=hours)


def _seconds(seconds: float) -> dt.timedelta:
    return dt.timedelta(seconds=seconds)


# --- the settings ----------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    name: str  # "<group>.<attribute>": the typed group that uses it and the attribute there
    env: str | None  # its environment variable
    secret: tuple[str, str] | None  # (section, key) in secrets.toml; a dotted key is a nested table
    default: Any  # the value when it is not set, as the code uses it
    parse: Callable[[Any, bool], Any]
    help: str


SLA_DEFAULTS = {"quick_question": 4 * 60, "mini_extension": 8 * 60, "new_issue": 24 * 60}

SETTINGS: tuple[Setting, ...] = (
    Setting("app.secrets_file", "PITWALL_SECRETS", None, DEFAULT_SECRETS, _path, "the secrets file"),
    Setting(
        "app.database_url",
        "DATABASE_URL",
        ("connections.sql", "url"),
        None,
        _database_url,
        "the database: postgres://, postgresql:// (psycopg 3) or duckdb:///path; none: the embedded file",
    ),
    Setting(
        "app.read_url",
        "DATABASE_READ_URL",
        ("connections.sql", "read_url"),
        None,
        _database_url,
        "a read replica for the pages' queries; none: the database",
    ),
    Setting(
        "app.duckdb_path",
        "PITWALL_DUCKDB_PATH",
        None,
        DEFAULT_DUCKDB,
        _path,
        "the embedded DuckDB file, used when no database is set",
    ),
    Setting(
        "app.demo_scale",
        "PITWALL_DEMO_SCALE",
        ("pitwall", "demo_scale"),
        1.0,
        _number(0, 1000, above=True),
        "size of the demo data generated on the embedded database's first start",
    ),
    Setting(
        "app.demo_role",
        "PITWALL_DEMO_ROLE",
        ("pitwall", "demo_role"),
        "admin",
        _choice(STAFF_ROLES),
        "who the embedded demo runs as; ignored on any other database",
    ),
    Setting(
        "app.allow_anonymous",
        "PITWALL_ALLOW_ANONYMOUS",
        ("pitwall", "allow_anonymous"),
        False,
        _flag,
        "anyone who can open the app uses a non-demo database as an admin when [auth] is not set",
    ),
    Setting(
        "emails.api_key",
        "RESEND_API_KEY",
        ("resend", "api_key"),
        None,
        _text,
        "Resend API key; none: sending is refused",
    ),
    Setting(
        "emails.api_url", "RESEND_API_URL", ("resend", "api_url"), "https://api.resend.com", _link, "Resend API URL"
    ),
    Setting(
        "emails.sender",
        "PITWALL_EMAIL_FROM",
        ("resend", "from"),
        "Pitwall <onboarding@resend.dev>",
        _text,
        "sender of the emails",
    ),
    Setting("emails.reply_to", "PITWALL_EMAIL_REPLY_TO", ("resend", "reply_to"), None, _text, "reply-to address"),
    Setting(
        "emails.support_email",
        "PITWALL_SUPPORT_EMAIL",
        ("pitwall", "support_email"),
        None,
        _text,
        "support inbox for alerts; none: support alerts are skipped",
    ),
    Setting(
        "emails.app_url",
        "PITWALL_APP_URL",
        ("pitwall", "app_url"),
        "http://localhost:3000",
        _link,
        "the platform, for the emails' links",
    ),
    Setting(
        "emails.brand_name",
        "PITWALL_BRAND_NAME",
        ("pitwall", "brand_name"),
        "Pitwall",
        _text,
        "brand name in the emails",
    ),
    Setting(
        "emails.max_age",
        "PITWALL_EMAIL_MAX_AGE_HOURS",
        ("pitwall", "email_max_age_hours"),
        _hours(24),
        _number(0.1, 24 * 30, then=_hours),
        "hours: an older milestone is skipped instead of sent",
    ),
    Setting(
        "emails.lookback",
        "PITWALL_EMAIL_LOOKBACK_HOURS",
        ("pitwall", "email_lookback_hours"),
        _hours(48),
        _number(1, 24 * 90, then=_hours),
        "hours: older milestones are not looked for",
    ),
    Setting(
        "emails.max_attempts",
        "PITWALL_EMAIL_MAX_ATTEMPTS",
        ("pitwall", "email_max_attempts"),
        5,
        _whole(1, 20),
        "attempts per email before it is marked failed",
    ),
    Setting(
        "emails.batch_size",
        "PITWALL_EMAIL_BATCH_SIZE",
        ("pitwall", "email_batch_size"),
        100,
        _whole(1, 100),
        "emails per Resend batch (Resend's maximum is 100)",
    ),
    Setting(
        "emails.lease",
        "PITWALL_EMAIL_LEASE_SECONDS",
        ("pitwall", "email_lease_seconds"),
        _seconds(300),
        _number(1, 3600, then=_seconds),
        "seconds a claimed batch may stay unanswered before it is re-sent",
    ),
    Setting(
        "api.jwt_secret",
        "SUPABASE_JWT_SECRET",
        ("api", "jwt_secret"),
        None,
        _text,
        "Supabase JWT secret (HS256 tokens)",
    ),
    Setting(
        "api.jwks_url",
        "SUPABASE_JWKS_URL",
        ("api", "jwks_url"),
        None,
        _text,
        "Supabase JWKS (ES256/RS256 tokens), a URL or a file",
    ),
    Setting(
        "api.cors_origins",
        "PITWALL_API_CORS_ORIGINS",
        ("api", "cors_origins"),
        (),
        _origins,
        "origins allowed by CORS, comma-separated; none: no CORS",
    ),
    Setting(
        "api.max_body_bytes",
        "PITWALL_API_MAX_BODY_BYTES",
        ("api", "max_body_bytes"),
        2 * 1024 * 1024,
        _whole(1024, 64 * 1024 * 1024),
        "largest request body in bytes",
    ),
    Setting(
        "api.customer_rate",
        "PITWALL_API_CUSTOMER_RATE",
        ("api", "customer_rate"),
        120,
        _whole(1, 1_000_000),
        "requests a minute per customer",
    ),
    Setting(
        "api.key_rate",
        "PITWALL_API_KEY_RATE",
        ("api", "key_rate"),
        6000,
        _whole(1, 1_000_000),
        "requests a minute per service key",
    ),
    Setting(
        "scheduling.session_minutes", None, ("scheduling", "session_minutes"), 30, _whole(5, 240), "length of a session"
    ),
    Setting(
        "scheduling.interval_minutes",
        None,
        ("scheduling", "interval_minutes"),
        30,
        _whole(5, 240),
        "a start is offered every this many minutes from the window's start",
    ),
    Setting(
        "scheduling.buffer_minutes",
        None,
        ("scheduling", "buffer_minutes"),
        10,
        _whole(0, 120),
        "kept free before and after every booked session",
    ),
    Setting(
        "scheduling.notice_minutes",
        None,
        ("scheduling", "notice_minutes"),
        120,
        _whole(0, 7 * 24 * 60),
        "the earliest start is this long after now",
    ),
    Setting(
        "followups.window_days",
        None,
        ("followups", "window_days"),
        14,
        _whole(1, 365),
        "follow-ups are allowed this many days after the session ended",
    ),
    Setting(
        "followups.max_open_per_session",
        None,
        ("followups", "max_open_per_session"),
        2,
        _whole(1, 20),
        "follow-ups waiting for an answer per session",
    ),
    *(
        Setting(
            f"followups.sla_minutes.{kind}",
            None,
            ("followups", f"sla_minutes.{kind}"),
            SLA_DEFAULTS[kind],
            _whole(5, 30 * 24 * 60),
            f"target minutes to the answer of a {kind.replace('_', ' ')}",
        )
        for kind in FOLLOW_UP_TYPES
    ),
)
DEFAULTS: dict[str, Any] = {setting.name: setting.default for setting in SETTINGS}
_SECRETS_FILE = SETTINGS[0]  # resolved first: it says where the others are


@dataclass(frozen=True)
class Settings:
    database_url: str
    read_url: str | None
    source: str  # "environment", "secrets" or "embedded"
    allow_anonymous: bool
    demo_scale: float
    secrets: Mapping
    demo_role: str = DEFAULTS["app.demo_role"]  # who the embedded demo runs as; ignored on any other database
    values: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULTS), repr=False)  # every setting by name

    @property
    def embedded(self) -> bool:
        return self.source == "embedded"

    @property
    def query_url(self) -> str:
        """Where read-only queries go: the read replica when one is set."""
        return self.read_url or self.database_url

    def group(self, name: str) -> dict[str, Any]:
        """The settings of one group (``emails``, ``api``, ...) by attribute: ``SomeGroup(**settings.group(...))``."""
        prefix = name + "."
        return {key[len(prefix) :]: value for key, value in self.values.items() if key.startswith(prefix)}


def normalize_url(url: str) -> str:
    """Accept the URL forms hosting providers hand out and pick the psycopg 3 driver."""
    url = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if url.startswith(("postgresql+psycopg://", "duckdb://")):
        return url
    scheme = url.split("://", 1)[0] if "://" in url else url[:20]
    raise ConfigError(f"Unsupported database URL scheme '{scheme}': use postgresql:// or duckdb:///path")


def read_secrets(path: Path | None = None) -> dict:
    path = Path(path) if path else DEFAULT_SECRETS
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def _lookup(secrets: Mapping, *dotted: str):
    node: Any = secrets
    for part in ".".join(dotted).split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def leaves(table: Mapping, prefix: str = ""):
    """(dotted key, value) of every value in a TOML table and the tables in it."""
    for key, value in table.items():
        if isinstance(value, Mapping):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield prefix + key, value


def _check_sections(secrets: Mapping, where: str) -> None:
    """Refuse keys no setting declares in the sections the table reads (a typo would go unnoticed)."""
    declared: dict[str, list[str]] = {}
    for setting in SETTINGS:
        if setting.secret:
            declared.setdefault(setting.secret[0], []).append(setting.secret[1])
    for section, keys in declared.items():
        table = _lookup(secrets, section)
        if table is None:
            continue
        if not isinstance(table, Mapping):
            raise ConfigError(f"[{section}] must be a table{where}")
        unknown = [key for key, _ in leaves(table) if key not in keys]
        if unknown:
            verb = "is not a setting" if len(unknown) == 1 else "are not settings"
            raise ConfigError(
                f"[{section}] {', '.join(unknown)} {verb}{where}; the settings there are {', '.join(keys)}"
            )


def _resolve(setting: Setting, env: Mapping[str, str], secrets: Mapping, where: str) -> tuple[Any, str]:
    """The value and where it came from: "environment", "secrets" or "default"."""
    if setting.env and env.get(setting.env, "").strip():
        raw, label, text, source = env[setting.env], setting.env, True, "environment"
    elif setting.secret and (raw := _lookup(secrets, *setting.secret)) is not None and str(raw).strip():
        raw, label, text, source = raw, f"[{setting.secret[0]}] {setting.secret[1]}", False, "secrets"
    else:
        return setting.default, "default"
    try:
        return setting.parse(raw, text), source
    except ValueError as exc:
        raise ConfigError(f"{label} {exc}{where if source == 'secrets' else ''}") from None


def load_settings(
    env: Mapping[str, str] | None = None, secrets_path: Path | None = None, *, secrets: Mapping | None = None
) -> Settings:
    """Every setting, parsed once. ``secrets`` stands in for the secrets file (``{}``: none)."""
    env = os.environ if env is None else env
    path, source = _resolve(_SECRETS_FILE, env, {}, "")
    path = Path(secrets_path) if secrets_path and source == "default" else path
    where = ""
    if secrets is None:
        secrets, where = read_secrets(path), f" (in {path})"
    _check_sections(secrets, where)
    values, sources = {_SECRETS_FILE.name: path}, {}
    for setting in SETTINGS[1:]:
        values[setting.name], sources[setting.name] = _resolve(setting, env, secrets, where)
    embedded = values["app.database_url"] is None
    return Settings(
        database_url=f"duckdb:///{values['app.duckdb_path']}" if embedded else values["app.database_url"],
        read_url=values["app.read_url"],
        source="embedded" if embedded else sources["app.database_url"],
        allow_anonymous=values["app.allow_anonymous"],
        demo_scale=values["app.demo_scale"],
        secrets=secrets,
        demo_role=values["app.demo_role"],
        values=values,
    )
