"""19 platform API: service keys, idempotent replies, interaction event ids, intake of platform rows.

Besides the step's tables and columns: the reviews and follow-ups that exist when it
runs are marked as handled (the intake job applies the rules to rows written later),
and on PostgreSQL a trigger notifies channel ``pitwall_intake`` when the platform
inserts a row the rules have not seen (``dashboard/domain/intake.py`` listens on it).
"""

import sqlalchemy as sa
from alembic import op

from dashboard.core.migrate import apply_step

revision = "0019_platform_api"
down_revision = "0018_email_uncertain"

CHANNEL = "pitwall_intake"

NOTIFY_FUNCTION = f"""
CREATE OR REPLACE FUNCTION pitwall_intake_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
    RETURN NULL;
END
$$
"""
TRIGGERS = {
    "mechanic_reviews": "NEW.rules_applied_at IS NULL",
    "requests": "NEW.is_follow_up AND NEW.rules_applied_at IS NULL",
}


def upgrade() -> None:
    conn = op.get_bind()
    apply_step(conn, "19")
    conn.execute(sa.text("UPDATE mechanic_reviews SET rules_applied_at = created_at WHERE rules_applied_at IS NULL"))
    conn.execute(
        sa.text("UPDATE requests SET rules_applied_at = created_at WHERE is_follow_up AND rules_applied_at IS NULL")
    )
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(NOTIFY_FUNCTION))
        for table, condition in TRIGGERS.items():
            conn.execute(sa.text(f"DROP TRIGGER IF EXISTS pitwall_intake_notify ON {table}"))
            conn.execute(
                sa.text(
                    f"CREATE TRIGGER pitwall_intake_notify AFTER INSERT ON {table} "
                    f"FOR EACH ROW WHEN ({condition}) EXECUTE FUNCTION pitwall_intake_notify()"
                )
            )
