"""22 speed, continued: roll-ups and indexes that keep every page query within its budget at scale.

- the funnel from raw events: an index of each type's events by time that holds their customer.
- the funnel roll-up's daily counts (``crm_funnel_daily_*``), and on ``crm_funnel_progress`` the
  breakdown attributes it was counted with, the bin of each step's time since the one before and an
  index per step on it (the medians). The first funnel refresh after the upgrade counts them.
- the funnel's drop-off lists: an index per step of the journeys that reached it, by when.
"""

from alembic import op

from dashboard.core.migrate import apply_step

revision = "0022_speed_rollups"
down_revision = "0021_speed"


def upgrade() -> None:
    apply_step(op.get_bind(), "22")
