"""Emails (not built yet)."""

from dashboard import ui

ui.page_header("Emails", "Will show the milestone emails sent to customers, and the failed ones to retry.")
ui.not_built_yet()
