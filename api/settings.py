"""The API's settings: the ``api.*`` group of ``dashboard.core.settings.SETTINGS`` (the
environment, then ``[api]`` of ``.streamlit/secrets.toml``, then the defaults; README's
settings table lists each), with the app's database settings, the scheduling rules and the
follow-up rules. Without a JWT secret and a JWKS, customer tokens are refused and only
service keys get in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dashboard.core.settings import Settings, load_settings
from dashboard.domain.calendars.slots import SlotRules
from dashboard.domain.followups import FollowUpRules


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


def load_api_settings(env: Mapping[str, str] | None = None) -> ApiSettings:
    """Raises ConfigError naming the setting that is present but unusable."""
    app = load_settings(env)
    return ApiSettings(
        app=app,
        **app.group("api"),
        slot_rules=SlotRules.from_settings(app),
        follow_up_rules=FollowUpRules.from_settings(app),
    )
