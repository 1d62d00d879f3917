"""09 CRM: crm_interactions and upsell_recommendations."""

from alembic import op

from dashboard.core.migrate import apply_step

revision = "0009_crm_and_upsells"
down_revision = "0008_reputation"


def upgrade() -> None:
    apply_step(op.get_bind(), "09")
