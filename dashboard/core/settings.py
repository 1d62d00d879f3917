"""Settings, resolved in one place for the app, the jobs and the tests.

Precedence for the database: ``DATABASE_URL`` (environment), then
``[connections.sql] url`` in ``.streamlit/secrets.toml``, then the embedded
DuckDB file ``data/pitwall.duckdb``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from dashboard.core.errors import ConfigError  # noqa: F401 (imported from here by callers)
from dashboard.core.schema import STAFF_ROLES

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SECRETS = ROOT / ".streamlit" / "secrets.toml"
DEFAULT_DUCKDB = ROOT / "data" / "pitwall.duckdb"

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    database_url: str
    read_url: str | None
    source: str  # "environment", "secrets" or "embedded"
    allow_anonymous: bool
    demo_scale: float
    secrets: Mapping
    demo_role: str = "admin"  # who the embedded demo runs as; ignored on any other database

    @property
    def embedded(self) -> bool:
        return self.source == "embedded"

    @property
    def query_url(self) -> str:
        """Where read-only queries go: the read replica when one is set."""
        return self.read_url or self.database_url


def normalize_url(url: str) -> str:
    """Accept the URL forms hosting providers hand out and pick the psycopg 3 driver."""
    url = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
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


def _flag(value) -> bool:
    return value is True or str(value).strip().lower() in _TRUE


def load_settings(env: Mapping[str, str] | None = None, secrets_path: Path | None = None) -> Settings:
    env = os.environ if env is None else env
    secrets = read_secrets(Path(env["PITWALL_SECRETS"]) if env.get("PITWALL_SECRETS") else secrets_path)
    sql = secrets.get("connections", {}).get("sql", {})
    pitwall = secrets.get("pitwall", {})

    if env.get("DATABASE_URL"):
        url, source = env["DATABASE_URL"], "environment"
    elif sql.get("url"):
        url, source = sql["url"], "secrets"
    else:
        path = Path(env.get("PITWALL_DUCKDB_PATH") or DEFAULT_DUCKDB)
        url, source = f"duckdb:///{path}", "embedded"
    read_url = env.get("DATABASE_READ_URL") or sql.get("read_url") or None

    scale_text = env.get("PITWALL_DEMO_SCALE", pitwall.get("demo_scale", 1))
    try:
        demo_scale = float(scale_text)
    except (TypeError, ValueError):
        raise ConfigError(f"PITWALL_DEMO_SCALE must be a number, got {scale_text!r}") from None
    if not 0 < demo_scale <= 1000:
        raise ConfigError(f"PITWALL_DEMO_SCALE must be between 0 and 1000, got {demo_scale}")

    demo_role = str(env.get("PITWALL_DEMO_ROLE", pitwall.get("demo_role", "admin"))).strip().lower()
    if demo_role not in STAFF_ROLES:
        raise ConfigError(f"PITWALL_DEMO_ROLE must be one of {', '.join(STAFF_ROLES)}, got {demo_role!r}")

    return Settings(
        database_url=normalize_url(url),
        read_url=normalize_url(read_url) if read_url else None,
        source=source,
        allow_anonymous=_flag(env.get("PITWALL_ALLOW_ANONYMOUS", pitwall.get("allow_anonymous", False))),
        demo_scale=demo_scale,
        secrets=secrets,
        demo_role=demo_role,
    )
