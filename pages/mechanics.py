"""Mechanic profiles (not built yet)."""

from dashboard import ui

ui.page_header("Mechanic profiles", "Will show each mechanic's specialties, rating, reviews and response times.")
ui.not_built_yet()
