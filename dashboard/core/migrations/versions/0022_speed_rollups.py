"""22 speed, continued: roll-ups and indexes that keep every page query within its budget at scale.

- the follow-up queue: an index on the follow-up state (stored, or read from the platform's status)
  and the creation time, and one on the assigned mechanic and that state (PostgreSQL).
"""

from alembic import op

from dashboard.core.migrate import apply_step

revision = "0022_speed_rollups"
down_revision = "0021_speed"


def upgrade() -> None:
    apply_step(op.get_bind(), "22")
