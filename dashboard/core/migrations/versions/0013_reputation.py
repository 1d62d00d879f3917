"""13 reputation: review moderation support (helpful votes, flags, settings)."""

from alembic import op

from dashboard.core.migrate import apply_step

revision = "0013_reputation"
down_revision = "0012_pitwall"


def upgrade() -> None:
    apply_step(op.get_bind(), "13")
