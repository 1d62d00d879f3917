"""20 console: the ``profanity`` hide reason; a follow-up's recorded answer and who recorded it."""

from alembic import op

from dashboard.core.migrate import apply_step

revision = "0020_console"
down_revision = "0019_platform_api"


def upgrade() -> None:
    apply_step(op.get_bind(), "20")
