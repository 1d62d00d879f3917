"""Email settings: the environment first, then ``.streamlit/secrets.toml``, then defaults.

| setting        | environment              | secrets                          | default                      |
|----------------|--------------------------|----------------------------------|------------------------------|
| API key        | RESEND_API_KEY           | [resend] api_key                 | none: sending is refused     |
| API URL        | RESEND_API_URL           | [resend] api_url                 | https://api.resend.com       |
| sender         | PITWALL_EMAIL_FROM       | [resend] from                    | Pitwall <onboarding@resend.dev> |
| reply-to       | PITWALL_EMAIL_REPLY_TO   | [resend] reply_to                | none                         |
| support inbox  | PITWALL_SUPPORT_EMAIL    | [pitwall] support_email          | none: support alerts skipped |
| platform URL   | PITWALL_APP_URL          | [pitwall] app_url                | http://localhost:3000        |
| brand name     | PITWALL_BRAND_NAME       | [pitwall] brand_name             | Pitwall                      |
| max age (h)    | PITWALL_EMAIL_MAX_AGE_HOURS | [pitwall] email_max_age_hours | 24                           |
| look-back (h)  | PITWALL_EMAIL_LOOKBACK_HOURS | [pitwall] email_lookback_hours | 48                         |
| max attempts   | PITWALL_EMAIL_MAX_ATTEMPTS | [pitwall] email_max_attempts   | 5 (per email)                |
| batch size     | PITWALL_EMAIL_BATCH_SIZE | [pitwall] email_batch_size       | 100 (Resend's batch maximum) |
| lease (s)      | PITWALL_EMAIL_LEASE_SECONDS | [pitwall] email_lease_seconds | 300                          |

Max age: a milestone older than this is recorded as skipped instead of sent.
Look-back: milestones older than this are not looked for at all.
Lease: how long a claimed batch may stay unanswered before another run re-sends it.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Mapping

from dashboard.core.settings import ConfigError, load_settings
from dashboard.domain.emails.due import DEFAULT_LOOKBACK


@dataclass(frozen=True)
class EmailSettings:
    api_key: str | None
    api_url: str
    sender: str
    reply_to: str | None
    support_email: str | None
    app_url: str
    brand_name: str
    max_age: dt.timedelta
    lookback: dt.timedelta
    max_attempts: int
    batch_size: int
    lease: dt.timedelta


def _pick(env: Mapping[str, str], name: str, section: Mapping, key: str, default=None):
    value = env.get(name) or section.get(key)
    return default if value in (None, "") else value


def _number(env, name, section, key, default, low, high) -> float:
    raw = _pick(env, name, section, key, default)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value:g}")
    return value


def load_email_settings(env: Mapping[str, str] | None = None, secrets: Mapping | None = None) -> EmailSettings:
    env = os.environ if env is None else env
    secrets = load_settings(env).secrets if secrets is None else secrets
    resend, pitwall = secrets.get("resend", {}), secrets.get("pitwall", {})
    return EmailSettings(
        api_key=_pick(env, "RESEND_API_KEY", resend, "api_key"),
        api_url=_pick(env, "RESEND_API_URL", resend, "api_url", "https://api.resend.com").rstrip("/"),
        sender=_pick(env, "PITWALL_EMAIL_FROM", resend, "from", "Pitwall <onboarding@resend.dev>"),
        reply_to=_pick(env, "PITWALL_EMAIL_REPLY_TO", resend, "reply_to"),
        support_email=_pick(env, "PITWALL_SUPPORT_EMAIL", pitwall, "support_email"),
        app_url=_pick(env, "PITWALL_APP_URL", pitwall, "app_url", "http://localhost:3000").rstrip("/"),
        brand_name=_pick(env, "PITWALL_BRAND_NAME", pitwall, "brand_name", "Pitwall"),
        max_age=dt.timedelta(hours=_number(env, "PITWALL_EMAIL_MAX_AGE_HOURS", pitwall, "email_max_age_hours",
                                           24, 0.1, 24 * 30)),
        lookback=dt.timedelta(hours=_number(env, "PITWALL_EMAIL_LOOKBACK_HOURS", pitwall, "email_lookback_hours",
                                            DEFAULT_LOOKBACK.total_seconds() / 3600, 1, 24 * 90)),
        max_attempts=int(_number(env, "PITWALL_EMAIL_MAX_ATTEMPTS", pitwall, "email_max_attempts", 5, 1, 20)),
        batch_size=int(_number(env, "PITWALL_EMAIL_BATCH_SIZE", pitwall, "email_batch_size", 100, 1, 100)),
        lease=dt.timedelta(seconds=_number(env, "PITWALL_EMAIL_LEASE_SECONDS", pitwall, "email_lease_seconds",
                                           300, 1, 3600)),
    )
