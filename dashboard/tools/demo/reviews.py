"""Reviews of completed sessions, their moderation queue, and the mechanics' ratings."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dashboard.core import schema as s
from dashboard.domain.reviews import text_fingerprint
from dashboard.tools.demo.arrays import NAT, fill, flat, join, minutes, null_unless, pick, take, text, ts, uuids
from dashboard.tools.demo.mechanics import Mechanics
from dashboard.tools.demo.plan import Plan
from dashboard.tools.demo.vocabulary import (
    BURST_TEXTS,
    CATEGORY_LABELS,
    FIRST_NAMES,
    HIDDEN_TEXTS,
    PROFANE_SENTENCES,
    PROMO_SENTENCES,
    REVIEW_CLOSINGS,
    REVIEW_MIDDLES,
    REVIEW_OPENINGS,
    SHORT_NEGATIVE,
    SUPPORT_EMAIL,
)

REVIEW_MIX = {  # P(5, 4, 3, 2, 1 stars) for a good and for a poor mechanic
    "good": np.array([0.72, 0.19, 0.04, 0.02, 0.03]),
    "poor": np.array([0.42, 0.26, 0.12, 0.08, 0.12]),
}


def _banded(rng, pools: dict, band: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """Flattened pools (good, mixed, bad) and, per row, an index into its band's part."""
    sizes = np.array([len(p) for p in pools.values()])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return flat(pools.values()), offsets[band] + (rng.random(len(band)) * sizes[band]).astype(np.int64)


def _flag_list(flag: np.ndarray) -> pa.ListArray:
    """One flag per row as text[], null where ``flag`` is empty."""
    has = flag != ""
    offsets = np.concatenate([[0], np.cumsum(has)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flag[has].tolist(), pa.string()), mask=pa.array(~has))


def _contact_details(rng, k: int) -> pa.Array:
    """A phone number or an e-mail address in a sentence, as people leave them in reviews."""
    phone = join(
        "Text me at (",
        text(rng.choice([212, 312, 415, 503, 617, 702], k)),
        ") 555-01",
        pc.utf8_lpad(text(rng.integers(0, 100, k)), 2, "0"),
        " if you want details.",
    )
    email = pc.utf8_lower(
        join("Email me at ", pick(rng, FIRST_NAMES, k), ".", text(rng.integers(10, 99, k)), "@gmail.com for details.")
    )
    return pc.if_else(pa.array(rng.random(k) < 0.5), phone, email)


def reviews_table(rng, plan: Plan, req: dict, ses: dict, mech: Mechanics, c: dict) -> pa.Table:
    """Reviews on ~60% of completed sessions; a moderation queue of flagged ones; a few hidden."""
    done = np.nonzero((ses["status"] == "completed") & (rng.random(len(ses["cust"])) < 0.6))[0]
    created = ses["ended"][done] + minutes(rng.lognormal(np.log(300), 1.2, len(done)))
    row, created = done[created < plan.now], created[created < plan.now]
    k = len(row)
    m = ses["mech"][row]
    mix = mech.quality[m][:, None] * REVIEW_MIX["good"] + (1 - mech.quality[m][:, None]) * REVIEW_MIX["poor"]
    rating = 5 - (rng.random(k)[:, None] > np.cumsum(mix, axis=1)).sum(axis=1)
    band = np.where(rating >= 4, 0, np.where(rating == 3, 1, 2))
    openings, i = _banded(rng, REVIEW_OPENINGS, band)
    middles, j = _banded(rng, REVIEW_MIDDLES, band)
    closings, last = _banded(rng, REVIEW_CLOSINGS, band)
    text = pc.utf8_rtrim_whitespace(
        join(
            fill(openings, i, mech.first_names.take(pa.array(m))),
            " ",
            fill(middles, j, take(CATEGORY_LABELS, req["category"][ses["req"][row]])),
            " ",
            take(closings, last),
        )
    )

    age = (plan.now - created) / np.timedelta64(1, "D")
    u = rng.random(k)
    status = np.where(u < 0.01, "hidden", np.where(u < 0.03 + 0.2 * (age <= 21), "pending", "published"))
    flag = np.full(k, "", object)
    flag[status == "pending"] = rng.choice(
        ["personal_data", "link_or_promo", "profanity", "short_negative", "duplicate_text"],
        (status == "pending").sum(),
        p=[0.22, 0.2, 0.18, 0.2, 0.2],
    )
    reason = np.full(k, "", object)
    # Step 12's reasons: the profanity reason (step 20) is left to staff, so a seed's data stays what it was.
    reason[status == "hidden"] = rng.choice(s.HIDE_REASONS[:5], (status == "hidden").sum())
    flag[reason == "personal_information"] = "personal_data"
    flag[reason == "advertising"] = "link_or_promo"

    burst = _burst(rng, plan, ses, row, status, flag, rating, created)
    short = flag == "short_negative"
    rating[short] = rng.choice([1, 2], short.sum())
    silent = (status == "published") & ~burst & (rating >= 3) & (rng.random(k) < 0.12)  # a rating alone
    sources = np.nonzero((status == "published") & ~silent)[0]
    if len(sources):
        text = pc.if_else(pa.array(flag == "duplicate_text"), text.take(pa.array(rng.choice(sources, k))), text)
    else:
        flag[flag == "duplicate_text"] = "profanity"
    add = {
        "personal_data": _contact_details(rng, k),
        "link_or_promo": take(PROMO_SENTENCES, rng.integers(0, len(PROMO_SENTENCES), k)),
        "profanity": take(PROFANE_SENTENCES, rng.integers(0, len(PROFANE_SENTENCES), k)),
    }
    for name, sentence in add.items():
        text = pc.if_else(pa.array(flag == name), join(text, " ", sentence), text)
    text = pc.if_else(pa.array(short), take(SHORT_NEGATIVE, rng.integers(0, len(SHORT_NEGATIVE), k)), text)
    text = pc.if_else(pa.array(burst), take(BURST_TEXTS, rng.integers(0, len(BURST_TEXTS), k)), text)
    for name, replacement in HIDDEN_TEXTS.items():
        text = pc.if_else(pa.array(reason == name), pa.scalar(replacement), text)
    text = null_unless(~silent, text)

    moderated = (status == "hidden") | ((status == "published") & (rng.random(k) < 0.02))
    moderated_at = np.minimum(created + minutes(rng.lognormal(np.log(600), 1, k)), plan.now - minutes(1))
    published = status == "published"
    mech.rating_sum += np.bincount(m[published], weights=rating[published], minlength=mech.n).astype(np.int64)
    mech.rating_count += np.bincount(m[published], minlength=mech.n)
    return pa.table(
        {
            "id": uuids(rng, k),
            "session_id": ses["ids"].take(pa.array(row)),
            "mechanic_id": mech.ids.take(pa.array(m)),
            "customer_id": c["ids"].take(pa.array(ses["cust"][row])),
            "rating": pa.array(rating, pa.int32()),
            "review_text": text,
            "text_fingerprint": _fingerprints(text),
            "helpful_count": pa.array(rng.poisson(0.2 + age / 90), pa.int32()),
            "created_at": ts(created),
            "status": pa.array(status.tolist(), pa.string()),
            "flags": _flag_list(flag),
            "hidden_reason": null_unless(reason != "", pa.array(reason.tolist(), pa.string())),
            "moderated_by": null_unless(
                moderated, take((SUPPORT_EMAIL, "admin@pitwall.demo"), (rng.random(k) < 0.3).astype(int))
            ),
            "moderated_at": ts(np.where(moderated, moderated_at, NAT)),
            "rules_applied_at": ts(created),  # flagged when written
        }
    )


def _fingerprints(text: pa.Array) -> pa.Array:
    """The app's duplicate-detection hash of each text (computed once per distinct text)."""
    distinct = pc.unique(text)
    hashes = pa.array([text_fingerprint(t) for t in distinct.to_pylist()], pa.string())
    return hashes.take(pc.index_in(text, distinct))


def _burst(rng, plan: Plan, ses: dict, row, status, flag, rating, created) -> np.ndarray:
    """A few customers (one per ~5,000 reviews) review four or five sessions within the hour.

    As in the app's moderation rule, a review with three or more by the same customer in the
    24 hours before it is held as pending with 'review_burst'. Changes the arrays in place;
    returns which rows are part of a burst.
    """
    cust = ses["cust"][row]
    eligible = (status == "published") & (flag == "")
    counts = np.bincount(cust[eligible], minlength=1)
    burst = np.zeros(len(row), bool)
    for customer in rng.permutation(np.nonzero(counts >= 4)[0])[: 1 + len(row) // 5000]:
        rows = rng.permutation(np.nonzero(eligible & (cust == customer))[0])[: rng.integers(4, 6)]
        at = ses["ended"][row[rows]].max() + minutes(np.cumsum(rng.uniform(2, 10, len(rows))))
        if at[-1] < plan.now:
            created[rows], rating[rows], burst[rows] = at, 5, True
            status[rows[3:]], flag[rows[3:]] = "pending", "review_burst"
    return burst
