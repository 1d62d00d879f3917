"""Files staff download from the app: every cell of every export is inert in a spreadsheet.

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a line break (also after
leading spaces) would run as a formula in Excel, LibreOffice or Google Sheets; it gets a
leading apostrophe, the spreadsheet's own "this is text" mark. Line breaks inside a cell
(CR, LF and the other Unicode line separators) become spaces, so no importer splits the
row and starts a formula on the next line. NUL bytes are dropped. Numbers, dates and
empty cells are left as they are.

Streamlit's own table download (the toolbar of ``st.dataframe``) is switched off for the
whole app in ``.streamlit/config.toml`` (``client.disableDataExport``): every download is
a ``st.download_button`` whose data comes from ``as_csv``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import numbers
import re
from collections.abc import Callable

import pandas as pd
import streamlit as st

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x85\u2028\u2029]+")


def spreadsheet_safe(value: object) -> object:
    """``value`` as a spreadsheet shows it without running anything (see the module docstring)."""
    if value is None or isinstance(value, (numbers.Number, decimal.Decimal, dt.date, dt.time, pd.Timestamp)):
        return value
    if not isinstance(value, str) and pd.isna(value):
        return value
    text = str(value).replace("\x00", "")
    if text.lstrip(" ").startswith(FORMULA_START):
        text = "'" + text
    return LINE_BREAKS.sub(" ", text)


def as_csv(frame: pd.DataFrame) -> bytes:
    """``frame`` as UTF-8 CSV for a download, every cell and header through ``spreadsheet_safe``."""
    safe = frame.map(spreadsheet_safe).rename(columns=spreadsheet_safe)
    return safe.to_csv(index=False).encode()


def export_frame(
    frame: pd.DataFrame, columns: dict[str, str], *, times: tuple[str, ...] = (), tz: str = "UTC"
) -> bytes:
    """``frame``'s ``columns`` (name -> header, in that order) as a CSV for a download, the
    ``times`` columns to the second in ``tz`` (``dashboard.ui.times``, blank when missing; say
    the timezone in their headers); ids a page keeps for links stay out."""
    from dashboard.ui.times import column_to_the_second

    shown = frame.assign(**{column: column_to_the_second(frame[column], tz) for column in times})
    return as_csv(shown[list(columns)].rename(columns=columns))


# The file of a download button is made only when it is clicked (``make`` returns the bytes,
# e.g. from ``as_csv``), so drawing the page costs nothing.
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
