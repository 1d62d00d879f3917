"""10 follow-ups: requests.parent_session_id, is_follow_up, follow_up_type."""

from alembic import op

from dashboard.core.migrate import apply_step

revision = "0010_follow_up_requests"
down_revision = "0009_crm_and_upsells"


def upgrade() -> None:
    apply_step(op.get_bind(), "10")
