"""The upsell engine: ``python -m jobs upsells [--days N]``.

Creates ``upsell_recommendations`` for the summaries delivered in the last ``--days``
(default 7, so a job that was down for a few days catches up) by the rules of
``dashboard.upsells``, with the catalogue's prices. Running it again adds nothing for
summaries it already handled. A run is one transaction; on PostgreSQL an advisory lock
makes two runs take turns, so they cannot both add the same recommendation.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from dashboard import schema as s
from dashboard.upsells import new_recommendations

DEFAULT_DAYS = 7
MAX_DAYS = 366
LOCK_KEY = 7_160_017  # pg_advisory_xact_lock key of this job


@dataclass(frozen=True)
class UpsellRun:
    created: dict[str, int]  # recommendation type -> recommendations created
    without_service: tuple[str, ...]  # types the catalogue has no active service for

    def summary(self) -> str:
        made = ", ".join(f"{count:,} {kind}" for kind, count in sorted(self.created.items())) or "none"
        missing = f"; no active service for {', '.join(self.without_service)}" if self.without_service else ""
        return f"upsell recommendations created: {made}{missing}"


def run(engine: Engine, *, days: int = DEFAULT_DAYS, now: dt.datetime | None = None) -> UpsellRun:
    """Add the recommendations for the summaries delivered in the ``days`` before ``now``."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"--days must be from 1 to {MAX_DAYS}.")
    now = now or dt.datetime.now(dt.timezone.utc)
    ses, rec, svc = s.sessions, s.upsell_recommendations, s.upsell_services
    new = new_recommendations(now, ses.c.summary_submitted_at > now - dt.timedelta(days=days),
                              ses.c.summary_submitted_at <= now).subquery("new")
    columns = ["customer_id", "session_id", "recommendation_type", "service_title", "service_description",
               "price_cents"]
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
        created = conn.execute(
            rec.insert()
            .from_select([*columns, "shown_at"],
                         sa.select(*[new.c[c] for c in columns], sa.literal(now, rec.c.shown_at.type)))
            .returning(rec.c.recommendation_type)
        ).scalars().all()
        active = set(conn.execute(sa.select(svc.c.recommendation_type).where(svc.c.is_active)).scalars())
    return UpsellRun(dict(Counter(created)), tuple(t for t in s.RECOMMENDATION_TYPES if t not in active))
