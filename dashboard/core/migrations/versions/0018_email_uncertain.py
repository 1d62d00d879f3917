"""18 email outbox: the ``uncertain`` status and ``batch_started_at`` (when a batch's key was first used)."""

from alembic import op

from dashboard.core.migrate import apply_step

revision = "0018_email_uncertain"
down_revision = "0017_period_indexes"


def upgrade() -> None:
    apply_step(op.get_bind(), "18")
