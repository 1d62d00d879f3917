"""Review moderation (not built yet)."""

from dashboard import ui

ui.page_header("Review moderation", "Will list new customer reviews so support can publish them or hide them with a reason.")
ui.not_built_yet()
