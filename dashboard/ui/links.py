"""Links between pages: a customer's name opens their lookup, a mechanic's their profile, a
home tile the page behind it with the right filter.

URLs are relative to the app ("customers?customer=…"), so they work under any base path.
Each page reads the parameters it is linked with (documented in docs/ui.md):
- customers: ``customer`` (an id: open that customer) or ``q`` (search text);
- mechanics: ``mechanic`` (an id: open the profile);
- calendars: ``mechanic`` (an id: open that calendar) and ``view`` (heatmaps, peak, …: docs/calendars.md);
- reviews, followups, emails: the filters named in their docs.
"""

from __future__ import annotations

import functools
from pathlib import Path
from urllib.parse import urlencode

import streamlit as st


def page_url(file: str, **params: object) -> str:
    """The relative URL of ``pages/<file>`` with ``params`` (None values left out)."""
    query = urlencode({key: str(value) for key, value in params.items() if value is not None})
    return Path(file).stem + (f"?{query}" if query else "")


# A table links every row's name, on every rerun: the same ids' URLs are remembered.
@functools.lru_cache(maxsize=8192, typed=True)
def customer_url(customer_id: object) -> str:
    return page_url("customers.py", customer=customer_id)


@functools.lru_cache(maxsize=8192, typed=True)
def mechanic_url(mechanic_id: object) -> str:
    return page_url("mechanics.py", mechanic=mechanic_id)


def name_column(label: str, help: str | None = None, pinned: bool = False, width=None):
    """A table column of links whose text is the name in the URL's ``#`` part, e.g.
    ``customers?customer=…#Jane Doe`` shows "Jane Doe" (see ``with_name``). A click opens
    the page in a new browser tab (Streamlit's link cells always do)."""
    return st.column_config.LinkColumn(label, help=help, display_text=r"#(.*)$", pinned=pinned, width=width)


def with_name(url: str, name: object) -> str:
    """``url`` carrying the name ``name_column`` shows; the part after ``#`` never reaches the server."""
    return f"{url}#{'' if name is None else name}"
