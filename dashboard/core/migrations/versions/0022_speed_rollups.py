"""22 speed, continued: roll-ups and indexes that keep every page query within its budget at scale.

- The follow-up queue: an index on the follow-up state (stored, or read from the platform's status)
  and the creation time, and one on the assigned mechanic and that state (PostgreSQL).
- The Upsells page's cohort per type and service title (``upsell_service_buckets``) and, for it and the
  cohort per mechanic, a level per UTC day (``upsell_service_days``, ``upsell_mechanic_days``); a trigger
  marks a recommendation's bucket when its type or title changes (PostgreSQL). The roll-ups' watermark
  is cleared, so until the next refresh rebuilds them all the queries read the raw rows.
- ``ix_mechanic_reviews_pending_queue``: the moderation queue's filters and flag counts from the index.
- Emails: the outbox's ``failure_cause`` (filled here for rows failed before), partial indexes of the
  failed rows by cause, of the rows awaiting an admin and of each milestone's sessions, covering indexes
  of sessions for the email job's rules (they serve the calendars' week of booked sessions too).
- The funnel from raw events: an index of each type's events by time that holds their customer.
- The funnel roll-up's daily counts (``crm_funnel_daily_*``), and on ``crm_funnel_progress`` the
  breakdown attributes it was counted with, the bin of each step's time since the one before and an
  index per step on it (the medians). The first funnel refresh after the upgrade counts them.
- The funnel's drop-off lists: an index per step of the journeys that reached it, by when.
"""

import sqlalchemy as sa
from alembic import op

from dashboard.core.migrate import apply_step
from dashboard.core.schema import ROLLUP_BULK_LOAD_SETTING, ROLLUP_WATERMARK, intake_watermarks
from dashboard.domain.emails.failures import classify_failed

revision = "0022_speed_rollups"
down_revision = "0021_speed"

# Migration 21's trigger on upsell_recommendations marks shown_at's bucket when a time, the price or the
# session changes; the cohort per service also depends on the type and title.
_SERVICE_TRIGGER = [
    f"""
CREATE OR REPLACE FUNCTION pitwall_rollup_upsell_service() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('{ROLLUP_BULK_LOAD_SETTING}', true) = 'on' THEN RETURN NULL; END IF;
    PERFORM pitwall_mark_bucket(OLD.shown_at);
    PERFORM pitwall_mark_bucket(NEW.shown_at);
    RETURN NULL;
END
$$""",
    "DROP TRIGGER IF EXISTS pitwall_rollup_upsell_service ON upsell_recommendations",
    "CREATE TRIGGER pitwall_rollup_upsell_service AFTER UPDATE OF recommendation_type, service_title "
    "ON upsell_recommendations FOR EACH ROW WHEN (NEW.recommendation_type IS DISTINCT FROM OLD.recommendation_type "
    "OR NEW.service_title IS DISTINCT FROM OLD.service_title) EXECUTE FUNCTION pitwall_rollup_upsell_service()",
]


def upgrade() -> None:
    conn = op.get_bind()
    apply_step(conn, "22")
    if conn.dialect.name == "postgresql":
        for statement in _SERVICE_TRIGGER:
            conn.execute(sa.text(statement))
    conn.execute(intake_watermarks.delete().where(intake_watermarks.c.name == ROLLUP_WATERMARK))
    classify_failed(conn)
