"""08 reputation: mechanic profile columns and mechanic_reviews."""

from alembic import op

from dashboard.core.migrate import apply_step

revision = "0008_reputation"
down_revision = "0001_baseline"


def upgrade() -> None:
    apply_step(op.get_bind(), "08")
