"""Mechanic calendars & pricing (not built yet)."""

from dashboard import ui

ui.page_header("Mechanic calendars & pricing", "Will let managers set mechanics' weekly availability, date overrides and price multipliers.")
ui.not_built_yet()
