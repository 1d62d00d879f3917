"""23 speed: indexes of the email job's due rules, of the weekly follow-ups and of the funnel's edges.

- ``ix_email_outbox_milestone_created_session``: a milestone's outbox rows by the time they were
  queued, with their session, so that the due rules rule out the window's queued sessions at once.
- ``ix_requests_follow_up_created_answered``: the follow-ups asked in a period with their answer
  time, from the index alone (the Follow-ups page's weekly chart).
- ``ix_crm_funnel_progress_funnel_prev``: the funnel roll-up's entries by their previous entry, for a
  period between UTC midnights (a display timezone other than UTC): the entries whose previous entry
  is in its first hours.
"""

from alembic import op

from dashboard.core.migrate import apply_step

revision = "0023_speed_due"
down_revision = "0022_speed_rollups"


def upgrade() -> None:
    apply_step(op.get_bind(), "23")
