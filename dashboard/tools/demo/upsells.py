"""Upsell recommendations under session summaries: shown, clicked, bought."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from dashboard.core import schema as s
from dashboard.tools.demo.arrays import NAT, flat, minutes, take, ts, uuids, weighted_order
from dashboard.tools.demo.plan import Plan
from dashboard.tools.demo.vocabulary import UPSELLS


def upsells(rng, plan: Plan, c: dict, ses: dict) -> dict:
    """Recommendations under each summary: shown, some clicked, fewer bought."""
    row = np.nonzero(~np.isnat(ses["summary"]))[0]
    n_recs = rng.choice([1, 2, 3], len(row), p=[0.4, 0.4, 0.2])
    order = weighted_order(rng, len(row), [3, 2, 1])  # follow_up, maintenance_plan, premium_upgrade
    owner = np.repeat(np.arange(len(row)), n_recs)
    kind = order[owner, np.arange(len(owner)) - np.repeat(np.cumsum(n_recs) - n_recs, n_recs)]
    rec = row[owner]
    shown = ses["summary"][rec] + minutes(rng.uniform(1, 10, len(rec)))
    keep = (shown < plan.now) & ~((kind == 2) & c["premium"][ses["cust"][rec]])
    rec, kind, shown = rec[keep], kind[keep], shown[keep]
    k = len(rec)
    sizes = np.array([len(v) for v in UPSELLS.values()])
    option = np.concatenate([[0], np.cumsum(sizes)[:-1]])[kind] + (rng.random(k) * sizes[kind]).astype(np.int64)
    title, description, price = zip(*flat(UPSELLS.values()))
    clicked = shown + minutes(rng.lognormal(np.log(180), 1.2, k))
    clicked = np.where((rng.random(k) < np.array([0.25, 0.12, 0.08])[kind]) & (clicked < plan.now), clicked, NAT)
    bought = clicked + minutes(rng.lognormal(np.log(20), 1, k))
    bought = np.where((rng.random(k) < np.array([0.45, 0.25, 0.35])[kind]) & (bought < plan.now), bought, NAT)
    return {
        "ids": uuids(rng, k),
        "row": rec,
        "kind": kind,
        "option": option,
        "price": np.asarray(price)[option],
        "title": title,
        "description": description,
        "shown": shown,
        "clicked": clicked,
        "bought": bought,
    }


def upsells_table(c: dict, ses: dict, up: dict) -> pa.Table:
    return pa.table(
        {
            "id": up["ids"],
            "customer_id": c["ids"].take(pa.array(ses["cust"][up["row"]])),
            "session_id": ses["ids"].take(pa.array(up["row"])),
            "recommendation_type": take(s.RECOMMENDATION_TYPES, up["kind"]),
            "service_title": take(up["title"], up["option"]),
            "service_description": take(up["description"], up["option"]),
            "price_cents": pa.array(up["price"], pa.int32()),
            "shown_at": ts(up["shown"]),
            "clicked_at": ts(up["clicked"]),
            "purchased_at": ts(up["bought"]),
        }
    )
