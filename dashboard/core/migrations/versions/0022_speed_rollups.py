"""22 speed, continued: roll-ups and indexes that keep every page query within its budget at scale.

- ix_sessions_status_scheduled_mechanic: a week's booked sessions with their mechanic, from the index.
"""

from alembic import op

from dashboard.core.migrate import apply_step

revision = "0022_speed_rollups"
down_revision = "0021_speed"


def upgrade() -> None:
    apply_step(op.get_bind(), "22")
