"""Follow-ups (not built yet)."""

from dashboard import ui

ui.page_header("Follow-ups", "Will be the queue of customers' follow-up questions, to assign and answer them in time.")
ui.not_built_yet()
