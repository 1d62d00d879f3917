"""17 indexes for period filters: email outbox by day and status, summaries delivered, upsell purchases."""

from alembic import op

from dashboard.core.migrate import apply_step

revision = "0017_period_indexes"
down_revision = "0016_upsell_catalogue"


def upgrade() -> None:
    apply_step(op.get_bind(), "17")
