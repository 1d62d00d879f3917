"""A page of the console under streamlit's AppTest, run as the app shell runs it."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from dashboard.core.auth import Actor
from dashboard.core.period import Period
from dashboard.core.settings import Settings
from dashboard.ui import components as ui

APP = Path(__file__).resolve().parents[1] / "dashboard" / "app.py"


def open_any_page(engine, period: Period, actor: Actor, page: Path, query: dict | None = None) -> AppTest:
    """Run ``page`` as ``actor`` on ``engine`` with ``period`` in the sidebar (the app shell's context),
    opened from a link with the URL parameters ``query``."""
    at = AppTest.from_file(str(page), default_timeout=60)
    at.query_params.update(query or {})
    settings = Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        read_url=None,
        source="environment",
        allow_anonymous=True,
        demo_scale=1,
        secrets={},
    )
    at.session_state["_pitwall_context"] = ui.Context(settings, actor, period)
    at.run()
    assert not at.exception, at.exception
    return at


def open_page(at: AppTest, page: str, **state) -> AppTest:
    """Switch a running app to ``pages/<page>`` with ``state`` in the session."""
    for key, value in state.items():
        at.session_state[key] = value
    return at.switch_page(f"../pages/{page}").run()
