"""21 speed: the overview's roll-ups (per 15 minutes of UTC) and the triggers that mark their changed
buckets (PostgreSQL); trigram indexes for customer search where pg_trgm can be installed; indexes for
published reviews by day and upsells by mechanic.

The roll-ups start empty and unused: the first ``refresh`` (the demo load, the intake or email job,
or ``python -m dashboard overview``) builds them, and until then the queries read the raw rows.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from dashboard.core.migrate import apply_step
from dashboard.core.schema import ROLLUP_BUCKET_MINUTES, ROLLUP_BULK_LOAD_SETTING

SECONDS = ROLLUP_BUCKET_MINUTES * 60

revision = "0021_speed"
down_revision = "0020_console"


def upgrade() -> None:
    conn = op.get_bind()
    apply_step(conn, "21")
    if conn.dialect.name == "postgresql":
        for statement in trigger_statements():
            conn.execute(sa.text(statement))


_MARK_FUNCTION = f"""
CREATE OR REPLACE FUNCTION pitwall_mark_bucket(ts timestamptz) RETURNS void LANGUAGE sql AS $$
    INSERT INTO rollup_dirty (bucket_start)
    SELECT to_timestamp(floor(extract(epoch FROM ts) / {SECONDS}) * {SECONDS})
    WHERE ts IS NOT NULL
    ON CONFLICT DO NOTHING
$$
"""


def _row_trigger(table: str, columns: Sequence[str], marks: str) -> list[str]:
    """A row trigger on ``table`` that runs ``marks`` (PL/pgSQL using ``r``, the old or the new
    row) for the old and the new row, when a row is inserted or deleted or one of ``columns`` changes."""
    changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in columns)
    name = f"pitwall_rollup_{table}"
    return [
        f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
    IF current_setting('{ROLLUP_BULK_LOAD_SETTING}', true) = 'on' THEN RETURN NULL; END IF;
    IF TG_OP = 'UPDATE' AND NOT ({changed}) THEN RETURN NULL; END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN r := OLD; {marks} END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN r := NEW; {marks} END IF;
    RETURN NULL;
END
$$""",
        f"DROP TRIGGER IF EXISTS {name} ON {table}",
        f"CREATE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()",
    ]


def trigger_statements() -> list[str]:
    """The SQL that installs the marking triggers (idempotent)."""
    mark = "PERFORM pitwall_mark_bucket({});"
    return [
        _MARK_FUNCTION,
        *_row_trigger(
            "sessions",
            ("status", "ended_at", "request_id", "mechanic_id"),
            mark.format("r.ended_at")
            + " PERFORM pitwall_mark_bucket(q.created_at) FROM requests q WHERE q.id = r.request_id;"
            + " IF TG_OP <> 'UPDATE' OR NEW.mechanic_id IS DISTINCT FROM OLD.mechanic_id THEN"
            + " PERFORM pitwall_mark_bucket(u.shown_at) FROM upsell_recommendations u WHERE u.session_id = r.id;"
            + " END IF;",
        ),
        *_row_trigger("requests", ("created_at", "is_follow_up"), mark.format("r.created_at")),
        *_row_trigger("mechanic_reviews", ("status", "rating", "created_at"), mark.format("r.created_at")),
        *_row_trigger(
            "upsell_recommendations",
            ("shown_at", "clicked_at", "purchased_at", "price_cents", "session_id"),
            mark.format("r.purchased_at") + " " + mark.format("r.shown_at"),
        ),
        *_row_trigger("email_outbox", ("status", "milestone", "created_at"), mark.format("r.created_at")),
    ]
