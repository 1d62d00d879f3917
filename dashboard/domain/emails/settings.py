"""The email job's settings: the ``emails.*`` group of ``dashboard.core.settings.SETTINGS``
(the environment, then ``[resend]`` and ``[pitwall]`` of ``.streamlit/secrets.toml``, then
the defaults; README's settings table lists each).

Max age: a milestone older than this is recorded as skipped instead of sent.
Look-back: milestones older than this are not looked for at all.
Lease: how long a claimed batch may stay unanswered before another run re-sends it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from dashboard.core.settings import Settings, load_settings


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

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailSettings:
        return cls(**settings.group("emails"))


def load_email_settings(env: Mapping[str, str] | None = None, secrets: Mapping | None = None) -> EmailSettings:
    """``secrets`` stands in for the secrets file (``{}``: none); see ``load_settings``."""
    return EmailSettings.from_settings(load_settings(env, secrets=secrets))
