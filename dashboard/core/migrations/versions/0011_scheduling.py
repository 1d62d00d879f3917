"""11 scheduling: weekly availability slots with price multipliers, date overrides."""

from alembic import op

from dashboard.core.migrate import apply_step

revision = "0011_scheduling"
down_revision = "0010_follow_up_requests"


def upgrade() -> None:
    apply_step(op.get_bind(), "11")
