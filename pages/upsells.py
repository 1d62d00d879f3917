"""Upsells (not built yet)."""

from dashboard import ui

ui.page_header("Upsells", "Will show which follow-up offers are shown, clicked and bought after a session, and the revenue they bring.")
ui.not_built_yet()
