"""15 follow-ups: lifecycle, pricing rules, SLA."""

from alembic import op

from dashboard.core.migrate import apply_step

revision = "0015_follow_up_lifecycle"
down_revision = "0014_scheduling_pricing"


def upgrade() -> None:
    apply_step(op.get_bind(), "15")
