"""Customer lookup (not built yet)."""

from dashboard import ui

ui.page_header("Customer lookup", "Will find a customer by email or name and show their requests, sessions, reviews and emails.")
ui.not_built_yet()
