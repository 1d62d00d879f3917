"""The Mechanic calendars page with streamlit's AppTest, on both databases: the editing flow
(an invalid row is rejected with its message and nothing is written, a valid change is
previewed and saved), the other views, and read-only use."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from dashboard.core import schema as s
from dashboard.core.auth import Actor
from dashboard.core.period import Period
from dashboard.domain.calendars.edits import save_weekly_slots, set_base_price
from dashboard.domain.calendars.slots import weekly_slots as weekly_slots_of
from dashboard.ui import components as ui
from tests.factories import add_mechanic, add_session, add_staff, staff_fixture, weekly_slot
from tests.page_support import open_any_page

PAGE = Path(__file__).resolve().parents[1] / "pages" / "calendars.py"
MANAGER = Actor("manager@example.com", "manager", "Maya Manager")
SUPPORT = Actor("support@example.com", "support", "Sam Support")
staff = staff_fixture(MANAGER, SUPPORT)


@pytest.fixture
def calendar(engine, monkeypatch, tmp_path):
    monkeypatch.setenv("PITWALL_SECRETS", str(tmp_path / "absent.toml"))
    ui.clear_query_cache()  # PostgreSQL tests share one database URL, and with it the query cache
    with engine.begin() as conn:
        mechanic = add_mechanic(conn, "Mia Berlin", timezone="Europe/Berlin")
        add_mechanic(conn, "Noah York", timezone="America/New_York")
        add_session(
            conn,
            mechanic,
            mechanic,
            "scheduled",
            scheduled_at=dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1),
            price_cents=4999,
        )
    save_weekly_slots(engine, MANAGER, mechanic, [weekly_slot(day, "09:00", "17:00") for day in range(7)])
    set_base_price(engine, MANAGER, "video", "49.99")
    return engine, str(mechanic)


def open_page(engine, actor: Actor, mechanic: str | None = None, view: str | None = None) -> AppTest:
    today = dt.date.today()
    at = open_any_page(engine, Period(today, today, "Europe/Berlin"), actor, PAGE)
    if mechanic:
        at.selectbox(key="calendar_mechanic").set_value(mechanic)
    if view:
        at.segmented_control(key="calendar_view").set_value(view)
    return at.run()


def slots(engine, mechanic) -> list[tuple]:
    sl = s.mechanic_availability_slots
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(sl.c.day_of_week, sl.c.start_time, sl.c.end_time, sl.c.price_multiplier)
                .where(sl.c.mechanic_id == mechanic)
                .order_by(sl.c.day_of_week, sl.c.start_time)
            )
        ]


def edit(at: AppTest, mechanic: str, edited=None, added=None) -> AppTest:
    at.session_state[f"slots_{mechanic}_0"] = {
        "edited_rows": edited or {},
        "added_rows": added or [],
        "deleted_rows": [],
    }
    return at.run()


def test_editing_flow_rejects_an_invalid_row_and_saves_a_valid_one(calendar):
    engine, mechanic = calendar
    at = open_page(engine, MANAGER, mechanic, "Weekly slots")
    assert not at.exception
    assert len(at.data_editor) == 1 and len(at.data_editor[0].value) == 7
    before = slots(engine, mechanic)

    # Monday (row 2, after Sunday) gets an overlapping extra slot and a multiplier out of range
    at = edit(
        at,
        mechanic,
        edited={1: {"multiplier": 3.5}},
        added=[{"day": "Monday", "start": "16:00", "end": "18:00", "available": True, "multiplier": 1.0}],
    )
    assert not at.exception
    assert "2 rows need fixing" in at.error[0].value
    problems = at.dataframe[-1].value
    assert problems.Row.tolist() == [2, 8]
    assert "from 0.50 to 3.00" in problems.Problem[0] and "Overlaps Monday 16:00-18:00 (row 8)" in problems.Problem[0]
    assert "Save weekly slots" not in [button.label for button in at.button]
    assert slots(engine, mechanic) == before

    # a valid change: Monday at 1.50x and an evening slot; previewed, then saved
    at = edit(
        at,
        mechanic,
        edited={1: {"multiplier": 1.5}},
        added=[{"day": "Monday", "start": "17:00", "end": "19:00", "available": True, "multiplier": 2.0}],
    )
    assert not at.exception and not at.error
    preview = at.dataframe[-1].value
    assert len(preview) == 14
    monday = preview[preview.day.str.startswith("Mon")].iloc[-1]  # a whole Monday ahead: 16 starts, 4 more after
    assert (monday.now, monday.starts, monday.prices) == (16, 20, "$74.99–$99.98")
    save = next(button for button in at.button if button.label == "Save weekly slots")
    assert not save.disabled
    save.click().run()
    assert not at.exception and not at.error
    assert slots(engine, mechanic)[1:3] == [
        (1, dt.time(9), dt.time(17), Decimal("1.50")),
        (1, dt.time(17), dt.time(19), Decimal("2.00")),
    ]
    assert len(at.data_editor[0].value) == 8  # a fresh editor shows the saved schedule
    with engine.connect() as conn:
        actions = conn.execute(
            sa.select(s.audit_log.c.action, s.audit_log.c.actor_email).where(s.audit_log.c.actor_email == MANAGER.email)
        ).all()
    assert sorted(actions)[-2:] == [("slot.create", MANAGER.email), ("slot.update", MANAGER.email)]


@pytest.mark.parametrize(
    "view", ["Week", "Heatmaps", "Weekly slots", "Days off", "Peak pricing", "Base prices", "Audit trail"]
)
def test_every_view_renders_for_one_mechanic_and_for_all(calendar, view):
    engine, mechanic = calendar
    for who in (mechanic, "all"):
        at = open_page(engine, MANAGER, who, view)
        assert not at.exception, (view, who)
        assert [title.value for title in at.title] == ["Mechanic calendars & pricing"]


def test_support_reads_but_cannot_edit(calendar):
    engine, mechanic = calendar
    at = open_page(engine, SUPPORT, mechanic, "Weekly slots")
    assert "Read-only" in at.info[0].value
    assert at.data_editor[0].proto.disabled or at.data_editor[0].editing_mode == "fixed"
    assert not [button for button in at.button if button.label == "Save weekly slots"]
    at = open_page(engine, SUPPORT, mechanic, "Base prices")
    assert not at.number_input and not at.button


def test_base_price_with_bad_input_shows_the_error(calendar):
    engine, mechanic = calendar
    at = open_page(engine, MANAGER, None, "Base prices")
    at.number_input(key="price_chat_0").set_value(0.0)
    next(b for b in at.button if b.key == "save_price_chat").click().run()
    assert "above $0.00" in at.error[0].value.replace("\\", "")  # shown as escaped Markdown
    at.number_input(key="price_chat_0").set_value(19.5)
    next(b for b in at.button if b.key == "save_price_chat").click().run()
    assert not at.error
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(s.session_base_prices.c.price_cents).where(s.session_base_prices.c.session_type == "chat")
            ).scalar()
            == 1950
        )


def test_a_mechanic_with_an_unknown_timezone_is_named_and_can_be_fixed(calendar):
    engine, _ = calendar
    with engine.begin() as conn:
        lost = str(add_mechanic(conn, "<b>Dee</b> *Mars*", timezone="Mars/Olympus_Mons"))
    save_weekly_slots(engine, MANAGER, lost, [weekly_slot(1, "09:00", "12:00")])
    for view in ("Week", "Heatmaps", "Weekly slots", "Days off"):
        at = open_page(engine, MANAGER, lost, view)
        assert not at.exception, view
        assert "<b>Dee</b> *Mars*" in at.warning[0].value.replace("\\", "")  # escaped, not rendered
    assert "not an IANA name" in at.warning[1].value
    at = open_page(engine, MANAGER, lost, "Weekly slots")
    at.selectbox(key=f"calendar_tz_{lost}_0").set_value("Europe/Paris").run()
    next(button for button in at.button if button.label == "Save timezone").click().run()
    assert not at.exception and not at.warning
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(s.mechanics.c.timezone).where(s.mechanics.c.display_name.like("%Dee%"))).scalar()
            == "Europe/Paris"
        )


def test_a_save_from_an_out_of_date_view_keeps_the_slot_another_manager_added(calendar):
    engine, mechanic = calendar
    at = open_page(engine, MANAGER, mechanic, "Weekly slots")
    seen = slots(engine, mechanic)
    # meanwhile another manager adds a Monday evening slot
    other = Actor("mo@example.com", "manager")
    add_staff(engine, other)
    with engine.connect() as conn:
        current = [
            {
                "id": str(slot.id),
                "day_of_week": slot.day_of_week,
                "start_time": slot.start,
                "end_time": slot.end,
                "price_multiplier": slot.multiplier,
            }
            for slot in weekly_slots_of(conn, [uuid.UUID(mechanic)])[uuid.UUID(mechanic)]
        ]
    save_weekly_slots(engine, other, mechanic, [*current, weekly_slot(1, "18:00", "20:00")])

    at = edit(at, mechanic, edited={1: {"multiplier": 1.5}})  # this view does not show the new slot
    next(button for button in at.button if button.label == "Save weekly slots").click().run()
    assert not at.exception
    assert "changed by mo@example.com at" in at.error[0].value.replace("\\", "").replace("\u2060", "")
    assert len(slots(engine, mechanic)) == len(seen) + 1  # the other manager's slot is still there
    assert len(at.data_editor[0].value) == len(seen) + 1  # and the fresh editor shows it
