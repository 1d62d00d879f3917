"""The CSV download button of a list: its file made only when clicked (``make`` returns the
bytes, e.g. from ``dashboard.ui.exports.as_csv``), so drawing the page costs nothing."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st


def csv_download(make: Callable[[], bytes], *, file_name: str, help: str, key: str) -> None:
    """A "Download (CSV)" button for ``file_name``; ``help`` says what it holds."""
    st.download_button(
        "Download (CSV)",
        make,
        file_name=file_name,
        mime="text/csv",
        icon=":material/download:",
        on_click="ignore",
        help=help,
        key=key,
    )
