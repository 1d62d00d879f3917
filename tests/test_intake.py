"""The intake job: reviews and follow-ups the platform inserted itself get Pitwall's rules,
once each, without skipping late commits (both backends; NOTIFY on PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from alembic import command

from dashboard.__main__ import main as cli
from dashboard.core import schema as s
from dashboard.core.db import make_engine
from dashboard.core.migrate import alembic_config, upgrade
from dashboard.domain import intake
from dashboard.domain.reviews import submit_review
from jobs.intake import run_loop
from tests.factories import add_mechanic, add_session, add_user
from tests.throwaway_pg import throwaway_cluster

UTC = dt.UTC
NOW = dt.datetime.now(UTC).replace(microsecond=0)
DAY = dt.timedelta(days=1)
GOOD_TEXT = "Explained the brake noise clearly and patiently."


@pytest.fixture
def world(engine):
    """Cal (standard) with three completed sessions with Rita (ended a day ago), one that ended
    30 days ago and a scheduled one; Pia with one; chat sessions cost $29.00."""
    with engine.begin() as conn:
        cal, pia, rita = add_user(conn, "Cal"), add_user(conn, "Pia"), add_mechanic(conn, "Rita")
        w = {
            "cal": cal,
            "pia": pia,
            "rita": rita,
            "scheduled": add_session(conn, cal, rita, "scheduled"),
            "pia_session": add_session(conn, pia, rita, ended_at=NOW - DAY),
            "old": add_session(conn, cal, rita, ended_at=NOW - 30 * DAY),
        }
        for n in range(3):
            w[f"s{n}"] = add_session(conn, cal, rita, ended_at=NOW - DAY)
        conn.execute(s.session_base_prices.insert().values(session_type="chat", price_cents=2900))
    return w


def platform_review(conn, world, session="s0", rating=5, text=None, customer="cal", **columns) -> uuid.UUID:
    """A review as the platform writes it: straight into its table, no rules applied. The
    default text differs per review, so none is a duplicate of another."""
    rid = uuid.uuid4()
    conn.execute(
        s.mechanic_reviews.insert().values(
            id=rid,
            session_id=world.get(session, session),
            mechanic_id=world["rita"],
            customer_id=world[customer],
            rating=rating,
            review_text=text or f"{GOOD_TEXT} Ref {rid.hex[:8]}.",
            **columns,
        )
    )
    return rid


def new_customer(conn, world, name: str) -> str:
    """Another customer with a completed session with Rita (``world[name]`` and its session
    ``world[name + "_session"]``), so their review is no burst of Cal's."""
    world[name] = add_user(conn, name)
    world[f"{name}_session"] = add_session(conn, world[name], world["rita"], ended_at=NOW - DAY)
    return f"{name}_session"


def platform_follow_up(
    conn, world, session="s0", customer="cal", text="Is it safe to drive?", follow_up_type="quick_question", **columns
) -> uuid.UUID:
    fid = uuid.uuid4()
    conn.execute(
        s.requests.insert().values(
            id=fid,
            customer_id=world[customer],
            is_follow_up=True,
            parent_session_id=world[session],
            follow_up_type=follow_up_type,
            description=text,
            **columns,
        )
    )
    return fid


def review(engine, rid) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(s.mechanic_reviews).where(s.mechanic_reviews.c.id == rid)).mappings().one())


def request(engine, fid) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(s.requests).where(s.requests.c.id == fid)).mappings().one())


def audit_rows(engine) -> list[dict]:
    a = s.audit_log
    with engine.connect() as conn:
        rows = conn.execute(sa.select(a).order_by(a.c.created_at)).mappings().all()
    return [{**r, "after": json.loads(r["after"]) if isinstance(r["after"], str) else r["after"]} for r in rows]


def aggregates(engine, mechanic) -> tuple:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(s.mechanics.c.avg_rating, s.mechanics.c.total_reviews).where(s.mechanics.c.user_id == mechanic)
        ).one()
    return float(row.avg_rating), row.total_reviews


def test_platform_reviews_get_flags_publish_or_queue_and_aggregates(engine, world):
    with engine.begin() as conn:
        clean = platform_review(conn, world, "s0", rating=4, created_at=NOW - dt.timedelta(minutes=3))
        promo = platform_review(
            conn,
            world,
            "s1",
            rating=5,
            text="Great! Use code SAVE20 at <a href='x'>shop.com</a>",
            created_at=NOW - dt.timedelta(minutes=2),
        )
        short = platform_review(conn, world, "s2", rating=1, text="bad", created_at=NOW - dt.timedelta(minutes=1))
    run = intake.run_once(engine)
    assert run.outcomes == {"reviews": {"published": 1, "queued": 2}, "follow_ups": {}}
    assert (review(engine, clean)["status"], review(engine, clean)["flags"]) == ("published", [])
    assert (review(engine, promo)["status"], review(engine, promo)["flags"]) == ("pending", ["link_or_promo"])
    assert review(engine, promo)["review_text"] == "Great! Use code SAVE20 at <a href='x'>shop.com</a>"  # kept as is
    assert (review(engine, short)["status"], review(engine, short)["flags"]) == ("pending", ["short_negative"])
    assert aggregates(engine, world["rita"]) == (4.0, 1)
    assert all(review(engine, r)["rules_applied_at"] is not None for r in (clean, promo, short))
    trail = audit_rows(engine)
    assert [(a["actor_email"], a["action"], a["entity_id"]) for a in trail] == [
        ("intake job", "review.intake", str(r)) for r in (clean, promo, short)
    ]
    assert intake.run_once(engine).outcomes == {"reviews": {}, "follow_ups": {}}  # once each
    with engine.connect() as conn:
        mark = conn.execute(sa.select(s.intake_watermarks).where(s.intake_watermarks.c.name == "reviews")).one()
    assert mark.last_id == short and mark.updated_at is not None


def test_reviews_written_through_pitwall_are_not_taken_again(engine, world):
    submit_review(engine, session_id=world["s0"], customer_id=world["cal"], rating=5, text=GOOD_TEXT)
    assert intake.run_once(engine).outcomes["reviews"] == {}
    assert aggregates(engine, world["rita"]) == (5.0, 1)


def test_bad_platform_reviews_wait_in_the_queue_and_the_job_goes_on(engine, world):
    stranger = uuid.uuid4()
    with engine.begin() as conn:
        no_session = platform_review(conn, world, None, status="published")
        other_customers = platform_review(conn, world, "pia_session")
        not_completed = platform_review(conn, world, "scheduled")
        too_long = platform_review(conn, world, "s1", text="x" * 2001)
        fine = platform_review(conn, world, new_customer(conn, world, "Fay"), customer="Fay")
        if engine.dialect.name == "duckdb":  # no foreign keys or NUL check there
            unknown = platform_review(conn, world, stranger)
            nul = platform_review(conn, world, "s0", text="nul\x00byte")
    run = intake.run_once(engine)
    expected_rejected = 6 if engine.dialect.name == "duckdb" else 4
    assert run.outcomes["reviews"] == {"rejected": expected_rejected, "published": 1}
    assert review(engine, no_session)["status"] == "pending"  # the platform's "published" is taken back
    assert review(engine, fine)["status"] == "published"
    reasons = {a["entity_id"]: a["reason"] for a in audit_rows(engine) if a["action"] == "review.intake_rejected"}
    assert reasons[str(no_session)] == "The review names no session."
    assert reasons[str(other_customers)] == "Only the session's customer can review it."
    assert "only completed sessions can be reviewed" in reasons[str(not_completed)]
    assert "2,001 characters" in reasons[str(too_long)]
    if engine.dialect.name == "duckdb":
        assert reasons[str(unknown)] == f"No session with id {stranger}."
        assert "NUL" in reasons[str(nul)]
    assert aggregates(engine, world["rita"]) == (5.0, 1)


def test_the_database_refuses_what_the_checks_forbid(engine, world):
    with pytest.raises(sa.exc.DBAPIError):
        with engine.begin() as conn:
            platform_review(conn, world, rating=6)
    if engine.dialect.name == "postgresql":
        with pytest.raises(sa.exc.DBAPIError):  # PostgreSQL text cannot hold NUL
            with engine.begin() as conn:
                platform_review(conn, world, text="nul\x00byte")
        with pytest.raises(sa.exc.IntegrityError):  # a foreign key: no review of an unknown session
            with engine.begin() as conn:
                platform_review(conn, world, uuid.uuid4())


def test_platform_follow_ups_get_a_price_and_state_or_are_cancelled(engine, world):
    with engine.begin() as conn:
        conn.execute(s.profiles.update().where(s.profiles.c.id == world["pia"]).values(plan="premium"))
        first = platform_follow_up(conn, world, "s0", created_at=NOW - dt.timedelta(hours=3))
        second = platform_follow_up(
            conn, world, "s0", follow_up_type="new_issue", created_at=NOW - dt.timedelta(hours=2)
        )
        third = platform_follow_up(conn, world, "s0", created_at=NOW - dt.timedelta(hours=1))  # over the limit of 2
        premium = platform_follow_up(conn, world, "pia_session", customer="pia")
        theirs = platform_follow_up(conn, world, "pia_session")  # Cal on Pia's session
        priced = platform_follow_up(conn, world, "s1", follow_up_price_cents=123)  # the platform's price stays
        matched = platform_follow_up(conn, world, "s2", status="matched")
        late = platform_follow_up(conn, world, "old", status="completed")  # past the window, closed already
    run = intake.run_once(engine)
    assert run.outcomes["follow_ups"] == {"priced": 5, "cancelled": 2, "rejected": 1}
    got = {
        name: request(engine, fid)
        for name, fid in dict(
            first=first,
            second=second,
            third=third,
            premium=premium,
            theirs=theirs,
            priced=priced,
            matched=matched,
            late=late,
        ).items()
    }
    assert [(got[n]["follow_up_state"], got[n]["follow_up_price_cents"], got[n]["status"]) for n in got] == [
        ("open", 500, "open"),
        ("open", 2900, "open"),
        ("cancelled", None, "cancelled"),
        ("open", 0, "open"),
        ("cancelled", None, "cancelled"),
        ("open", 123, "open"),
        (None, 500, "matched"),
        (None, None, "completed"),
    ]
    assert "the limit is 2" in got["third"]["cancel_reason"]
    assert "another customer's" in got["theirs"]["cancel_reason"]
    actions = sorted(a["action"] for a in audit_rows(engine))
    assert actions == ["follow_up.intake"] * 5 + ["follow_up.intake_cancelled"] * 2 + ["follow_up.intake_rejected"]
    assert intake.run_once(engine).outcomes["follow_ups"] == {}


def test_two_workers_at_once_handle_each_row_once(engine, world):
    with engine.begin() as conn:
        names = [f"c{n}" for n in range(24)]
        reviews = [
            platform_review(
                conn, world, new_customer(conn, world, name), customer=name, created_at=NOW - dt.timedelta(minutes=n)
            )
            for n, name in enumerate(names)
        ]
        follow_ups = [platform_follow_up(conn, world, f"{name}_session", customer=name) for name in names[:8]]
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: intake.run_once(engine), range(2)))
    assert sum(sum(r.outcomes["reviews"].values()) for r in runs) == len(reviews)
    assert sum(sum(r.outcomes["follow_ups"].values()) for r in runs) == len(follow_ups)
    per_row = [a["entity_id"] for a in audit_rows(engine)]
    assert sorted(per_row) == sorted(map(str, reviews + follow_ups))  # one audit row each
    assert aggregates(engine, world["rita"]) == (5.0, 24)


def test_a_row_committed_late_is_not_skipped(engine, world, tmp_path):
    """The platform's transaction A inserts a review first but commits last: a created_at
    watermark would pass over it once the later review B was handled."""
    early = NOW - dt.timedelta(hours=1)
    with engine.connect() as a:
        a.begin()
        late_commit = platform_review(a, world, "s0", created_at=early)
        with engine.begin() as b:
            handled_first = platform_review(b, world, "s1", created_at=NOW)
        assert intake.run_once(engine).outcomes["reviews"] == {"published": 1}
        assert review(engine, handled_first)["rules_applied_at"] is not None
        a.commit()
    assert intake.run_once(engine).outcomes["reviews"] == {"published": 1}
    assert review(engine, late_commit)["status"] == "published"


def _wait_until(check, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def _loop(engine, interval):
    stop, lines = threading.Event(), []
    thread = threading.Thread(target=run_loop, args=(engine, interval, stop, lines.append), daemon=True)
    thread.start()
    assert _wait_until(lambda: lines, 10), "the loop never reported its first run"
    return stop, thread, lines


def test_postgres_wakes_on_notify_long_before_the_next_poll(pg_engine):
    engine = pg_engine
    with engine.begin() as conn:
        w = {"cal": add_user(conn), "rita": add_mechanic(conn, "Rita")}
        w["s0"] = add_session(conn, w["cal"], w["rita"], ended_at=NOW - DAY)
    stop, thread, lines = _loop(engine, interval=120)  # polling alone would wait two minutes
    try:
        with engine.begin() as conn:
            rid = platform_review(conn, w, "s0")
        assert _wait_until(lambda: review(engine, rid)["rules_applied_at"] is not None, 10)
        assert review(engine, rid)["status"] == "published"
        assert _wait_until(lambda: len(lines) == 2, 5)  # the start-up run, then the notified one
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_duckdb_polls(duckdb_engine):
    engine = duckdb_engine
    with engine.begin() as conn:
        w = {"cal": add_user(conn), "rita": add_mechanic(conn, "Rita")}
        w["s0"] = add_session(conn, w["cal"], w["rita"], ended_at=NOW - DAY)
    stop, thread, lines = _loop(engine, interval=0.2)
    try:
        with engine.begin() as conn:
            rid = platform_review(conn, w, "s0", text="Call me on 0123 456 789 for the parts")
        assert _wait_until(lambda: review(engine, rid)["rules_applied_at"] is not None, 10)
        assert review(engine, rid)["flags"] == ["personal_data"]
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_migration_marks_existing_rows_handled_and_installs_the_trigger(empty_pg_url):
    """Rows that exist when step 19 runs are not taken again; later platform rows are."""
    engine = make_engine(empty_pg_url)
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0017_period_indexes")
    with engine.begin() as conn:
        w = {"cal": add_user(conn), "rita": add_mechanic(conn, "Rita")}
        w["s0"], w["s1"] = (add_session(conn, w["cal"], w["rita"], ended_at=NOW - DAY) for _ in range(2))
        conn.execute(
            s.mechanic_reviews.insert().values(
                session_id=w["s0"], mechanic_id=w["rita"], customer_id=w["cal"], rating=5
            )
        )
    upgrade(engine)
    assert intake.run_once(engine).outcomes == {"reviews": {}, "follow_ups": {}}
    with engine.connect() as conn:
        triggers = (
            conn.execute(
                sa.text(
                    "SELECT tgrelid::regclass::text FROM pg_trigger WHERE tgname = 'pitwall_intake_notify' ORDER BY 1"
                )
            )
            .scalars()
            .all()
        )
    assert triggers == ["mechanic_reviews", "requests"]
    with engine.begin() as conn:
        platform_review(conn, w, "s1")
    assert intake.run_once(engine).outcomes["reviews"] == {"published": 1}
    engine.dispose()


def test_the_command_runs_once_and_reports(duckdb_engine, capsys, monkeypatch, tmp_path):
    engine = duckdb_engine
    with engine.begin() as conn:
        w = {"cal": add_user(conn), "rita": add_mechanic(conn, "Rita")}
        w["s0"] = add_session(conn, w["cal"], w["rita"], ended_at=NOW - DAY)
        platform_review(conn, w, "s0")
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    monkeypatch.setenv("PITWALL_SECRETS", str(tmp_path / "none.toml"))
    assert cli(["intake", "--once", "--database", url]) == 0
    assert capsys.readouterr().out.strip() == "intake reviews: 1 published; follow_ups: none waiting"
    assert cli(["intake", "--once", "--database", "postgresql://postgres@127.0.0.1:1/none"]) == 2
    assert capsys.readouterr().err.startswith("error: Cannot reach the database")


def test_the_loop_rides_out_a_database_restart():
    """The database goes down under the loop and comes back: the loop reports, carries on,
    listens again, and every row is handled once."""
    with throwaway_cluster() as cluster:
        engine = make_engine(cluster.url)
        upgrade(engine)
        with engine.begin() as conn:
            w = {"cal": add_user(conn), "rita": add_mechanic(conn, "Rita")}
            w["s0"], w["s1"] = (add_session(conn, w["cal"], w["rita"], ended_at=NOW - DAY) for _ in range(2))
            before = platform_review(conn, w, "s0")
        stop, thread, lines = _loop(engine, interval=0.5)
        try:
            assert _wait_until(lambda: review(engine, before)["rules_applied_at"] is not None, 10)
            cluster.stop()
            assert _wait_until(lambda: any("run failed" in line for line in lines), 10)
            assert thread.is_alive()
            cluster.start()
            with engine.begin() as conn:
                after = platform_review(conn, w, "s1")
            assert _wait_until(lambda: review(engine, after)["rules_applied_at"] is not None, 15)
        finally:
            stop.set()
            thread.join(5)
        assert [a["entity_id"] for a in audit_rows(engine)] == [str(before), str(after)]
        engine.dispose()


def test_decided_reviews_keep_their_status(engine, world):
    with engine.begin() as conn:
        hidden = platform_review(
            conn,
            world,
            "s0",
            status="hidden",
            hidden_reason="off_topic",
            text="Visit www.example.com",
            created_at=NOW - dt.timedelta(minutes=2),
        )
        moderated = platform_review(
            conn,
            world,
            "s1",
            status="published",
            moderated_at=NOW,
            moderated_by="sam",
            text="Email me at a@b.co",
            created_at=NOW - dt.timedelta(minutes=1),
        )
    assert intake.run_once(engine).outcomes["reviews"] == {"hidden": 1, "published": 1}
    assert (review(engine, hidden)["status"], review(engine, hidden)["flags"]) == ("hidden", ["link_or_promo"])
    assert (review(engine, moderated)["status"], review(engine, moderated)["flags"]) == ("published", ["personal_data"])
    assert aggregates(engine, world["rita"]) == (5.0, 1)


def test_a_row_the_database_refuses_waits_and_the_run_goes_on(engine, world, monkeypatch):
    with engine.begin() as conn:
        refused = platform_review(conn, world, "s0", created_at=NOW - dt.timedelta(minutes=2))
        fine = platform_review(conn, world, "s1", created_at=NOW - dt.timedelta(minutes=1))
    real = intake.apply_review_rules

    def refusing(conn, review_id, actor):
        if review_id == refused:
            raise sa.exc.DataError("UPDATE mechanic_reviews", {}, Exception("value out of range"))
        return real(conn, review_id, actor)

    monkeypatch.setattr(intake, "apply_review_rules", refusing)
    assert intake.run_once(engine).outcomes["reviews"] == {"failed": 1, "published": 1}
    assert review(engine, refused)["rules_applied_at"] is None and review(engine, fine)["status"] == "published"
    monkeypatch.setattr(intake, "apply_review_rules", real)
    assert intake.run_once(engine).outcomes["reviews"] == {"published": 1}  # tried again, once
