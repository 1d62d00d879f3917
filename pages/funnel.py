"""CRM funnel (not built yet)."""

from dashboard import ui

ui.page_header("CRM funnel", "Will show where customers drop off between intake, session, summary viewed and a follow-up purchase, by channel and week.")
ui.not_built_yet()
