"""The Streamlit shell's parts: shared page components (``components``), who sees which page
(``access``) and CSV exports (``exports``). ``dashboard/app.py`` is the router."""
