"""Review rules: intake, flags, moderation with audit, aggregates, helpful votes (both backends)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from dashboard.core import schema as s
from dashboard.core.auth import Actor, PermissionDenied
from dashboard.core.errors import ChangedMeanwhile, NotFound
from dashboard.domain.reviews import (
    REVIEW_TEXT_MAX,
    SUGGESTED_REASONS,
    ReviewError,
    Span,
    bayesian_rating,
    find_spans,
    flags_for,
    highlight_html,
    moderate,
    moderation_required,
    refresh_aggregates,
    set_moderation_required,
    submit_review,
    suggested_action,
    suggested_reason,
    text_fingerprint,
    undo_moderation,
    vote_helpful,
)
from tests.factories import NOW, add_mechanic, add_review, add_session, add_user, staff_fixture

SUPPORT = Actor("sam@example.com", "support")
ADMIN = Actor("ada@example.com", "admin")
MANAGER = Actor("max@example.com", "manager")
staff = staff_fixture(SUPPORT, ADMIN, MANAGER)
GOOD_TEXT = "Found the loose earth strap in ten minutes, car starts every time now."


# --- flag rules (pure) ----------------------------------------------------------


@pytest.mark.parametrize(
    "flag,text",
    [
        ("personal_data", "Call me on +44 7700 900123 if you need more work"),
        ("personal_data", "My number is (555) 123-4567, thanks"),
        ("personal_data", "email me at jo.bloggs+cars@example.co.uk please"),
        ("link_or_promo", "Book him via https://cheap-fix.example/book now"),
        ("link_or_promo", "Better prices at www.autodeals.net honestly"),
        ("link_or_promo", "see brakesrus.com for parts"),
        ("link_or_promo", "Use promo code SAVE20 on your next session"),
        ("link_or_promo", "use code WRENCH10 for 10% off"),
        ("profanity", "This mechanic was a total b1tch about the price"),
        ("profanity", "What a load of shit advice"),
    ],
)
def test_text_rules_flag_offending_text(flag, text):
    assert flag in flags_for(text, 4)
    spans = [sp for sp in find_spans(text) if sp.flag == flag]
    assert spans and all(text[sp.start : sp.end].strip() for sp in spans)


@pytest.mark.parametrize(
    "text",
    [
        GOOD_TEXT,
        "2015 Honda Civic, 120,000 miles, quoted $1,250.00 for the clutch on 12/03/2024",
        "He screwed the bolts back in and checked the cockpit wiring and the ball joint",
        "Classic car, the passenger seat belt warning was an assumption of the ECU",
        "The mechanic's code reading found P0301, a misfire on cylinder 1",
        "Great session.com-plete answers. Fixed it.Me and my wife are happy",  # no space after a dot
    ],
)
def test_text_rules_leave_ordinary_text_alone(text):
    assert flags_for(text, 5) == []
    assert find_spans(text) == []


def test_spans_cover_the_offending_text_only():
    text = "Parts at https://partshub.example. Or (www.x.com/a?b=1), promo code GARAGE10!"
    assert [text[sp.start : sp.end] for sp in find_spans(text)] == [
        "https://partshub.example",
        "www.x.com/a?b=1",
        "promo code GARAGE10",
    ]


@pytest.mark.parametrize(
    "rating,text,flagged",
    [
        (1, "Bad.", True),
        (2, None, True),
        (2, "   ", True),
        (1, "Did not show up on time and never answered my messages.", False),
        (3, "Meh.", False),
        (5, "Great!", False),
    ],
)
def test_short_negative(rating, text, flagged):
    assert ("short_negative" in flags_for(text, rating)) is flagged


def test_context_flags_and_flag_order():
    assert flags_for(GOOD_TEXT, 5, duplicate=True) == ["duplicate_text"]
    assert flags_for(GOOD_TEXT, 5, recent_reviews=2) == []
    assert flags_for(GOOD_TEXT, 5, recent_reviews=3) == ["review_burst"]
    assert flags_for("shit x.io 770090012", 1, duplicate=True, recent_reviews=5) == list(s.REVIEW_FLAGS)


def test_suggested_hide_reason_follows_the_flags():
    assert suggested_reason(["short_negative", "review_burst", "link_or_promo"]) == "advertising"
    assert suggested_reason(["profanity"]) == "profanity"  # the reason that matches its flag
    assert suggested_reason(["personal_data", "profanity"]) == "personal_information"
    assert suggested_reason(["duplicate_text"]) == "not_genuine_experience"
    assert suggested_reason(["short_negative"]) is None
    assert suggested_reason([]) is None
    assert set(SUGGESTED_REASONS.values()) <= set(s.HIDE_REASONS)


@pytest.mark.parametrize(
    "flags,action",
    [
        (["personal_data"], "hide"),
        (["link_or_promo"], "hide"),
        (["profanity"], "hide"),
        (["short_negative"], "publish"),
        (["duplicate_text"], "publish"),
        (["review_burst"], "publish"),
        (["short_negative", "duplicate_text", "review_burst"], "publish"),
        (["short_negative", "profanity"], "hide"),  # one rule broken is enough
        ([], "publish"),  # every review waits for moderation: nothing against it
    ],
)
def test_suggested_action_hides_broken_rules_and_publishes_mild_flags(flags, action):
    assert suggested_action(flags) == action


def test_fingerprint_ignores_case_spacing_and_punctuation_but_not_short_texts():
    assert text_fingerprint(GOOD_TEXT) == text_fingerprint("  " + GOOD_TEXT.upper().replace(",", " ,,") + "!!")
    assert text_fingerprint(GOOD_TEXT) != text_fingerprint(GOOD_TEXT + " again")
    assert text_fingerprint("Great job, thanks!") is None
    assert text_fingerprint(None) is None


def test_highlight_escapes_first_then_wraps():
    text = '<script>alert("x")</script> call 07700 900123 & [link](http://evil.example)'
    html = highlight_html(text, find_spans(text))
    assert "<script>" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert '<mark class="flag-personal_data" title="Personal data">07700 900123</mark>' in html
    assert "&amp;" in html
    assert highlight_html("a <b> c", [Span("profanity", 2, 5)]) == (
        'a <mark class="flag-profanity" title="Profanity">&lt;b&gt;</mark> c'
    )
    assert highlight_html(None) == ""


def test_bayesian_rating_pulls_small_samples_to_the_mean():
    assert bayesian_rating(5, 1, 4.2) == pytest.approx((10 * 4.2 + 5) / 11)
    assert bayesian_rating(0, 0, 4.2) == pytest.approx(4.2)
    assert bayesian_rating(5, 1, 4.2) < bayesian_rating(4.8, 200, 4.2)


# --- intake -----------------------------------------------------------------------


@pytest.fixture
def people(engine):
    with engine.begin() as conn:
        mechanic = add_mechanic(conn, "Rita Wrench")
        customer = add_user(conn, "Cal Customer")
        session = add_session(conn, customer, mechanic)
    return {"mechanic": mechanic, "customer": customer, "session": session}


def _mechanic(engine, mechanic_id):
    with engine.connect() as conn:
        return conn.execute(
            sa.select(s.mechanics.c.avg_rating, s.mechanics.c.total_reviews).where(s.mechanics.c.user_id == mechanic_id)
        ).one()


def _reviews(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(s.mechanic_reviews)).mappings().all()


def _audit(engine):
    with engine.connect() as conn:
        rows = conn.execute(sa.select(s.audit_log).order_by(s.audit_log.c.created_at)).mappings().all()
    return [{**row, "before": _json(row["before"]), "after": _json(row["after"])} for row in rows]


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def test_clean_review_publishes_and_updates_aggregates(engine, people):
    result = submit_review(
        engine, session_id=people["session"], customer_id=people["customer"], rating=4, text=f"  {GOOD_TEXT}  "
    )
    assert result.status == "published" and result.flags == ()
    (row,) = _reviews(engine)
    assert row["review_text"] == GOOD_TEXT and row["flags"] == [] and row["text_fingerprint"]
    assert tuple(_mechanic(engine, people["mechanic"])) == (Decimal("4.00"), 1)


def test_flagged_review_waits_and_leaves_aggregates(engine, people):
    result = submit_review(
        engine, session_id=str(people["session"]), customer_id=str(people["customer"]), rating=1, text="Rubbish"
    )
    assert result.status == "pending" and result.flags == ("short_negative",)
    assert _reviews(engine)[0]["flags"] == ["short_negative"]
    assert tuple(_mechanic(engine, people["mechanic"])) == (Decimal("0.00"), 0)


def test_the_moderation_setting_takes_only_on_or_off(engine):
    for value in ("no", 0, None):
        with pytest.raises(ReviewError, match="on or off"):
            set_moderation_required(engine, ADMIN, value)
    with engine.connect() as conn:
        assert not moderation_required(conn)
        assert conn.execute(sa.select(sa.func.count()).select_from(s.audit_log)).scalar_one() == 0


def test_setting_sends_every_review_to_the_queue(engine, people):
    with pytest.raises(PermissionDenied):
        set_moderation_required(engine, SUPPORT, True)
    set_moderation_required(engine, ADMIN, True)
    with engine.connect() as conn:
        assert moderation_required(conn)
    result = submit_review(
        engine, session_id=people["session"], customer_id=people["customer"], rating=5, text=GOOD_TEXT
    )
    assert result.status == "pending" and result.flags == ()
    set_moderation_required(engine, ADMIN, False)
    with engine.connect() as conn:
        assert not moderation_required(conn)
    changes = [(a["action"], a["before"], a["after"]) for a in _audit(engine)]
    assert changes == [
        ("review_settings.update", {"moderate_all": False}, {"moderate_all": True}),
        ("review_settings.update", {"moderate_all": True}, {"moderate_all": False}),
    ]


def test_duplicate_text_is_flagged(engine, people):
    submit_review(engine, session_id=people["session"], customer_id=people["customer"], rating=5, text=GOOD_TEXT)
    with engine.begin() as conn:
        other = add_user(conn)
        session = add_session(conn, other, people["mechanic"])
    copied = GOOD_TEXT.lower().replace(",", "")
    assert submit_review(engine, session_id=session, customer_id=other, rating=5, text=copied).flags == (
        "duplicate_text",
    )


def test_review_burst_counts_the_last_day_only(engine, people):
    customer, mechanic = people["customer"], people["mechanic"]
    with engine.begin() as conn:
        for hours in (30, 40, 50):  # older than the window: not a burst
            add_review(conn, mechanic, 5, customer_id=customer, created_at=NOW - dt.timedelta(hours=hours))
    assert (
        submit_review(engine, session_id=people["session"], customer_id=customer, rating=5, text=GOOD_TEXT).flags == ()
    )
    with engine.begin() as conn:
        for hours in (1, 2):
            add_review(conn, mechanic, 5, customer_id=customer, created_at=NOW - dt.timedelta(hours=hours))
        session = add_session(conn, customer, mechanic)
    # three reviews in the last 24 h already (two added + the one submitted above): the fourth is a burst
    assert submit_review(
        engine,
        session_id=session,
        customer_id=customer,
        rating=5,
        text="Second visit, sorted the squeaky belt quickly.",
    ).flags == ("review_burst",)


BAD_RATINGS = [0, 6, 3.5, "five", "5", True, None, -1]


@pytest.mark.parametrize("rating", BAD_RATINGS, ids=[repr(r) for r in BAD_RATINGS])
def test_bad_rating_is_rejected_and_nothing_written(engine, people, rating):
    with pytest.raises(ReviewError, match=r"Rating must be a whole number from 1 to 5, got "):
        submit_review(engine, session_id=people["session"], customer_id=people["customer"], rating=rating)
    assert _reviews(engine) == []


def test_bad_intake_is_rejected_with_a_specific_error(engine, people):
    session, customer, mechanic = people["session"], people["customer"], people["mechanic"]
    with engine.begin() as conn:
        stranger = add_user(conn)
        live = add_session(conn, customer, mechanic, status="live")
        orphan = add_session(conn, customer, None)
    cases = [
        (dict(session_id="not-a-uuid", customer_id=customer), "Session 'not-a-uuid' is not a valid id"),
        (dict(session_id=session, customer_id="42"), "Customer '42' is not a valid id"),
        (dict(session_id=uuid.uuid4(), customer_id=customer), "No session with id"),
        (dict(session_id=session, customer_id=stranger), "Only the session's customer can review it"),
        (dict(session_id=live, customer_id=customer), "is live; only completed sessions can be reviewed"),
        (dict(session_id=orphan, customer_id=customer), "has no mechanic to review"),
        (
            dict(session_id=session, customer_id=customer, text="x" * (REVIEW_TEXT_MAX + 1)),
            "Review text is 2,001 characters; the limit is 2,000",
        ),
        (dict(session_id=session, customer_id=customer, text="ok\x00"), "NUL character"),
        (dict(session_id=session, customer_id=customer, text=42), "Review text must be text, got int"),
    ]
    for kwargs, message in cases:
        with pytest.raises(NotFound if message.startswith("No ") else ReviewError, match=message):
            submit_review(engine, rating=5, **kwargs)
    assert _reviews(engine) == []
    assert tuple(_mechanic(engine, mechanic)) == (Decimal("0.00"), 0)


def test_second_review_for_a_session_is_rejected(engine, people):
    submit_review(engine, session_id=people["session"], customer_id=people["customer"], rating=5, text=GOOD_TEXT)
    with pytest.raises(ReviewError, match="already has a review"):
        submit_review(engine, session_id=people["session"], customer_id=people["customer"], rating=1, text="Bad")
    assert len(_reviews(engine)) == 1
    assert tuple(_mechanic(engine, people["mechanic"])) == (Decimal("5.00"), 1)


def test_html_and_sql_in_text_are_stored_verbatim(engine, people):
    text = "<script>alert('x')</script> Robert'); DROP TABLE mechanic_reviews; -- **bold** [x](javascript:1)"
    submit_review(engine, session_id=people["session"], customer_id=people["customer"], rating=4, text=text)
    (row,) = _reviews(engine)
    assert row["review_text"] == text
    assert "<script>" not in highlight_html(row["review_text"], find_spans(row["review_text"]))


# --- aggregates and moderation -------------------------------------------------------


def test_aggregates_count_published_reviews_only(engine):
    """Hand-computed: published 5, 4, 4 -> 13/3 = 4.333 -> 4.33 over 3; pending and hidden ignored."""
    with engine.begin() as conn:
        rita, omar, idle = add_mechanic(conn, "Rita"), add_mechanic(conn, "Omar"), add_mechanic(conn, "Idle")
        for rating in (5, 4, 4):
            add_review(conn, rita, rating)
        add_review(conn, rita, 1, "pending")
        add_review(conn, rita, 1, "hidden")
        for rating in (2, 3):  # 2.5 exactly: rounds half up to 2.50
            add_review(conn, omar, rating)
        conn.execute(s.mechanics.update().where(s.mechanics.c.user_id == idle).values(avg_rating=3, total_reviews=9))
        refresh_aggregates(conn)
    assert tuple(_mechanic(engine, rita)) == (Decimal("4.33"), 3)
    assert tuple(_mechanic(engine, omar)) == (Decimal("2.50"), 2)
    assert tuple(_mechanic(engine, idle)) == (Decimal("0.00"), 0)


def test_moderation_transitions_change_aggregates_and_write_audit(engine):
    with engine.begin() as conn:
        mechanic = add_mechanic(conn)
        kept = add_review(conn, mechanic, 5)
        queued = add_review(conn, mechanic, 2, "pending", flags=["short_negative"])
        refresh_aggregates(conn)
    assert tuple(_mechanic(engine, mechanic)) == (Decimal("5.00"), 1)

    assert moderate(engine, SUPPORT, [queued], "publish").count == 1
    assert tuple(_mechanic(engine, mechanic)) == (Decimal("3.50"), 2)
    moderate(engine, ADMIN, [kept], "hide", reason="not_genuine_experience")
    assert tuple(_mechanic(engine, mechanic)) == (Decimal("2.00"), 1)
    moderate(engine, SUPPORT, [kept], "restore")
    assert tuple(_mechanic(engine, mechanic)) == (Decimal("3.50"), 2)

    rows = {r["id"]: r for r in _reviews(engine)}
    assert rows[kept]["status"] == "published" and rows[kept]["hidden_reason"] is None
    assert rows[kept]["moderated_by"] == SUPPORT.email and rows[kept]["moderated_at"] is not None
    audit = [
        (
            a["actor_email"],
            a["actor_role"],
            a["action"],
            a["entity_type"],
            a["entity_id"],
            a["before"],
            a["after"],
            a["reason"],
        )
        for a in _audit(engine)
    ]
    assert audit == [
        (
            SUPPORT.email,
            "support",
            "review.publish",
            "mechanic_review",
            str(queued),
            {"status": "pending", "hidden_reason": None},
            {"status": "published", "hidden_reason": None},
            None,
        ),
        (
            ADMIN.email,
            "admin",
            "review.hide",
            "mechanic_review",
            str(kept),
            {"status": "published", "hidden_reason": None},
            {"status": "hidden", "hidden_reason": "not_genuine_experience"},
            "not_genuine_experience",
        ),
        (
            SUPPORT.email,
            "support",
            "review.restore",
            "mechanic_review",
            str(kept),
            {"status": "hidden", "hidden_reason": "not_genuine_experience"},
            {"status": "published", "hidden_reason": None},
            None,
        ),
    ]


def test_bulk_moderation_is_all_or_nothing(engine):
    with engine.begin() as conn:
        mechanic = add_mechanic(conn)
        first = add_review(conn, mechanic, 4, "pending")
        second = add_review(conn, mechanic, 5, "pending")
        done = add_review(conn, mechanic, 3, "published")
    with pytest.raises(ReviewError, match=rf"Cannot publish: review {done} is published"):
        moderate(engine, SUPPORT, [first, second, done], "publish")
    assert {r["status"] for r in _reviews(engine) if r["id"] != done} == {"pending"}
    assert moderate(engine, SUPPORT, [first, str(second)], "hide", reason="advertising").count == 2
    assert len(_audit(engine)) == 2


def test_bad_moderation_is_rejected_and_nothing_written(engine):
    with engine.begin() as conn:
        mechanic = add_mechanic(conn)
        review = add_review(conn, mechanic, 4, "pending")
    cases = [
        (PermissionDenied, "Only support or admin staff", dict(actor=MANAGER, action="publish")),
        (PermissionDenied, "Sign in", dict(actor=None, action="publish")),
        (ReviewError, "Unknown moderation action 'delete'", dict(action="delete")),
        (ReviewError, "Hiding needs a reason", dict(action="hide")),
        (ReviewError, "Hiding needs a reason", dict(action="hide", reason="rude")),
        (ReviewError, "Only hiding takes a reason", dict(action="publish", reason="off_topic")),
        (ReviewError, "Cannot restore: review .* is pending", dict(action="restore")),
        (NotFound, "No review with id", dict(action="publish", ids=[review, uuid.uuid4()])),
        (ReviewError, "'abc' is not a valid id", dict(action="publish", ids=["abc"])),
        (ReviewError, "Select at least one review", dict(action="publish", ids=[])),
    ]
    for error, message, kw in cases:
        with pytest.raises(error, match=message):
            moderate(engine, kw.get("actor", SUPPORT), kw.get("ids", [review]), kw["action"], kw.get("reason"))
    assert _reviews(engine)[0]["status"] == "pending"
    assert _audit(engine) == []


def test_undo_returns_reviews_to_where_they_were_with_an_audit_row_each(engine):
    with engine.begin() as conn:
        mechanic = add_mechanic(conn)
        shown = add_review(conn, mechanic, 5)
        first = add_review(conn, mechanic, 1, "pending", flags=["short_negative"])
        second = add_review(conn, mechanic, 3, "pending", flags=["personal_data"])
        refresh_aggregates(conn)
    published = moderate(engine, SUPPORT, [first, second], "publish")
    assert tuple(_mechanic(engine, mechanic)) == (Decimal("3.00"), 3)
    assert undo_moderation(engine, ADMIN, [str(first), second], seen=published.seen).count == 2
    rows = {r["id"]: r for r in _reviews(engine)}
    assert {(rows[rid]["status"], rows[rid]["moderated_by"], rows[rid]["moderated_at"]) for rid in (first, second)} == {
        ("pending", None, None)  # waiting again, as if nobody had decided
    }
    assert tuple(_mechanic(engine, mechanic)) == (Decimal("5.00"), 1)  # the aggregates follow

    hidden = moderate(engine, SUPPORT, [shown], "hide", reason="off_topic")  # a published review hidden...
    undo_moderation(engine, SUPPORT, [shown], seen=hidden.seen)  # ...is published again, not queued
    row = next(r for r in _reviews(engine) if r["id"] == shown)
    assert (row["status"], row["hidden_reason"], row["moderated_by"]) == ("published", None, SUPPORT.email)
    assert tuple(_mechanic(engine, mechanic)) == (Decimal("5.00"), 1)

    undos = [a for a in _audit(engine) if a["action"] == "review.undo"]
    assert [(a["entity_id"], a["actor_email"], a["before"], a["after"], a["reason"]) for a in undos] == [
        *sorted(
            (
                (str(rid), ADMIN.email, {"status": "published", "hidden_reason": None})
                + ({"status": "pending", "hidden_reason": None}, "undo review.publish")
                for rid in (first, second)
            ),
        ),
        (
            str(shown),
            SUPPORT.email,
            {"status": "hidden", "hidden_reason": "off_topic"},
            {"status": "published", "hidden_reason": None},
            "undo review.hide",
        ),
    ]


def test_undo_is_refused_when_it_cannot_apply_and_writes_nothing(engine):
    with engine.begin() as conn:
        mechanic = add_mechanic(conn)
        review = add_review(conn, mechanic, 4, "pending", flags=["review_burst"])
        other = add_review(conn, mechanic, 2, "pending")
        never = add_review(conn, mechanic, 2, "pending")
    done = moderate(engine, SUPPORT, [review], "publish")
    hidden_since = moderate(engine, SUPPORT, [other], "publish")
    moderate(engine, ADMIN, [other], "hide", reason="advertising")  # changed after the publish was seen
    audit_rows = len(_audit(engine))
    cases = [
        (PermissionDenied, "Only support or admin staff", dict(actor=MANAGER)),
        (PermissionDenied, "Sign in", dict(actor=None)),
        (NotFound, "No review with id", dict(ids=[review, uuid.uuid4()])),
        (ReviewError, "'abc' is not a valid id", dict(ids=["abc"])),
        (ReviewError, "Select at least one review", dict(ids=[])),
        (ReviewError, "list of ids", dict(ids=str(review))),
        (ReviewError, "Say what you saw of review", dict(seen={})),
        (ReviewError, "Say what you saw: each", dict(seen=[review])),
        (
            ChangedMeanwhile,
            f"changed by {ADMIN.email}",
            dict(ids=[review, other], seen={**done.seen, **hidden_since.seen}),
        ),
        (ReviewError, "has no moderation to undo", dict(ids=[never], seen={never: None})),
    ]
    for error, message, kw in cases:
        with pytest.raises(error, match=message):
            undo_moderation(engine, kw.get("actor", SUPPORT), kw.get("ids", [review]), seen=kw.get("seen", done.seen))
    assert {r["id"]: r["status"] for r in _reviews(engine)} == {review: "published", other: "hidden", never: "pending"}
    assert len(_audit(engine)) == audit_rows

    undo_moderation(engine, SUPPORT, [review], seen=done.seen)
    with pytest.raises(ChangedMeanwhile, match=f"changed by {SUPPORT.email}"):  # undone already
        undo_moderation(engine, SUPPORT, [review], seen=done.seen)


def test_concurrent_publishes_keep_the_aggregate_exact(pg_engine):
    """Two moderators publish two reviews of one mechanic at the same moment, many times over."""
    rounds = 8
    with pg_engine.begin() as conn:
        mechanic = add_mechanic(conn)
        pairs = [
            (add_review(conn, mechanic, 5, "pending"), add_review(conn, mechanic, 2, "pending")) for _ in range(rounds)
        ]
    errors = []
    for pair in pairs:
        barrier = threading.Barrier(2)

        def publish(review_id, actor, barrier=barrier):  # this pair's barrier
            try:
                barrier.wait()
                moderate(pg_engine, actor, [review_id], "publish")
            except Exception as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=publish, args=(rid, actor)) for rid, actor in zip(pair, (SUPPORT, ADMIN))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    assert tuple(_mechanic(pg_engine, mechanic)) == (Decimal("3.50"), 2 * rounds)


# --- helpful votes -------------------------------------------------------------------


def test_helpful_votes_count_once_per_voter(engine):
    with engine.begin() as conn:
        mechanic = add_mechanic(conn)
        author = add_user(conn)
        review = add_review(conn, mechanic, 5, customer_id=author)
        pending = add_review(conn, mechanic, 5, "pending")
        first, second = add_user(conn), add_user(conn)
    assert vote_helpful(engine, review_id=review, voter_id=first) is True
    assert vote_helpful(engine, review_id=str(review), voter_id=first) is False
    assert vote_helpful(engine, review_id=review, voter_id=second) is True
    cases = [
        (dict(review_id=pending, voter_id=first), "is pending; only published reviews take votes"),
        (dict(review_id=review, voter_id=author), "cannot vote for their own review"),
        (dict(review_id=review, voter_id=uuid.uuid4()), "No user with id"),
        (dict(review_id=uuid.uuid4(), voter_id=first), "No review with id"),
        (dict(review_id="7", voter_id=first), "Review '7' is not a valid id"),
    ]
    for kwargs, message in cases:
        with pytest.raises(NotFound if message.startswith("No ") else ReviewError, match=message):
            vote_helpful(engine, **kwargs)
    counts = {r["id"]: r["helpful_count"] for r in _reviews(engine)}
    assert counts == {review: 2, pending: 0}
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.review_helpful_votes)).scalar_one() == 2
