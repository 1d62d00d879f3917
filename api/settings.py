"""The API's settings: the environment first, then ``[api]`` of ``.streamlit/secrets.toml``, then defaults.

| setting                         | environment                  | secrets [api]          | default            |
|---------------------------------|------------------------------|------------------------|--------------------|
| Supabase JWT secret (HS256)     | SUPABASE_JWT_SECRET          | jwt_secret             | none               |
| Supabase JWKS (ES256/RS256)     | SUPABASE_JWKS_URL            | jwks_url               | none               |
| CORS origins (comma-separated)  | PITWALL_API_CORS_ORIGINS     | cors_origins           | none: no CORS      |
| largest request body (bytes)    | PITWALL_API_MAX_BODY_BYTES   | max_body_bytes         | 2,097,152 (2 MiB)  |
| requests per minute per customer| PITWALL_API_CUSTOMER_RATE    | customer_rate          | 120                |
| requests per minute per key     | PITWALL_API_KEY_RATE         | key_rate               | 6,000              |

The database, the scheduling rules (``[scheduling]``) and the follow-up rules
(``[followups]``) are the app's (``dashboard.core.settings``). Without a JWT secret and a
JWKS, customer tokens are refused and only service keys get in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from dashboard.core.settings import ConfigError, Settings, load_settings
from dashboard.domain.followups import FollowUpError, FollowUpRules
from dashboard.domain.calendars.slots import SlotRules, ValidationError


@dataclass(frozen=True)
class ApiSettings:
    app: Settings
    jwt_secret: str | None
    jwks_url: str | None
    cors_origins: tuple[str, ...]
    max_body_bytes: int
    customer_rate: int
    key_rate: int
    slot_rules: SlotRules
    follow_up_rules: FollowUpRules


def _pick(env: Mapping[str, str], name: str, section: Mapping, key: str):
    value = env.get(name) or section.get(key)
    return None if value in (None, "") else value


def _whole(env, name, section, key, default: int, low: int, high: int) -> int:
    raw = _pick(env, name, section, key)
    if raw is None:
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {str(raw)[:40]!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be from {low:,} to {high:,}, got {value:,}")
    return value


def _origins(raw) -> tuple[str, ...]:
    if raw is None:
        return ()
    items = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    return tuple(item.strip().rstrip("/") for item in items if str(item).strip())


def load_api_settings(env: Mapping[str, str] | None = None) -> ApiSettings:
    """Raises ConfigError naming the setting that is present but unusable."""
    env = os.environ if env is None else env
    app = load_settings(env)
    section = app.secrets.get("api", {})
    try:
        slot_rules = SlotRules.from_mapping(app.secrets.get("scheduling", {}))
        follow_up_rules = FollowUpRules.from_mapping(app.secrets.get("followups", {}))
    except (ValidationError, FollowUpError) as exc:
        raise ConfigError(str(exc)) from None
    return ApiSettings(
        app=app,
        jwt_secret=_pick(env, "SUPABASE_JWT_SECRET", section, "jwt_secret"),
        jwks_url=_pick(env, "SUPABASE_JWKS_URL", section, "jwks_url"),
        cors_origins=_origins(_pick(env, "PITWALL_API_CORS_ORIGINS", section, "cors_origins")),
        max_body_bytes=_whole(env, "PITWALL_API_MAX_BODY_BYTES", section, "max_body_bytes",
                              2 * 1024 * 1024, 1024, 64 * 1024 * 1024),
        customer_rate=_whole(env, "PITWALL_API_CUSTOMER_RATE", section, "customer_rate", 120, 1, 1_000_000),
        key_rate=_whole(env, "PITWALL_API_KEY_RATE", section, "key_rate", 6000, 1, 1_000_000),
        slot_rules=slot_rules,
        follow_up_rules=follow_up_rules,
    )
