"""16 CRM: upsell service catalogue (with one starting service per type) and funnel roll-ups."""

import sqlalchemy as sa
from alembic import op

from dashboard.core.migrate import apply_step
from dashboard.core.schema import upsell_services

revision = "0016_upsell_catalogue"
down_revision = "0015_follow_up_lifecycle"

# The catalogue the upsell engine starts from; admins edit it on the Upsells page.
STARTING_CATALOGUE = (
    ("follow_up", "15-minute follow-up video call", "Check in with your mechanic after the repair.", 1900),
    ("maintenance_plan", "Seasonal maintenance plan", "Four guided check-ups a year.", 9900),
    ("premium_upgrade", "Pitwall Premium (monthly)", "Priority booking, free follow-up questions.", 999),
)


def upgrade() -> None:
    conn = op.get_bind()
    apply_step(conn, "16")
    if conn.execute(sa.select(sa.func.count()).select_from(upsell_services)).scalar_one() == 0:
        conn.execute(
            upsell_services.insert(),
            [
                {
                    "recommendation_type": kind,
                    "title": title,
                    "description": text,
                    "price_cents": cents,
                    "updated_by": "migration 16",
                }
                for kind, title, text, cents in STARTING_CATALOGUE
            ],
        )
