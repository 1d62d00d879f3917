"""23 speed, continued: indexes for the queries still over their budget at scale.

- The funnel of a period between UTC midnights (a display timezone other than UTC): an index of the
  roll-up's entries by their previous entry, for the entries whose previous entry is in the period's
  first hours.
"""

from alembic import op

from dashboard.core.migrate import apply_step

revision = "0023_speed_indexes"
down_revision = "0022_speed_rollups"


def upgrade() -> None:
    apply_step(op.get_bind(), "23")
