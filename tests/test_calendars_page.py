"""The Mechanic calendars page with streamlit's AppTest, on both databases: the editing flow
(an invalid row is rejected with its message and nothing is written, a valid change is
previewed and saved), the other views, and read-only use."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from dashboard.core import schema as s
from dashboard.core.audit import record_audit
from dashboard.core.auth import Actor
from dashboard.core.period import Period, today_in
from dashboard.domain.calendars.edits import BASE_PRICE, save_weekly_slots, set_base_price
from dashboard.domain.calendars.slots import weekly_slots as weekly_slots_of
from dashboard.ui import components as ui
from tests.factories import HOSTILE, add_mechanic, add_session, add_staff, staff_fixture, weekly_slot
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


def edit(at: AppTest, mechanic: str, edited=None, added=None, deleted=None) -> AppTest:
    """What the grid on screen sends when the manager edits cells, adds or deletes rows."""
    at.session_state[at.session_state["calendar_editor_key"]] = {
        "edited_rows": edited or {},
        "added_rows": added or [],
        "deleted_rows": deleted or [],
    }
    return at.run()


def grid(at: AppTest):
    """The slot editor's rows as drawn: the editable cells, the prices beside them and each row's problem."""
    return at.data_editor[0].value


def test_editing_flow_marks_the_bad_cells_and_saves_a_valid_change(calendar):
    engine, mechanic = calendar
    at = open_page(engine, MANAGER, mechanic, "Weekly slots")
    assert not at.exception
    assert len(at.data_editor) == 1 and len(grid(at)) == 7
    assert set(grid(at).video_price) == {"$49.99"} and set(grid(at).problem) == {""}
    assert "chat_price" not in grid(at)  # no base price for chat: no column
    buttons = {button.label: button for button in at.button}
    assert buttons["Save weekly slots"].disabled and buttons["Discard changes"].disabled
    before = slots(engine, mechanic)

    # Monday (row 2, after Sunday) gets an overlapping extra slot and a multiplier out of range
    at = edit(
        at,
        mechanic,
        edited={1: {"multiplier": "3.5"}},
        added=[{"day": "Monday", "start": "16:00", "end": "18:00", "available": True, "multiplier": "1.00"}],
    )
    assert not at.exception
    assert at.error[0].value.startswith("**2 rows need fixing\\.** Nothing is saved until every row is valid. Row 2: ")
    rows = grid(at)
    assert rows.multiplier[1] == "⚠ 3.5" and rows.video_price[1] == "—"  # the bad cell itself, and no price
    assert "Multiplier must be from 0.50 to 3.00, got 3.5." in rows.problem[1]
    assert "Overlaps Monday 16:00-18:00 (row 8)" in rows.problem[1]
    assert rows.problem[7] == "Overlaps Monday 09:00-17:00 (row 2)." and rows.video_price[7] == "$49.99"
    assert rows.problem[0] == "" and len(at.dataframe) == 1  # the grid alone: no problem table, no preview
    assert next(b for b in at.button if b.label == "Save weekly slots").disabled
    assert slots(engine, mechanic) == before

    # fixed in the grid: Monday at 1.50x, the evening slot moved to 17:00-19:00 at 2.00x
    at = edit(
        at,
        mechanic,
        edited={1: {"multiplier": "⚠ 1.5"}, 7: {"start": "17:00:00.000", "end": "19:00", "multiplier": "2"}},
    )
    assert not at.exception and not at.error
    rows = grid(at)
    assert rows.multiplier.tolist()[1:2] + rows.multiplier.tolist()[7:] == ["1.5", "2"]
    assert rows.video_price[1] == "$74.99" and rows.video_price[7] == "$99.98"  # 49.99 x 1.5 = 74.985 -> 74.99
    assert "2 unsaved changes." in [caption.value for caption in at.caption]
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
    assert len(grid(at)) == 8  # a fresh editor shows the saved schedule
    assert "No unsaved changes." in [caption.value for caption in at.caption]
    with engine.connect() as conn:
        actions = conn.execute(
            sa.select(s.audit_log.c.action, s.audit_log.c.actor_email).where(s.audit_log.c.actor_email == MANAGER.email)
        ).all()
    assert sorted(actions)[-2:] == [("slot.create", MANAGER.email), ("slot.update", MANAGER.email)]


def test_discard_brings_back_the_saved_slots(calendar):
    engine, mechanic = calendar
    at = open_page(engine, MANAGER, mechanic, "Weekly slots")
    before = slots(engine, mechanic)
    at = edit(at, mechanic, edited={0: {"multiplier": "2.00"}}, deleted=[6])
    assert len(grid(at)) == 6 and grid(at).video_price[0] == "$99.98"
    discard = next(button for button in at.button if button.label == "Discard changes")
    assert not discard.disabled
    discard.click().run()
    assert not at.exception
    assert len(grid(at)) == 7 and set(grid(at).multiplier) == {"1.00"} and set(grid(at).video_price) == {"$49.99"}
    assert next(b for b in at.button if b.label == "Discard changes").disabled
    assert slots(engine, mechanic) == before


@pytest.mark.parametrize(
    "typed, message",
    [
        ("abc", "Multiplier 'abc' is not a number."),
        ("0.4", "Multiplier must be from 0.50 to 3.00, got 0.4."),
        ("1" * 40, "Multiplier must be from 0.50 to 3.00, got 11111111111111111111."),
        ("1e400", "Multiplier must be from 0.50 to 3.00, got 1e400."),
        ("1.5\x00", "Multiplier '1.5\\x00' is not a number."),
        ("<b>2</b>", "Multiplier '<b>2</b>' is not a number."),
        ("1.255", "Multiplier must be a number with at most two decimals, got 1.255."),
        ("", "Multiplier is required."),
    ],
)
def test_bad_multipliers_are_marked_in_their_cell_and_nothing_is_saved(calendar, typed, message):
    engine, mechanic = calendar
    at = open_page(engine, MANAGER, mechanic, "Weekly slots")
    before = slots(engine, mechanic)
    at = edit(at, mechanic, edited={2: {"multiplier": typed}})
    assert not at.exception
    assert "1 row needs fixing" in at.error[0].value
    rows = grid(at)
    assert rows.multiplier[2].startswith("⚠") and rows.problem[2] == message and rows.video_price[2] == "—"
    assert next(b for b in at.button if b.label == "Save weekly slots").disabled
    assert slots(engine, mechanic) == before


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


def week_cells(at: AppTest):
    """The week grid: hours (index) by days, each cell a price, "Booked" or "—"."""
    return at.dataframe[0].value


def test_the_week_shows_each_open_hour_at_its_price_in_money(calendar):
    engine, mechanic = calendar
    at = open_page(engine, MANAGER, mechanic, "Week")
    for _ in range(2):  # the week after next: only the session written here is in it
        next(button for button in at.button if button.label == "Next week").click().run()
    today = today_in("Europe/Berlin")  # the display timezone's date, as the page reads it
    monday = today + dt.timedelta(days=14 - today.weekday())
    wednesday_ten = dt.datetime.combine(monday + dt.timedelta(days=2), dt.time(10), ZoneInfo("Europe/Berlin"))
    with engine.begin() as conn:
        add_session(conn, uuid.UUID(mechanic), uuid.UUID(mechanic), "scheduled", scheduled_at=wednesday_ten)
    ui.clear_query_cache()
    at.run()
    assert not at.exception
    cells = week_cells(at)
    assert list(cells.index) == [f"{hour:02d}:00" for hour in range(9, 17)]  # Berlin is the display timezone
    assert list(cells.columns)[0] == f"{monday:%a %d %b}" and len(cells.columns) == 7
    wednesday = f"{monday + dt.timedelta(days=2):%a %d %b}"
    assert cells.loc["10:00", wednesday] == "Booked"
    assert (cells.drop(columns=wednesday) == "$49.99").all().all()
    assert cells[wednesday].tolist().count("$49.99") == 7
    assert any("Booked" in caption.value and "not available" in caption.value for caption in at.caption)

    at.segmented_control(key="calendar_week_type").set_value("chat").run()
    assert "No base price is set for chat sessions" in at.info[0].value
    assert week_cells(at).loc["09:00", wednesday] == "Open"


def test_a_link_opens_the_mechanics_calendar_and_the_choice_stays_in_the_url(calendar):
    engine, mechanic = calendar
    today = dt.date.today()
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.session_state["_pitwall_context"] = open_any_page(
        engine, Period(today, today, "Europe/Berlin"), MANAGER, PAGE
    ).session_state["_pitwall_context"]
    at.query_params["mechanic"] = mechanic
    at.run()
    assert not at.exception
    assert at.selectbox(key="calendar_mechanic").value == mechanic
    assert "Mia Berlin's profile](mechanics?mechanic=" in " ".join(c.value for c in at.caption)
    at.selectbox(key="calendar_mechanic").set_value("all").run()
    assert "mechanic" not in at.query_params
    unknown = AppTest.from_file(str(PAGE), default_timeout=60)
    unknown.session_state["_pitwall_context"] = at.session_state["_pitwall_context"]
    unknown.query_params["mechanic"] = "<script>x</script>"
    unknown.query_params["view"] = "<b>peak</b>"
    unknown.run()
    assert not unknown.exception and unknown.selectbox(key="calendar_mechanic").value == "all"
    assert unknown.segmented_control(key="calendar_view").value == "Week"
    home = AppTest.from_file(str(PAGE), default_timeout=60)  # the manager's home links to a view
    home.session_state["_pitwall_context"] = at.session_state["_pitwall_context"]
    home.query_params["view"] = "heatmaps"
    home.run()
    assert not home.exception and home.segmented_control(key="calendar_view").value == "Heatmaps"
    home.segmented_control(key="calendar_view").set_value("Peak pricing").run()
    assert home.query_params["view"] == "peak"


def test_previous_this_and_next_week(calendar):
    engine, mechanic = calendar
    at = open_page(engine, MANAGER, mechanic, "Week")
    today = today_in("Europe/Berlin")
    this_monday = today - dt.timedelta(days=today.weekday())
    press = lambda name: next(b for b in at.button if b.label == name).click().run()  # noqa: E731
    press("Previous week")
    assert week_cells(at).columns[0] == f"{this_monday - dt.timedelta(days=7):%a %d %b}"
    press("Next week")
    press("Next week")
    assert week_cells(at).columns[0] == f"{this_monday + dt.timedelta(days=7):%a %d %b}"
    at.segmented_control(key="calendar_view").set_value("Base prices").run()
    at.segmented_control(key="calendar_view").set_value("Week").run()  # the week is kept across views
    assert week_cells(at).columns[0] == f"{this_monday + dt.timedelta(days=7):%a %d %b}"
    press("This week")
    assert week_cells(at).columns[0] == f"{this_monday:%a %d %b}"


def test_the_audit_trail_speaks_in_labels(calendar):
    engine, mechanic = calendar
    with engine.begin() as conn:
        record_audit(
            conn, Actor("migration", "admin"), "base_price.set", BASE_PRICE, "chat", None, {"price_cents": 1999}
        )
    at = open_page(engine, MANAGER, "all", "Audit trail")
    assert not at.exception
    trail = at.dataframe[0].value
    assert list(trail.columns) == ["When (Europe/Berlin)", "Who", "What", "Mechanic or price", "Change", "Note"]
    assert trail.Who.tolist()[0] == "Database upgrade" and set(trail.Who[1:]) == {MANAGER.email}
    assert set(trail.What) == {"Base price set", "Weekly slot added"}
    assert trail["Mechanic or price"].tolist()[0] == "calendars#Chat sessions"
    assert f"mechanics?mechanic={mechanic}#Mia Berlin" in trail["Mechanic or price"].tolist()
    assert trail.Change.tolist()[0] == "$19.99"
    assert not any("slot.create" in str(v) or "migration" in str(v) for v in trail.to_numpy().ravel())


@pytest.mark.parametrize("reason", [HOSTILE[0], HOSTILE[-1]])
def test_a_reason_in_html_or_markdown_stays_text(calendar, reason):
    engine, mechanic = calendar
    at = open_page(engine, MANAGER, mechanic, "Days off")
    at.text_input(key="override_reason_0").set_value(reason).run()
    next(button for button in at.button if button.label == "Save override").click().run()
    assert not at.exception and not at.error
    assert at.dataframe[0].value.Reason.tolist() == [reason.strip()]  # a table cell: shown as text
    at.segmented_control(key="calendar_view").set_value("Audit trail").run()
    assert at.dataframe[0].value.Change.tolist()[0].endswith(f"time off: {reason.strip()}")


def test_a_reason_with_a_nul_character_is_refused(calendar):
    engine, mechanic = calendar
    at = open_page(engine, MANAGER, mechanic, "Days off")
    at.text_input(key="override_reason_0").set_value("Holiday\x00").run()
    assert "contains a NUL character" in at.info[0].value
    assert not [button for button in at.button if button.label == "Save override"]
