"""The CRM interactions the funnel counts: intakes, sessions, summary views, upsell
impressions and clicks, purchases."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dashboard.core import schema as s
from dashboard.tools.demo.arrays import json_object, minutes, take, take_or_null, ts, uuids
from dashboard.tools.demo.plan import Plan


def _repeat_events(rng, first: np.ndarray, extra: np.ndarray, spread_days: float):
    """Per row, the event at ``first`` plus ``extra`` more within a few days; returns (row, time)."""
    row = np.repeat(np.arange(len(first)), 1 + extra)
    again = np.arange(len(row)) != np.repeat(np.cumsum(1 + extra) - 1 - extra, 1 + extra)
    at = first[row] + np.where(again, minutes(rng.exponential(spread_days * 1440, len(row))), np.timedelta64(0, "us"))
    return row, at


def interactions_table(rng, plan: Plan, c: dict, req: dict, ses: dict, up: dict) -> pa.Table:
    """The CRM trail of each journey, in the order it happens."""
    parts = []

    def add(kind: str, cust, session, metadata, at):
        keep = at < plan.now
        parts.append(
            pa.table(
                {
                    "customer_id": c["ids"].take(pa.array(cust[keep])),
                    "interaction_type": pa.repeat(pa.scalar(kind), keep.sum()),
                    "session_id": take_or_null(ses["ids"], session[keep]),
                    "metadata": metadata.filter(pa.array(keep)),
                    "created_at": ts(at[keep]),
                }
            )
        )

    source = take(
        ("web", "ios", "android", "follow_up"),
        np.where(req["follow_up"] >= 0, 3, rng.choice(3, len(req["cust"]), p=[0.5, 0.3, 0.2])),
    )
    add(
        "intake",
        req["cust"],
        np.full(len(req["cust"]), -1),
        json_object(request_id=req["ids"], category=take(s.REQUEST_CATEGORIES, req["category"]), source=source),
        req["created"],
    )
    done = np.nonzero(ses["status"] == "completed")[0]
    add(
        "session",
        ses["cust"][done],
        done,
        json_object(
            session_type=pa.array(np.where(ses["video"][done], "video", "chat").tolist()),
            price_cents=pa.array(ses["price"][done]),
        ),
        ses["ended"][done],
    )
    summarised = np.nonzero(~np.isnat(ses["summary"]))[0]
    viewer = rng.random(len(summarised)) < 0.88
    first_view = ses["summary"][summarised] + minutes(rng.lognormal(np.log(90), 1, len(summarised)))
    row, at = _repeat_events(rng, first_view[viewer], rng.poisson(9, viewer.sum()), 4)
    viewed = summarised[viewer][row]
    add("summary_viewed", ses["cust"][viewed], viewed, pa.repeat(pa.scalar("{}"), len(row)), at)

    kind = take(s.RECOMMENDATION_TYPES, up["kind"])
    row, at = _repeat_events(rng, up["shown"], rng.poisson(7, len(up["row"])), 5)
    # Impressions are many: they carry the type only; clicks and purchases name the recommendation.
    add(
        "upsell_shown",
        ses["cust"][up["row"][row]],
        up["row"][row],
        json_object(recommendation_type=kind).take(pa.array(row)),
        at,
    )
    rec_meta = json_object(recommendation_id=up["ids"], recommendation_type=kind)
    clicked = np.nonzero(~np.isnat(up["clicked"]))[0]
    row, at = _repeat_events(rng, up["clicked"][clicked], (rng.random(len(clicked)) < 0.2).astype(int), 2)
    row = clicked[row]
    add("upsell_clicked", ses["cust"][up["row"][row]], up["row"][row], rec_meta.take(pa.array(row)), at)
    bought = np.nonzero(~np.isnat(up["bought"]))[0]
    add(
        "purchase",
        ses["cust"][up["row"][bought]],
        up["row"][bought],
        json_object(recommendation_id=up["ids"].take(pa.array(bought)), price_cents=pa.array(up["price"][bought])),
        up["bought"][bought],
    )
    paid = np.nonzero(~np.isnat(req["answered"]) & (req["price"] > 0))[0]  # as dashboard.domain.followups.mark_answered
    add(
        "purchase",
        req["cust"][paid],
        req["parent"][paid],
        json_object(
            follow_up_id=req["ids"].take(pa.array(paid)),
            follow_up_type=take(s.FOLLOW_UP_TYPES, req["follow_up"][paid]),
            price_cents=pa.array(req["price"][paid]),
        ),
        req["answered"][paid],
    )
    table = pa.concat_tables(parts)
    return table.add_column(0, "id", uuids(rng, table.num_rows))
