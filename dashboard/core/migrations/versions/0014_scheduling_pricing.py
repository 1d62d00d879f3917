"""14 scheduling and pricing: base prices, override hours."""

from alembic import op

from dashboard.core.migrate import apply_step

revision = "0014_scheduling_pricing"
down_revision = "0013_reputation"


def upgrade() -> None:
    apply_step(op.get_bind(), "14")
