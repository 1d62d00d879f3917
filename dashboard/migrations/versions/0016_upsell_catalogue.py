"""16 CRM: upsell service catalogue and funnel roll-ups."""

from alembic import op

from dashboard.migrate import apply_step

revision = "0016_upsell_catalogue"
down_revision = "0015_follow_up_lifecycle"


def upgrade() -> None:
    apply_step(op.get_bind(), "16")
