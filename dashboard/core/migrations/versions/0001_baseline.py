"""Baseline: the platform tables, created only where absent (auth.users, profiles, mechanics,
requests, sessions, session_files, session_extensions)."""

from alembic import op

from dashboard.core.migrate import apply_step

revision = "0001_baseline"
down_revision = None


def upgrade() -> None:
    apply_step(op.get_bind(), "base")
