"""Read-only SQL query modules, one per area.

Each function takes a SQLAlchemy ``Connection`` and keyword-only typed
filters and returns a pandas DataFrame; aggregation happens in SQL. The page
layer caches them with a TTL (``dashboard.ui.components.run_query``).
"""
