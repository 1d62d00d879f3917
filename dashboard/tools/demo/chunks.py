"""Chunks of customers: every row a chunk's customers produce, generated one chunk ahead."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from dashboard.core import schema as s
from dashboard.tools.demo.arrays import uuids
from dashboard.tools.demo.emails import emails_table
from dashboard.tools.demo.interactions import interactions_table
from dashboard.tools.demo.mechanics import Mechanics
from dashboard.tools.demo.plan import Plan
from dashboard.tools.demo.reviews import reviews_table
from dashboard.tools.demo.sessions import (
    customer_tables,
    customers,
    extensions_table,
    files_table,
    follow_ups,
    lifecycle,
    requests,
    requests_table,
    sessions,
    sessions_table,
)
from dashboard.tools.demo.upsells import upsells, upsells_table


def _concat(a: dict, b: dict) -> dict:
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def _chunk(plan: Plan, mech: Mechanics, number: int, first: int, n: int) -> dict[sa.Table, pa.Table]:
    """Every row that customers ``first`` .. ``first + n - 1`` produce, per table."""
    rng = np.random.default_rng([plan.seed, 1, number])
    c = customers(rng, plan, first, n)
    req = requests(rng, plan, c)
    ses = sessions(rng, plan, mech, c, req, np.where(c["premium"][req["cust"]], 0.9, 0.76), 0.4, 0.6)
    follow = follow_ups(rng, plan, req, ses)
    kind = follow["follow_up"]
    follow_ses = sessions(
        rng,
        plan,
        mech,
        c,
        follow,
        np.array([0, 0.6, 0.7])[kind],
        np.array([0, 0.1, 0.4])[kind],
        np.array([0, 0, 0.4])[kind],
        preferred=ses["mech"][follow["parent"]],
    )
    follow_ses["req"] += len(req["cust"])
    req, ses = _concat(req, follow), _concat(ses, follow_ses)
    req["session"] = np.full(len(req["cust"]), -1)
    req["session"][ses["req"]] = np.arange(len(ses["req"]))
    req.update(lifecycle(rng, plan, mech, c, req, ses))
    req["ids"], ses["ids"] = uuids(rng, len(req["cust"])), uuids(rng, len(ses["cust"]))
    up = upsells(rng, plan, c, ses)
    return {
        **customer_tables(c),
        s.requests: requests_table(rng, plan, c, req, ses, mech),
        s.sessions: sessions_table(rng, c, req, ses, mech),
        s.session_files: files_table(rng, c, ses, mech),
        s.session_extensions: extensions_table(rng, ses),
        s.mechanic_reviews: reviews_table(rng, plan, req, ses, mech, c),
        s.upsell_recommendations: upsells_table(c, ses, up),
        s.crm_interactions: interactions_table(rng, plan, c, req, ses, up),
        s.email_outbox: emails_table(rng, plan, c, ses, mech),
    }


def chunks_ahead(plan: Plan, mech: Mechanics):
    """(customers, tables) per chunk; the next chunk is generated in a thread while this one loads."""
    chunks = plan.chunks()
    with ThreadPoolExecutor(max_workers=1) as pool:  # one worker: chunks are made in order
        upcoming = pool.submit(_chunk, plan, mech, 0, *chunks[0])
        for number, (_, n) in enumerate(chunks):
            current = upcoming
            if number + 1 < len(chunks):
                upcoming = pool.submit(_chunk, plan, mech, number + 1, *chunks[number + 1])
            yield n, current.result()
