"""22 speed, continued: roll-ups and indexes that keep every page query within its budget at scale.

Emails: the outbox's failure_cause (filled here for rows failed before), partial indexes of the failed rows by cause,
of the rows awaiting an admin and of each milestone's sessions, covering indexes of sessions for the email job's rules.
"""

from alembic import op

from dashboard.core.migrate import apply_step
from dashboard.domain.emails.failures import classify_failed

revision = "0022_speed_rollups"
down_revision = "0021_speed"


def upgrade() -> None:
    conn = op.get_bind()
    apply_step(conn, "22")
    classify_failed(conn)
