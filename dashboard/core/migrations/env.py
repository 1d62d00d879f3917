"""Alembic environment: runs on the connection handed in by ``dashboard.core.migrate``."""

from alembic import context

import dashboard.core.migrate  # noqa: F401  registers the DuckDB implementation

connection = context.config.attributes["connection"]
context.configure(connection=connection, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
