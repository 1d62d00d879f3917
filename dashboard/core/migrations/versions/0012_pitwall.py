"""Pitwall's own tables: staff roles, audit log, email outbox; review moderation state."""

from alembic import op

from dashboard.core.migrate import apply_step

revision = "0012_pitwall"
down_revision = "0011_scheduling"


def upgrade() -> None:
    apply_step(op.get_bind(), "12")
