"""The one schema definition for PostgreSQL and the embedded DuckDB.

Every table and column carries the migration step that introduced it
(``table.info["step"]`` / ``column.info["step"]``, default: the table's step).
The Alembic migrations build each step from these tags, so the schema is
written once and the migrated database always matches this module.

Backend differences (DuckDB 2.0):
- foreign keys and secondary indexes are created on PostgreSQL only
  (DuckDB cannot reference ``auth.users`` across schemas, has no ON DELETE
  actions, and its ART indexes turn updates of indexed rows into delete+insert;
  its zone maps serve the analytical scans instead);
- the ``auth`` schema maps to DuckDB's default schema (see ``dashboard.core.db``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Allowed values of every status/enum column. Domain code imports these.
PLANS = ("standard", "premium")
ACQUISITION_CHANNELS = ("organic_search", "paid_search", "social", "referral", "partner", "direct")
REQUEST_CATEGORIES = (
    "engine",
    "brakes",
    "electrical",
    "transmission",
    "suspension",
    "hvac",
    "diagnostics",
    "tyres",
    "other",
)
REQUEST_STATUSES = ("open", "matched", "completed", "cancelled")
FOLLOW_UP_TYPES = ("quick_question", "mini_extension", "new_issue")
SESSION_TYPES = ("chat", "video")
SESSION_STATUSES = ("pending", "scheduled", "accepted", "live", "completed", "cancelled")
EXTENSION_STATUSES = ("requested", "approved", "declined", "paid")
INTERACTION_TYPES = (
    "intake",
    "session",
    "summary_viewed",
    "upsell_shown",
    "upsell_clicked",
    "purchase",
)
RECOMMENDATION_TYPES = ("follow_up", "maintenance_plan", "premium_upgrade")
REVIEW_STATUSES = ("pending", "published", "hidden")
HIDE_REASONS = (
    "harmful_or_illegal",
    "personal_information",
    "advertising",
    "not_genuine_experience",
    "off_topic",
    "profanity",  # step 20
)
STAFF_ROLES = ("admin", "support", "manager")
EMAIL_MILESTONES = (
    "booking_confirmed",
    "mechanic_assigned",
    "session_starting",
    "session_ended",
    "summary_delivered",
    "mechanic_nudge",
    "support_alert",
)
EMAIL_STATUSES = ("pending", "sending", "sent", "failed", "skipped", "uncertain")  # uncertain: step 18

# Price multipliers of availability slots: 0.50x to 3.00x, two decimals.
MULTIPLIER_MIN = "0.50"
MULTIPLIER_MAX = "3.00"


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


def _pk() -> sa.Column:
    return sa.Column("id", sa.Uuid, primary_key=True, server_default=sa.text("gen_random_uuid()"))


def _created_at() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _fk(column: str, target: str, ondelete: str | None = None) -> sa.ForeignKeyConstraint:
    """A foreign key that exists on PostgreSQL only (see module docstring)."""
    return sa.ForeignKeyConstraint([column], [target], ondelete=ondelete).ddl_if(dialect="postgresql")


def _index(name: str, *columns, **kw) -> sa.Index:
    return sa.Index(name, *columns, **kw).ddl_if(dialect="postgresql")


def _step(step: str, *columns: sa.Column) -> list[sa.Column]:
    for column in columns:
        column.info["step"] = step
    return list(columns)


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(pg.JSONB(), "postgresql")


TEXT_ARRAY = pg.ARRAY(sa.Text)

# --- platform tables (baseline: created only where absent) -------------------

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True, server_default=sa.text("gen_random_uuid()")),
    sa.Column("email", sa.Text, nullable=False, unique=True),
    _created_at(),
    schema="auth",
    info={"step": "base"},
)

profiles = sa.Table(
    "profiles",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("full_name", sa.Text),
    sa.Column("plan", sa.Text, nullable=False, server_default="standard"),
    sa.Column("timezone", sa.Text, nullable=False, server_default="UTC"),
    sa.Column("email_opt_out", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("acquisition_channel", sa.Text),
    _created_at(),
    _fk("id", "auth.users.id", "CASCADE"),
    sa.CheckConstraint(_in("plan", PLANS), name="plan"),
    sa.CheckConstraint(_in("acquisition_channel", ACQUISITION_CHANNELS), name="channel"),
    info={"step": "base"},
)

mechanics = sa.Table(
    "mechanics",
    metadata,
    sa.Column("user_id", sa.Uuid, primary_key=True),
    sa.Column("display_name", sa.Text, nullable=False),
    sa.Column("timezone", sa.Text, nullable=False, server_default="UTC"),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    _created_at(),
    *_step(
        "08",
        sa.Column("specialties", TEXT_ARRAY),
        sa.Column("avg_rating", sa.Numeric(3, 2), nullable=False, server_default="0"),
        sa.Column("total_reviews", sa.Integer, nullable=False, server_default="0"),
        sa.Column("response_sla_minutes", sa.Integer, nullable=False, server_default="5"),
        sa.Column("bio", sa.Text),
        sa.Column("years_experience", sa.Integer),
    ),
    _fk("user_id", "auth.users.id", "CASCADE"),
    sa.CheckConstraint("avg_rating >= 0 AND avg_rating <= 5", name="avg_rating", info={"step": "08"}),
    sa.CheckConstraint("total_reviews >= 0", name="total_reviews", info={"step": "08"}),
    sa.CheckConstraint("response_sla_minutes > 0", name="sla", info={"step": "08"}),
    sa.CheckConstraint("years_experience >= 0 AND years_experience <= 80", name="experience", info={"step": "08"}),
    info={"step": "base"},
)

requests = sa.Table(
    "requests",
    metadata,
    _pk(),
    sa.Column("customer_id", sa.Uuid, nullable=False),
    sa.Column("vehicle_make", sa.Text),
    sa.Column("vehicle_model", sa.Text),
    sa.Column("vehicle_year", sa.Integer),
    sa.Column("category", sa.Text, nullable=False, server_default="other"),
    sa.Column("description", sa.Text),
    sa.Column("status", sa.Text, nullable=False, server_default="open"),
    _created_at(),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    *_step(
        "10",
        sa.Column("parent_session_id", sa.Uuid),
        sa.Column("is_follow_up", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("follow_up_type", sa.Text),
    ),
    _fk("customer_id", "auth.users.id", "CASCADE"),
    sa.CheckConstraint(_in("category", REQUEST_CATEGORIES), name="category"),
    sa.CheckConstraint(_in("status", REQUEST_STATUSES), name="status"),
    sa.CheckConstraint("vehicle_year BETWEEN 1950 AND 2100", name="vehicle_year"),
    sa.CheckConstraint(_in("follow_up_type", FOLLOW_UP_TYPES), name="follow_up_type", info={"step": "10"}),
    sa.CheckConstraint(
        "(is_follow_up AND parent_session_id IS NOT NULL AND follow_up_type IS NOT NULL)"
        " OR (NOT is_follow_up AND follow_up_type IS NULL)",
        name="follow_up_shape",
        info={"step": "10"},
    ),
    info={"step": "base"},
)

sessions = sa.Table(
    "sessions",
    metadata,
    _pk(),
    sa.Column("request_id", sa.Uuid),
    sa.Column("customer_id", sa.Uuid, nullable=False),
    sa.Column("mechanic_id", sa.Uuid),
    sa.Column("session_type", sa.Text, nullable=False, server_default="video"),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("scheduled_at", sa.DateTime(timezone=True)),
    sa.Column("accepted_at", sa.DateTime(timezone=True)),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("price_cents", sa.Integer, nullable=False, server_default="0"),
    sa.Column("findings", sa.Text),
    sa.Column("steps_taken", sa.Text),
    sa.Column("parts_needed", sa.Text),
    sa.Column("next_steps", sa.Text),
    sa.Column("summary_submitted_at", sa.DateTime(timezone=True)),
    _created_at(),
    _fk("request_id", "requests.id", "SET NULL"),
    _fk("customer_id", "auth.users.id", "CASCADE"),
    _fk("mechanic_id", "mechanics.user_id", "SET NULL"),
    sa.CheckConstraint(_in("session_type", SESSION_TYPES), name="session_type"),
    sa.CheckConstraint(_in("status", SESSION_STATUSES), name="status"),
    sa.CheckConstraint("price_cents >= 0", name="price"),
    sa.CheckConstraint("ended_at IS NULL OR started_at IS NULL OR ended_at >= started_at", name="ended_after_start"),
    info={"step": "base"},
)

session_files = sa.Table(
    "session_files",
    metadata,
    _pk(),
    sa.Column("session_id", sa.Uuid, nullable=False),
    sa.Column("uploaded_by", sa.Uuid),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("storage_path", sa.Text, nullable=False),
    sa.Column("content_type", sa.Text),
    sa.Column("size_bytes", sa.BigInteger, nullable=False, server_default="0"),
    _created_at(),
    _fk("session_id", "sessions.id", "CASCADE"),
    sa.CheckConstraint("size_bytes >= 0", name="size"),
    info={"step": "base"},
)

session_extensions = sa.Table(
    "session_extensions",
    metadata,
    _pk(),
    sa.Column("session_id", sa.Uuid, nullable=False),
    sa.Column("minutes", sa.Integer, nullable=False),
    sa.Column("price_cents", sa.Integer, nullable=False, server_default="0"),
    sa.Column("status", sa.Text, nullable=False, server_default="requested"),
    _created_at(),
    _fk("session_id", "sessions.id", "CASCADE"),
    sa.CheckConstraint("minutes > 0", name="minutes"),
    sa.CheckConstraint("price_cents >= 0", name="price"),
    sa.CheckConstraint(_in("status", EXTENSION_STATUSES), name="status"),
    info={"step": "base"},
)

# --- 08 reputation ------------------------------------------------------------

mechanic_reviews = sa.Table(
    "mechanic_reviews",
    metadata,
    _pk(),
    sa.Column("session_id", sa.Uuid, unique=True),
    sa.Column("mechanic_id", sa.Uuid),
    sa.Column("customer_id", sa.Uuid),
    sa.Column("rating", sa.Integer, nullable=False),
    sa.Column("review_text", sa.Text),
    sa.Column("helpful_count", sa.Integer, nullable=False, server_default="0"),
    _created_at(),
    *_step(
        "12",
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("flags", TEXT_ARRAY),
        sa.Column("hidden_reason", sa.Text),
        sa.Column("moderated_by", sa.Text),
        sa.Column("moderated_at", sa.DateTime(timezone=True)),
    ),
    _fk("session_id", "sessions.id", "CASCADE"),
    _fk("mechanic_id", "mechanics.user_id", "CASCADE"),
    _fk("customer_id", "auth.users.id", "SET NULL"),
    sa.CheckConstraint("rating >= 1 AND rating <= 5", name="rating"),
    sa.CheckConstraint("helpful_count >= 0", name="helpful"),
    sa.CheckConstraint(_in("status", REVIEW_STATUSES), name="status", info={"step": "12"}),
    sa.CheckConstraint(
        _in("hidden_reason", HIDE_REASONS[:5]), name="hidden_reason", info={"step": "12", "replaced_in": "20"}
    ),
    sa.CheckConstraint(
        "(status = 'hidden') = (hidden_reason IS NOT NULL)", name="hidden_has_reason", info={"step": "12"}
    ),
    info={"step": "08"},
)

# --- 09 CRM and upsells ---------------------------------------------------------

crm_interactions = sa.Table(
    "crm_interactions",
    metadata,
    _pk(),
    sa.Column("customer_id", sa.Uuid, nullable=False),
    sa.Column("interaction_type", sa.Text, nullable=False),
    sa.Column("session_id", sa.Uuid),
    sa.Column("metadata", _json()),
    _created_at(),
    _fk("customer_id", "auth.users.id", "CASCADE"),
    _fk("session_id", "sessions.id", "SET NULL"),
    sa.CheckConstraint(_in("interaction_type", INTERACTION_TYPES), name="interaction_type"),
    info={"step": "09"},
)

upsell_recommendations = sa.Table(
    "upsell_recommendations",
    metadata,
    _pk(),
    sa.Column("customer_id", sa.Uuid, nullable=False),
    sa.Column("session_id", sa.Uuid),
    sa.Column("recommendation_type", sa.Text, nullable=False),
    sa.Column("service_title", sa.Text, nullable=False),
    sa.Column("service_description", sa.Text),
    sa.Column("price_cents", sa.Integer, nullable=False, server_default="0"),
    sa.Column("shown_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("clicked_at", sa.DateTime(timezone=True)),
    sa.Column("purchased_at", sa.DateTime(timezone=True)),
    _fk("customer_id", "auth.users.id", "CASCADE"),
    _fk("session_id", "sessions.id", "CASCADE"),
    sa.CheckConstraint(_in("recommendation_type", RECOMMENDATION_TYPES), name="recommendation_type"),
    sa.CheckConstraint("price_cents >= 0", name="price"),
    info={"step": "09"},
)

# --- 11 scheduling ----------------------------------------------------------------

mechanic_availability_slots = sa.Table(
    "mechanic_availability_slots",
    metadata,
    _pk(),
    sa.Column("mechanic_id", sa.Uuid, nullable=False),
    sa.Column("day_of_week", sa.Integer, nullable=False),
    sa.Column("start_time", sa.Time, nullable=False),
    sa.Column("end_time", sa.Time, nullable=False),
    sa.Column("is_available", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("price_multiplier", sa.Numeric(3, 2), nullable=False, server_default="1.00"),
    _created_at(),
    _fk("mechanic_id", "mechanics.user_id", "CASCADE"),
    sa.CheckConstraint("day_of_week >= 0 AND day_of_week <= 6", name="day_of_week"),
    sa.CheckConstraint("start_time < end_time", name="start_before_end"),
    sa.CheckConstraint(
        f"price_multiplier >= {MULTIPLIER_MIN} AND price_multiplier <= {MULTIPLIER_MAX}", name="multiplier"
    ),
    info={"step": "11"},
)

mechanic_availability_overrides = sa.Table(
    "mechanic_availability_overrides",
    metadata,
    _pk(),
    sa.Column("mechanic_id", sa.Uuid, nullable=False),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("is_available", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("reason", sa.Text),
    _created_at(),
    _fk("mechanic_id", "mechanics.user_id", "CASCADE"),
    sa.UniqueConstraint("mechanic_id", "date"),
    info={"step": "11"},
)

# --- 12 Pitwall's own tables -------------------------------------------------------

staff_roles = sa.Table(
    "staff_roles",
    metadata,
    sa.Column("email", sa.Text, primary_key=True),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("display_name", sa.Text),
    _created_at(),
    sa.CheckConstraint(_in("role", STAFF_ROLES), name="role"),
    sa.CheckConstraint("email = lower(email)", name="email_lower"),
    info={"step": "12"},
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    _pk(),
    sa.Column("actor_email", sa.Text, nullable=False),
    sa.Column("actor_role", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("entity_type", sa.Text, nullable=False),
    sa.Column("entity_id", sa.Text, nullable=False),
    sa.Column("before", _json()),
    sa.Column("after", _json()),
    sa.Column("reason", sa.Text),
    _created_at(),
    info={"step": "12"},
)

email_outbox = sa.Table(
    "email_outbox",
    metadata,
    _pk(),
    sa.Column("session_id", sa.Uuid, nullable=False),
    sa.Column("milestone", sa.Text, nullable=False),
    sa.Column("recipient", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("last_error", sa.Text),
    sa.Column("skip_reason", sa.Text),
    sa.Column("provider_message_id", sa.Text),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    _created_at(),
    _fk("session_id", "sessions.id", "CASCADE"),
    sa.UniqueConstraint("session_id", "milestone", "recipient"),
    sa.CheckConstraint(_in("milestone", EMAIL_MILESTONES), name="milestone"),
    sa.CheckConstraint(_in("status", EMAIL_STATUSES[:5]), name="status", info={"replaced_in": "18"}),
    sa.CheckConstraint("attempts >= 0", name="attempts"),
    info={"step": "12"},
)

# --- 13 reputation: review flags, helpful votes, moderation setting ----------------
# (dashboard/domain/reviews.py holds the rules that use these)

# Automatic flags a new review can get; a flagged review waits in the moderation queue.
REVIEW_FLAGS = (
    "personal_data",
    "link_or_promo",
    "profanity",
    "short_negative",
    "duplicate_text",
    "review_burst",
)

for _column in _step(
    "13",
    # Hash of the normalised text (long enough texts only), to find copies of a review quickly.
    sa.Column("text_fingerprint", sa.Text),
):
    mechanic_reviews.append_column(_column)

review_helpful_votes = sa.Table(
    "review_helpful_votes",
    metadata,
    sa.Column("review_id", sa.Uuid, primary_key=True),
    sa.Column("voter_id", sa.Uuid, primary_key=True),  # one vote per (review, voter)
    _created_at(),
    _fk("review_id", "mechanic_reviews.id", "CASCADE"),
    _fk("voter_id", "auth.users.id", "CASCADE"),
    info={"step": "13"},
)

review_settings = sa.Table(
    "review_settings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("moderate_all", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_by", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint("id = 1", name="single_row"),
    info={"step": "13"},
)

_index(
    "ix_mechanic_reviews_text_fingerprint",
    mechanic_reviews.c.text_fingerprint,
    postgresql_where=mechanic_reviews.c.text_fingerprint.isnot(None),
    info={"step": "13"},
)

# --- end of 13 ----------------------------------------------------------------------

# --- indexes for the filters the pages and jobs use (PostgreSQL) -------------------
# Each index belongs to the step of its table unless tagged otherwise.
# DuckDB gets none (see the module docstring).

_index("ix_requests_customer_created", requests.c.customer_id, requests.c.created_at)
_index("ix_requests_created_at", requests.c.created_at)
_index("ix_sessions_customer", sessions.c.customer_id)
_index("ix_sessions_mechanic_scheduled", sessions.c.mechanic_id, sessions.c.scheduled_at)
_index("ix_sessions_status_scheduled", sessions.c.status, sessions.c.scheduled_at)
_index("ix_sessions_ended_at", sessions.c.ended_at)
_index("ix_session_files_session", session_files.c.session_id)
_index("ix_session_extensions_session", session_extensions.c.session_id)
_index("ix_mechanic_reviews_mechanic_created", mechanic_reviews.c.mechanic_id, mechanic_reviews.c.created_at)
_index("ix_mechanic_reviews_customer", mechanic_reviews.c.customer_id)
_index(
    "ix_crm_interactions_customer_type_created",
    crm_interactions.c.customer_id,
    crm_interactions.c.interaction_type,
    crm_interactions.c.created_at,
)
_index("ix_crm_interactions_type_created", crm_interactions.c.interaction_type, crm_interactions.c.created_at)
_index("ix_crm_interactions_session", crm_interactions.c.session_id)
_index("ix_upsell_recommendations_customer", upsell_recommendations.c.customer_id)
_index("ix_upsell_recommendations_session", upsell_recommendations.c.session_id)
_index("ix_upsell_recommendations_shown_at", upsell_recommendations.c.shown_at)
_index(
    "ix_availability_slots_mechanic_day",
    mechanic_availability_slots.c.mechanic_id,
    mechanic_availability_slots.c.day_of_week,
)
_index("ix_audit_log_entity", audit_log.c.entity_type, audit_log.c.entity_id, audit_log.c.created_at)
_index("ix_audit_log_created_at", audit_log.c.created_at)
_index("ix_email_outbox_status_next_attempt", email_outbox.c.status, email_outbox.c.next_attempt_at)
_index("ix_email_outbox_created_at", email_outbox.c.created_at)
_index(
    "ix_requests_parent_session",
    requests.c.parent_session_id,
    postgresql_where=requests.c.is_follow_up,
    info={"step": "10"},
)
_index(
    "ix_mechanic_reviews_pending",
    mechanic_reviews.c.created_at,
    postgresql_where=mechanic_reviews.c.status == "pending",
    info={"step": "12"},
)
requests.append_constraint(
    sa.ForeignKeyConstraint(
        ["parent_session_id"], ["sessions.id"], ondelete="SET NULL", use_alter=True, info={"step": "10"}
    ).ddl_if(dialect="postgresql")
)

# --- 14 scheduling and pricing: base prices, override hours ------------------------
# (dashboard/domain/calendars/slots.py holds the rules that use these)

# The list price of a session type; a slot's price is this times its multiplier.
# Booked sessions keep their own price_cents, so a change here never rewrites history.
session_base_prices = sa.Table(
    "session_base_prices",
    metadata,
    sa.Column("session_type", sa.Text, primary_key=True),
    sa.Column("price_cents", sa.Integer, nullable=False),
    sa.Column("updated_by", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(_in("session_type", SESSION_TYPES), name="session_type"),
    sa.CheckConstraint("price_cents > 0", name="price_positive"),
    info={"step": "14"},
)

# An override is either "unavailable all day" (no hours) or "available only from start to
# end" at its own multiplier; it replaces that day's weekly hours.
for _column in _step(
    "14",
    sa.Column("start_time", sa.Time),
    sa.Column("end_time", sa.Time),
    sa.Column("price_multiplier", sa.Numeric(3, 2), nullable=False, server_default="1.00"),
):
    mechanic_availability_overrides.append_column(_column)
for _check in (
    sa.CheckConstraint("(start_time IS NULL) = (end_time IS NULL)", name="hours_pair", info={"step": "14"}),
    sa.CheckConstraint(
        "start_time IS NULL OR (is_available AND start_time < end_time)", name="hours", info={"step": "14"}
    ),
    sa.CheckConstraint(
        f"price_multiplier >= {MULTIPLIER_MIN} AND price_multiplier <= {MULTIPLIER_MAX}",
        name="multiplier",
        info={"step": "14"},
    ),
):
    mechanic_availability_overrides.append_constraint(_check)

# --- end of 14 ----------------------------------------------------------------------

# --- 15 follow-up lifecycle: state, assignment, fixed price, pricing rules --------------
# (dashboard/domain/followups.py holds the rules that use these)

FOLLOW_UP_STATES = ("open", "assigned", "answered", "closed", "cancelled")
FOLLOW_UP_PRICE_MAX_CENTS = 100_000  # $1,000.00

# A follow-up's lifecycle lives beside the platform's requests.status, which keeps its meaning.
# follow_up_state is NULL on follow-ups Pitwall has not handled yet (dashboard/domain/followups.py
# reads their state from requests.status); the price is fixed when Pitwall creates one.
for _column in _step(
    "15",
    sa.Column("follow_up_state", sa.Text),
    sa.Column("assigned_mechanic_id", sa.Uuid),
    sa.Column("assigned_at", sa.DateTime(timezone=True)),
    sa.Column("answered_at", sa.DateTime(timezone=True)),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("cancelled_at", sa.DateTime(timezone=True)),
    sa.Column("cancel_reason", sa.Text),
    sa.Column("follow_up_price_cents", sa.Integer),
):
    requests.append_column(_column)
for _constraint in (
    sa.CheckConstraint(_in("follow_up_state", FOLLOW_UP_STATES), name="follow_up_state", info={"step": "15"}),
    sa.CheckConstraint("follow_up_state IS NULL OR is_follow_up", name="follow_up_state_shape", info={"step": "15"}),
    sa.CheckConstraint(
        "follow_up_state NOT IN ('answered', 'closed') OR answered_at IS NOT NULL",
        name="follow_up_answered_at",
        info={"step": "15"},
    ),
    sa.CheckConstraint(
        "(follow_up_state = 'cancelled') = (cancelled_at IS NOT NULL AND cancel_reason IS NOT NULL)",
        name="follow_up_cancelled",
        info={"step": "15"},
    ),
    sa.CheckConstraint(
        f"follow_up_price_cents >= 0 AND follow_up_price_cents <= {FOLLOW_UP_PRICE_MAX_CENTS}",
        name="follow_up_price",
        info={"step": "15"},
    ),
    sa.ForeignKeyConstraint(
        ["assigned_mechanic_id"], ["mechanics.user_id"], ondelete="SET NULL", info={"step": "15"}
    ).ddl_if(dialect="postgresql"),
):
    requests.append_constraint(_constraint)

# The price of a follow-up per customer plan and type, set by admins; pairs without a row
# take the defaults in dashboard/domain/followups.py.
follow_up_pricing = sa.Table(
    "follow_up_pricing",
    metadata,
    sa.Column("plan", sa.Text, primary_key=True),
    sa.Column("follow_up_type", sa.Text, primary_key=True),
    sa.Column("price_cents", sa.Integer, nullable=False),
    sa.Column("updated_by", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint(_in("plan", PLANS), name="plan"),
    sa.CheckConstraint(_in("follow_up_type", FOLLOW_UP_TYPES), name="follow_up_type"),
    sa.CheckConstraint(f"price_cents >= 0 AND price_cents <= {FOLLOW_UP_PRICE_MAX_CENTS}", name="price"),
    info={"step": "15"},
)

_index(
    "ix_requests_follow_up_created",
    requests.c.created_at,
    postgresql_where=requests.c.is_follow_up,
    info={"step": "15"},
)
_index(
    "ix_requests_follow_up_assigned",
    requests.c.assigned_mechanic_id,
    postgresql_where=requests.c.follow_up_state == "assigned",
    info={"step": "15"},
)

# --- end of 15 ----------------------------------------------------------------------

# --- 16 CRM: upsell service catalogue, funnel roll-ups ------------------------------
# (dashboard/domain/upsells.py and dashboard/domain/funnel/interactions.py hold the rules that use these;
#  dashboard/domain/upsells.py and dashboard/domain/funnel/rollups.py keep the derived rows fresh)

# When an interaction reached the database (created_at is when it happened): the funnel
# roll-up job reads only the interactions recorded since its last run.
for _column in _step(
    "16",
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
):
    crm_interactions.append_column(_column)
_index("ix_crm_interactions_recorded_at", crm_interactions.c.recorded_at, info={"step": "16"})

UPSELL_PRICE_MAX_CENTS = 100_000  # $1,000.00

# The services the upsell engine offers, one active service per recommendation type; a
# recommendation copies the title and price, so a price change never rewrites history.
upsell_services = sa.Table(
    "upsell_services",
    metadata,
    _pk(),
    sa.Column("recommendation_type", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False, unique=True),
    sa.Column("description", sa.Text),
    sa.Column("price_cents", sa.Integer, nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("updated_by", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    _created_at(),
    sa.CheckConstraint(_in("recommendation_type", RECOMMENDATION_TYPES), name="recommendation_type"),
    sa.CheckConstraint(f"price_cents > 0 AND price_cents <= {UPSELL_PRICE_MAX_CENTS}", name="price"),
    sa.CheckConstraint("length(title) BETWEEN 3 AND 80", name="title_length"),
    info={"step": "16"},
)
_index(
    "ux_upsell_services_active_type",
    upsell_services.c.recommendation_type,
    unique=True,
    postgresql_where=upsell_services.c.is_active,
)

# One row per tracked funnel (its ordered steps, e.g. "intake>session>purchase") and how
# far the roll-up job has read crm_interactions.recorded_at.
crm_funnel_rollups = sa.Table(
    "crm_funnel_rollups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("steps", sa.Text, nullable=False, unique=True),
    sa.Column("processed_until", sa.DateTime(timezone=True)),
    sa.Column("refreshed_at", sa.DateTime(timezone=True)),
    _created_at(),
    info={"step": "16"},
)

# Per tracked funnel, customer and possible entry (each distinct time of a step-1 event):
# the earliest time of each later step in order, with no window, and the attributes the
# breakdowns need. A period's funnel reads the rows whose entry is the first in the period.
FUNNEL_MAX_STEPS = len(INTERACTION_TYPES)
crm_funnel_progress = sa.Table(
    "crm_funnel_progress",
    metadata,
    sa.Column("funnel_id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Uuid, primary_key=True),
    sa.Column("entry_at", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("prev_entry_at", sa.DateTime(timezone=True)),
    *[sa.Column(f"step{k}_at", sa.DateTime(timezone=True)) for k in range(2, FUNNEL_MAX_STEPS + 1)],
    sa.Column("vehicle_make", sa.Text),
    sa.Column("session_at", sa.DateTime(timezone=True)),
    sa.Column("mechanic_id", sa.Uuid),
    _fk("funnel_id", "crm_funnel_rollups.id", "CASCADE"),
    _fk("customer_id", "auth.users.id", "CASCADE"),
    _fk("mechanic_id", "mechanics.user_id", "SET NULL"),
    sa.CheckConstraint("prev_entry_at < entry_at", name="prev_entry_first"),
    sa.CheckConstraint("step2_at >= entry_at", name="steps_after_entry"),
    info={"step": "16"},
)
_index("ix_crm_funnel_progress_funnel_entry", crm_funnel_progress.c.funnel_id, crm_funnel_progress.c.entry_at)

# --- end of 16 ----------------------------------------------------------------------

# --- 17 indexes for period filters found while measuring ---------------------------------

_index("ix_email_outbox_created_status", email_outbox.c.created_at, email_outbox.c.status, info={"step": "17"})
_index("ix_sessions_summary_submitted_at", sessions.c.summary_submitted_at, info={"step": "17"})
_index("ix_upsell_recommendations_purchased_at", upsell_recommendations.c.purchased_at, info={"step": "17"})

# --- end of 17 ----------------------------------------------------------------------

# --- 18 email outbox: batches that may have reached Resend -------------------------
# (dashboard/domain/emails/outbox.py holds the rules that use these)

# When the row's batch key was first used: past Resend's idempotency window the key no
# longer protects a re-send, and the row is held as ``uncertain`` for an admin to decide.
for _column in _step("18", sa.Column("batch_started_at", sa.DateTime(timezone=True))):
    email_outbox.append_column(_column)
email_outbox.append_constraint(sa.CheckConstraint(_in("status", EMAIL_STATUSES), name="status", info={"step": "18"}))

# --- end of 18 ----------------------------------------------------------------------

# --- 19 platform API: service keys, idempotent replies, event ids, intake of platform rows ---
# (api/ serves the platform; dashboard/domain/intake.py applies Pitwall's rules to rows the platform
#  wrote to its own tables directly)

API_SCOPES = ("platform",)  # "platform": act on behalf of any customer, batch ingest

# A service key is shown once; only its SHA-256 (hex, of the whole key) is kept.
api_keys = sa.Table(
    "api_keys",
    metadata,
    _pk(),
    sa.Column("name", sa.Text, nullable=False, unique=True),
    sa.Column("key_hash", sa.Text, nullable=False, unique=True),
    sa.Column("prefix", sa.Text, nullable=False),  # the key's first 12 characters, for display
    sa.Column("scopes", TEXT_ARRAY, nullable=False),
    _created_at(),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    info={"step": "19"},
)

# The stored reply of a write sent with an Idempotency-Key, replayed when the key comes again.
api_idempotency = sa.Table(
    "api_idempotency",
    metadata,
    sa.Column("principal", sa.Text, primary_key=True),
    sa.Column("idempotency_key", sa.Text, primary_key=True),
    sa.Column("request_hash", sa.Text, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("response_body", sa.Text, nullable=False),
    _created_at(),
    info={"step": "19"},
)

# The platform's id of an interaction it sent, so a replayed event is recognised
# (NULL for interactions Pitwall writes itself). Unique: a table constraint on DuckDB
# (rebuilt with the column), on PostgreSQL a unique index of the rows that have one (small,
# so batch inserts do not walk an index of every interaction).
for _column in _step("19", sa.Column("event_id", sa.Uuid)):
    crm_interactions.append_column(_column)
crm_interactions.append_constraint(
    sa.UniqueConstraint("event_id", name="uq_crm_interactions_event_id", info={"step": "19"}).ddl_if(dialect="duckdb")
)
_index(
    "ux_crm_interactions_event_id",
    crm_interactions.c.event_id,
    unique=True,
    postgresql_where=crm_interactions.c.event_id.isnot(None),
    info={"step": "19"},
)

# When Pitwall's rules ran on a review or a follow-up request (flags and publish-or-queue;
# price and state). NULL: the platform wrote the row itself and the intake job has not
# handled it yet. The partial indexes hold only those rows, so the job reads what is new
# without a watermark on created_at (which would skip rows whose transaction commits late).
# Step 19's migration marks the rows that exist when it runs as handled.
for _table in (mechanic_reviews, requests):
    for _column in _step("19", sa.Column("rules_applied_at", sa.DateTime(timezone=True))):
        _table.append_column(_column)
_index(
    "ix_mechanic_reviews_rules_pending",
    mechanic_reviews.c.created_at,
    postgresql_where=mechanic_reviews.c.rules_applied_at.is_(None),
    info={"step": "19"},
)
_index(
    "ix_requests_follow_up_rules_pending",
    requests.c.created_at,
    postgresql_where=sa.and_(requests.c.is_follow_up, requests.c.rules_applied_at.is_(None)),
    info={"step": "19"},
)

# How far each intake source has got: the last row it handled and when it last ran.
intake_watermarks = sa.Table(
    "intake_watermarks",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("last_seen_at", sa.DateTime(timezone=True)),
    sa.Column("last_id", sa.Uuid),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
    info={"step": "19"},
)

# The public profile: a mechanic's published reviews newest first, a page at a time by
# (created_at, id), and their ratings counted per star from the index alone (scale 100:
# 92 ms -> 0.3 ms for the busiest mechanic).
_index(
    "ix_mechanic_reviews_published_mechanic_created",
    mechanic_reviews.c.mechanic_id,
    mechanic_reviews.c.created_at,
    mechanic_reviews.c.id,
    postgresql_include=["rating"],
    postgresql_where=mechanic_reviews.c.status == "published",
    info={"step": "19"},
)

# --- end of 19 ----------------------------------------------------------------------

# --- 20 console: the profanity hide reason, the recorded answer of a follow-up ---------
# (dashboard/domain/reviews.py and dashboard/domain/followups.py hold the rules that use these)

mechanic_reviews.append_constraint(
    sa.CheckConstraint(_in("hidden_reason", HIDE_REASONS), name="hidden_reason", info={"step": "20"})
)
FOLLOW_UP_ANSWER_MAX = 4_000  # characters of a recorded answer
# What the customer was told, and which staff member recorded it (the mechanic who answered
# is the assigned one; answered_at is step 15's).
for _column in _step("20", sa.Column("answer_text", sa.Text), sa.Column("answered_by", sa.Text)):
    requests.append_column(_column)

# --- end of 20 ----------------------------------------------------------------------

# --- 21 speed: the overview's roll-ups, indexes for customer search ------------------
# (dashboard/domain/overview.py keeps the roll-ups; queries/overview.py, queries/emails.py and
#  queries/upsells.py read them; docs/overview.md has the design)

ROLLUP_BUCKET_MINUTES = 15  # every UTC offset in use since 1980 is a multiple of 15 minutes
# SET LOCAL to 'on' in a transaction: the roll-ups' triggers mark nothing (a bulk load rebuilds them after)
ROLLUP_BULK_LOAD_SETTING = "pitwall.bulk_load"
# The roll-ups' row in intake_watermarks: when they were last refreshed (none: not built, read the raw rows).
ROLLUP_WATERMARK = "overview_rollups"

# The headline counts per 15 minutes (UTC): a period in any display timezone is a whole
# number of buckets, and its partial edges (an offset that is not a multiple) are read raw.
kpi_buckets = sa.Table(
    "kpi_buckets",
    metadata,
    sa.Column("bucket_start", sa.DateTime(timezone=True), primary_key=True),
    *[
        sa.Column(name, sa.BigInteger, nullable=False, server_default="0")
        for name in (
            "sessions_completed",
            "intake_requests",
            "converted_requests",
            "reviews_published",
            "rating_sum",
            "upsell_purchases",
            "upsell_revenue_cents",
        )
    ],
    info={"step": "21"},
)

# Outbox rows per 15 minutes of created_at, milestone and status.
email_buckets = sa.Table(
    "email_buckets",
    metadata,
    sa.Column("bucket_start", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("milestone", sa.Text, primary_key=True),
    sa.Column("status", sa.Text, primary_key=True),
    sa.Column("emails", sa.BigInteger, nullable=False),
    info={"step": "21"},
)

# Upsell recommendations per 15 minutes of shown_at and mechanic of their session: shown,
# clicked, purchased and the revenue of the purchased ones (up to now).
upsell_mechanic_buckets = sa.Table(
    "upsell_mechanic_buckets",
    metadata,
    sa.Column("bucket_start", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("mechanic_id", sa.Uuid, primary_key=True),
    *[sa.Column(name, sa.BigInteger, nullable=False) for name in ("shown", "clicked", "purchased", "revenue_cents")],
    info={"step": "21"},
)

# Buckets whose rows changed since the roll-ups were last refreshed: a PostgreSQL trigger on
# each source table marks them (also for the platform's own writes), the queries read them
# from the raw rows, and the refresh recomputes them and clears the mark.
rollup_dirty = sa.Table(
    "rollup_dirty",
    metadata,
    sa.Column("bucket_start", sa.DateTime(timezone=True), primary_key=True),
    info={"step": "21"},
)

_index(
    "ix_mechanic_reviews_published_created",
    mechanic_reviews.c.created_at,
    postgresql_where=mechanic_reviews.c.status == "published",
    info={"step": "21"},
)
# Conversions: an intake request's completed session (the roll-up's rebuild and its raw edges).
_index(
    "ix_sessions_request_completed",
    sessions.c.request_id,
    postgresql_where=sessions.c.status == "completed",
    info={"step": "21"},
)
# Customer search ("contains", case-insensitive) by email and by name: trigram indexes, where
# the database has the pg_trgm extension (the migration creates it when it may).
_index(
    "ix_users_email_trgm",
    users.c.email,
    postgresql_using="gin",
    postgresql_ops={"email": "gin_trgm_ops"},
    info={"step": "21", "extension": "pg_trgm"},
)
_index(
    "ix_profiles_full_name_trgm",
    profiles.c.full_name,
    postgresql_using="gin",
    postgresql_ops={"full_name": "gin_trgm_ops"},
    info={"step": "21", "extension": "pg_trgm"},
)
# The roll-up funnel of a period from the index alone (counts: 0.8 s -> 80 ms at scale 100; the
# medians' sorts remain).
_index(
    "ix_crm_funnel_progress_funnel_entry_steps",
    crm_funnel_progress.c.funnel_id,
    crm_funnel_progress.c.entry_at,
    postgresql_include=["prev_entry_at", *[f"step{k}_at" for k in range(2, FUNNEL_MAX_STEPS + 1)]],
    info={"step": "21"},
)
# Upsell performance by mechanic: the recommendations shown in the period with their session.
_index(
    "ix_upsell_recommendations_shown_session",
    upsell_recommendations.c.shown_at,
    postgresql_include=["session_id", "clicked_at", "purchased_at", "price_cents"],
    info={"step": "21"},
)

# --- end of 21 ----------------------------------------------------------------------

# --- 22 speed, continued: coarser roll-ups and the indexes of the queues' filters -----

# A follow-up's state: the stored one, else read from the platform's status (completed is closed,
# cancelled is cancelled, anything else open); ``dashboard.domain.followups.STATE``. Its constants
# are inline SQL, so that a query filtering on it is the indexed expression itself.
FOLLOW_UP_STATE = sa.func.coalesce(
    requests.c.follow_up_state,
    sa.case(
        (requests.c.status == sa.literal_column("'completed'"), sa.literal_column("'closed'", sa.Text)),
        (requests.c.status == sa.literal_column("'cancelled'"), sa.literal_column("'cancelled'", sa.Text)),
        else_=sa.literal_column("'open'", sa.Text),
    ),
)
# The queue by state (waiting ones by default, the support home's counts) and by assignee.
_index(
    "ix_requests_follow_up_state_created",
    FOLLOW_UP_STATE,
    requests.c.created_at,
    postgresql_where=requests.c.is_follow_up,
    info={"step": "22"},
)
_index(
    "ix_requests_follow_up_mechanic_state",
    requests.c.assigned_mechanic_id,
    FOLLOW_UP_STATE,
    postgresql_where=requests.c.is_follow_up,
    info={"step": "22"},
)


def _per_day(name: str, of: sa.Table) -> sa.Table:
    """The rows of the 15-minute roll-up ``of`` summed per UTC day (``bucket_start`` its
    midnight): the whole UTC days of a period read a 96th of the rows."""
    return sa.Table(name, metadata, *[c._copy() for c in of.columns], info={"step": "22"})


upsell_mechanic_days = _per_day("upsell_mechanic_days", upsell_mechanic_buckets)
# Upsell recommendations per 15 minutes of shown_at, type and service title (the Upsells page's
# cohort: summary, by type or service, trend): shown, clicked, purchased and their revenue (up to now).
upsell_service_buckets = sa.Table(
    "upsell_service_buckets",
    metadata,
    sa.Column("bucket_start", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("recommendation_type", sa.Text, primary_key=True),
    sa.Column("service_title", sa.Text, primary_key=True),
    *[c._copy() for c in upsell_mechanic_buckets.columns if not c.primary_key],  # the cohort's counts
    info={"step": "22"},
)
upsell_service_days = _per_day("upsell_service_days", upsell_service_buckets)
# The moderation queue's filters (flags, ratings, mechanic), its count and the flag counts from the
# index alone: waiting reviews lie one per heap page across the whole table.
_index(
    "ix_mechanic_reviews_pending_queue",
    mechanic_reviews.c.created_at,
    mechanic_reviews.c.id,
    postgresql_include=["rating", "flags", "mechanic_id"],
    postgresql_where=mechanic_reviews.c.status == "pending",
    info={"step": "22"},
)

# The email job's due milestones and the failures by cause (dashboard/domain/emails/due.py and
# failures.py hold the rules that use these).

# The cause of a row's last failure (a code of ``dashboard.domain.emails.failures``), read once
# from its error when the job records the failure: the Emails page groups the failures by cause
# from an index instead of reading every failed row's error.
EMAIL_FAILURE_CAUSES = ("address", "template", "key", "rate_limited", "outage", "rejected", "other")
for _column in _step("22", sa.Column("failure_cause", sa.Text)):
    email_outbox.append_column(_column)
email_outbox.append_constraint(
    sa.CheckConstraint(_in("failure_cause", EMAIL_FAILURE_CAUSES), name="failure_cause", info={"step": "22"})
)
# The failed rows by cause, and the rows waiting for an admin's decision by status, each newest
# change first as the Emails page lists them.
for _name, _group, _rows in (
    ("ix_email_outbox_failed_cause", email_outbox.c.failure_cause, email_outbox.c.status == "failed"),
    ("ix_email_outbox_decision", email_outbox.c.status, email_outbox.c.status.in_(("failed", "uncertain"))),
):
    _index(
        _name,
        _group,
        email_outbox.c.updated_at.desc().nulls_last(),
        email_outbox.c.id,
        postgresql_where=_rows,
        info={"step": "22"},
    )
# Whether a session's milestone is in the outbox yet, one index per milestone: the due queries
# probe it for every session of the look-back window. The unique key leads with the session, so
# one milestone's probes cross all its pages (361 MB at scale 100); this holds that milestone's
# sessions alone (26 MB), which stay in memory.
for _milestone in EMAIL_MILESTONES:
    _index(
        f"ix_email_outbox_{_milestone}_session",
        email_outbox.c.session_id,
        postgresql_where=email_outbox.c.milestone == _milestone,
        info={"step": "22"},
    )
# The sessions of the look-back window with the columns of every due rule, from the index alone:
# only the due ones are read from the table.
# It also serves a week's booked sessions with their mechanic (the calendars' hour grid, the
# busiest mechanics, the manager home's utilisation), which would otherwise read a page per session.
_index(
    "ix_sessions_status_scheduled_due",
    sessions.c.status,
    sessions.c.scheduled_at,
    postgresql_include=["id", "created_at", "accepted_at", "started_at", "mechanic_id"],
    info={"step": "22"},
)
_index(
    "ix_sessions_ended_due",
    sessions.c.ended_at,
    postgresql_include=["id", "status", "summary_submitted_at"],
    postgresql_where=sessions.c.ended_at.is_not(None),
    info={"step": "22"},
)

# --- end of 22 ----------------------------------------------------------------------

# The raw-events funnel: a period's events of a type with their customer, from the index alone.
_index(
    "ix_crm_interactions_type_created_customer",
    crm_interactions.c.interaction_type,
    crm_interactions.c.created_at,
    postgresql_include=["customer_id"],
    info={"step": "22"},
)

# The funnel's daily counts (dashboard/domain/funnel/daily.py says what they count;
# dashboard/domain/funnel/rollups.py keeps them with crm_funnel_progress; queries/funnel.py reads
# them; docs/funnel.md has the design).

# The progress rows keep the breakdown attributes they were counted with (the daily counts are
# corrected row by row when a customer's rows are recomputed) and, per later step, the bin of the
# time since the step before (the medians look for the middle journeys in one bin).
for _column in _step(
    "22",
    sa.Column("plan", sa.Text),
    sa.Column("acquisition_channel", sa.Text),
    sa.Column("specialty", sa.Text),
    *[sa.Column(f"step{k}_gap_bin", sa.SmallInteger) for k in range(2, FUNNEL_MAX_STEPS + 1)],
):
    crm_funnel_progress.append_column(_column)
for _k in range(2, FUNNEL_MAX_STEPS + 1):
    _index(
        f"ix_crm_funnel_progress_step{_k}_gap",
        crm_funnel_progress.c.funnel_id,
        crm_funnel_progress.c[f"step{_k}_gap_bin"],
        crm_funnel_progress.c.entry_at,
        postgresql_include=["prev_entry_at", *([f"step{_k - 1}_at"] if _k > 2 else []), f"step{_k}_at"],
        postgresql_where=crm_funnel_progress.c[f"step{_k}_at"].isnot(None),
        info={"step": "22"},
    )

# The drop-off list of step k: the latest journeys that reached it, from the index alone.
for _k in range(2, FUNNEL_MAX_STEPS):
    _index(
        f"ix_crm_funnel_progress_step{_k}_reached",
        crm_funnel_progress.c.funnel_id,
        crm_funnel_progress.c[f"step{_k}_at"],
        postgresql_include=["entry_at", "prev_entry_at", f"step{_k + 1}_at", "customer_id"],
        postgresql_where=crm_funnel_progress.c[f"step{_k}_at"].isnot(None),
        info={"step": "22"},
    )


def _daily_counts(name: str, *keys: sa.Column) -> sa.Table:
    """A table of entries counted per tracked funnel, UTC day and ``keys``, and the index its
    queries read it by (the key columns in order, the count included)."""
    table = sa.Table(
        name,
        metadata,
        sa.Column("funnel_id", sa.Integer, primary_key=True),
        *keys,
        sa.Column("entries", sa.BigInteger, nullable=False),
        _fk("funnel_id", "crm_funnel_rollups.id", "CASCADE"),
        info={"step": "22"},
    )
    _index(f"ix_{name}_read", *table.primary_key.columns, postgresql_include=["entries"], info={"step": "22"})
    return table


def _key(name: str, type_: sa.types.TypeEngine = sa.SmallInteger) -> sa.Column:
    return sa.Column(name, type_, primary_key=True)


# Entries per UTC day of entry by the step they reached (1: every entry) and the whole days it took
# from the entry (``within_days``: reached inside a window of W days iff within_days <= W).
crm_funnel_daily_steps = _daily_counts(
    "crm_funnel_daily_steps", _key("day", sa.Date), _key("step"), _key("within_days")
)
# The same for the entries whose previous entry was on ``prev_day`` (at most 366 days before).
crm_funnel_daily_repeats = _daily_counts(
    "crm_funnel_daily_repeats", _key("day", sa.Date), _key("prev_day", sa.Date), _key("step"), _key("within_days")
)
# The next three count every entry +1 on its day and -1 on the day of the customer's previous entry,
# per breakdown group (``session_days``: the whole days to the session that gives the specialty, when
# more than the step's), per bin of the time since the step before, and per from-step and bin of the
# time to convert.
crm_funnel_daily_groups = _daily_counts(
    "crm_funnel_daily_groups",
    _key("dimension", sa.Text),
    _key("day", sa.Date),
    _key("grp", sa.Text),
    _key("session_days"),
    _key("step"),
    _key("within_days"),
)
crm_funnel_daily_gaps = _daily_counts(
    "crm_funnel_daily_gaps", _key("day", sa.Date), _key("step"), _key("within_days"), _key("gap_bin")
)
crm_funnel_daily_durations = _daily_counts(
    "crm_funnel_daily_durations",
    _key("from_step"),
    _key("step"),
    _key("day", sa.Date),
    _key("within_days"),
    _key("duration_bin"),
)

# --- end of 22 (funnel) -----------------------------------------------------------------

# --- 23 speed: the email job's outbox rows by time, the weekly follow-ups, funnel edges ---------

# A milestone's outbox rows by when they were queued, with their session: the due rules read the
# rows of the look-back window's sessions at once and probe the table for the few sessions left
# (dashboard/domain/emails/due.py ``due_ids``).
_index(
    "ix_email_outbox_milestone_created_session",
    email_outbox.c.milestone,
    email_outbox.c.created_at,
    postgresql_include=["session_id"],
    info={"step": "23"},
)
# The follow-ups asked in a period with their answer time, from the index alone (the weekly chart).
_index(
    "ix_requests_follow_up_created_answered",
    requests.c.created_at,
    postgresql_include=["answered_at"],
    postgresql_where=requests.c.is_follow_up,
    info={"step": "23"},
)

# A funnel period between UTC midnights (a display timezone other than UTC): the entries whose
# previous entry is in its first hours (dashboard/domain/funnel/daily.py, Days.progress_rows).
_index(
    "ix_crm_funnel_progress_funnel_prev",
    crm_funnel_progress.c.funnel_id,
    crm_funnel_progress.c.prev_entry_at,
    postgresql_where=crm_funnel_progress.c.prev_entry_at.isnot(None),
    info={"step": "23"},
)

# --- end of 23 ----------------------------------------------------------------------

# Migration steps in order; 13 and later are Pitwall's feature steps
# (13: reputation moderation, 14: scheduling and pricing, 15: follow-up lifecycle, 16: CRM upsell catalogue,
# 17: indexes for period filters, 18: email outbox uncertain status, 19: platform API and intake,
# 20: console, 21: speed, 22: more roll-ups and indexes for speed, 23: indexes of the email job, weekly follow-ups
# and funnel edges).
STEPS = ("base", "08", "09", "10", "11", "12", "13", "14", "15", "16", "17", "18", "19", "20", "21", "22", "23")


def step_of(item, table: sa.Table | None = None) -> str:
    """The migration step that introduced a table, column, constraint or index."""
    if "step" in item.info:
        return item.info["step"]
    owner = table if table is not None else getattr(item, "table", None)
    return owner.info["step"] if owner is not None else "base"
