"""What the browser journeys share: one small embedded demo database for the whole run with
the rows they act on (``build_demo``), the app served as a role on a copy of it (the
``journey_app`` fixture of conftest), and the steps' helpers (``step``, ``choose``).

The demo runs as each role through ``PITWALL_DEMO_ROLE`` (honoured on the embedded database
only); every write still goes through the server-side role checks. A journey that needs rows
of its own writes them on its copy before the app starts (``journey_app(role, prepare=...)``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dashboard.core import schema as s
from dashboard.core.db import make_engine
from dashboard.domain.calendars.edits import save_weekly_slots
from dashboard.domain.calendars.slots import DAY_NAMES, day_of_week
from dashboard.domain.followups import create_follow_up
from dashboard.domain.reviews import submit_review
from dashboard.tools.demo.load import load_if_empty
from dashboard.ui import access
from dashboard.ui.components import fmt_money
from tests.browser_support import (
    DEMO_SCALE,
    assert_no_exception,
    require_chromium,
    screenshot,
    settle,
)
from tests.factories import add_mechanic, add_session, add_user

QUESTION = "Journey check: is the squeal from the front pads normal after the fix?"
REVIEW_TEXT = "Sorted my brakes in minutes. Call me on 0176 1234 5678 if you want the details of the fix."


@dataclass(frozen=True)
class Demo:
    """The template database and the rows the journeys act on."""

    path: object
    review_id: str  # a waiting review flagged for personal data
    review_mechanic_id: str
    review_text: str
    follow_up_id: str  # an open follow-up the test asked
    customer_email: str
    customer_name: str
    slot_mechanic: str  # "name · zone" as the calendars page lists them
    slot_day: str  # e.g. "Sun": the weekday of that mechanic's first weekly slot
    doubled_price: str  # the video base price at multiplier 2.00


JOURNEY_TIMEZONE = "America/New_York"


def _journey_rows(engine) -> dict:
    """Rows the journeys act on, written on top of the demo so no journey depends on what a
    day's demo happens to hold: a mechanic with one weekly slot in the coming days, and a
    customer with two sessions with that mechanic that ended yesterday."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with engine.begin() as conn:
        customer = add_user(conn, name=f"Journey Customer {uuid.uuid4().hex[:6]}")
        mechanic = add_mechanic(conn, name=f"Journey Mechanic {uuid.uuid4().hex[:6]}", timezone=JOURNEY_TIMEZONE)
        ended = {
            "ended_at": now - dt.timedelta(days=1),
            "started_at": now - dt.timedelta(days=1, hours=1),
            "scheduled_at": now - dt.timedelta(days=1, hours=1),
        }
        reviewed = add_session(conn, customer, mechanic, **ended)
        asked = add_session(conn, customer, mechanic, **ended)
        email, name = conn.execute(
            sa.select(s.users.c.email, s.profiles.c.full_name)
            .join(s.profiles, s.profiles.c.id == s.users.c.id)
            .where(s.users.c.id == customer)
        ).one()
    slot_day = day_of_week(now.astimezone(ZoneInfo(JOURNEY_TIMEZONE)).date() + dt.timedelta(days=3))
    save_weekly_slots(
        engine,
        access.demo_actor("manager"),
        mechanic,
        [{"day_of_week": slot_day, "start_time": "08:00", "end_time": "20:00", "price_multiplier": "1.00"}],
    )
    return {
        "customer": customer,
        "mechanic": mechanic,
        "reviewed": reviewed,
        "asked": asked,
        "email": email,
        "name": name,
        "slot_day": slot_day,
    }


def _oldest_waiting(engine, review_id) -> None:
    """Make ``review_id`` the review that has waited longest, so it opens the moderation queue."""
    r = s.mechanic_reviews
    with engine.begin() as conn:
        oldest = conn.execute(sa.select(sa.func.min(r.c.created_at)).where(r.c.status == "pending")).scalar_one()
        conn.execute(r.update().where(r.c.id == review_id).values(created_at=oldest - dt.timedelta(hours=1)))


def build_demo(path) -> Demo:
    """The demo database at ``path`` (each app gets a copy), with the rows the journeys act on."""
    require_chromium()
    engine = make_engine(f"duckdb:///{path}")
    load_if_empty(engine, scale=float(DEMO_SCALE), progress=False)
    rows = _journey_rows(engine)
    review = submit_review(
        engine, session_id=rows["reviewed"], customer_id=rows["customer"], rating=4, text=REVIEW_TEXT
    )
    assert review.status == "pending" and "personal_data" in review.flags, review
    _oldest_waiting(engine, review.id)
    follow_up = create_follow_up(
        engine,
        access.demo_actor("support"),
        parent_session_id=rows["asked"],
        customer_id=rows["customer"],
        follow_up_type="quick_question",
        text=QUESTION,
    )
    with engine.connect() as conn:
        video = conn.execute(
            sa.select(s.session_base_prices.c.price_cents).where(s.session_base_prices.c.session_type == "video")
        ).scalar_one()
        mechanic_name = conn.execute(
            sa.select(s.mechanics.c.display_name).where(s.mechanics.c.user_id == rows["mechanic"])
        ).scalar_one()
    engine.dispose()
    return Demo(
        path,
        str(review.id),
        str(rows["mechanic"]),
        REVIEW_TEXT,
        str(follow_up.id),
        rows["email"],
        rows["name"],
        f"{mechanic_name} · {JOURNEY_TIMEZONE}",
        DAY_NAMES[rows["slot_day"]][:3],
        fmt_money(video * 2),
    )


def step(page, role: str, number: int, name: str) -> None:
    """After each step: settled, no exception, a screenshot."""
    settle(page)
    assert_no_exception(page, f"{role} {name}")
    screenshot(page, f"journey-{role}-{number}-{name}")


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label``, typing it to filter the list."""
    box = page.get_by_role("combobox", name=label, exact=True)
    box.scroll_into_view_if_needed()
    box.click()
    box.fill(option)
    page.get_by_role("option", name=option, exact=True).click()
    settle(page)


def edit_cell(page, grid, row: int, column: int, value: str) -> None:
    """Type ``value`` into the text cell of ``grid`` (an editable ``stDataFrame``, drawn on a canvas)
    at ``row`` and ``column`` (0 = the first data column): select the row's first cell, move right
    with the arrow keys and start typing, which opens the cell's editor.

    Each move is checked on the grid's accessible cells before the next: on a busy machine a key can
    land before the click has selected a cell, and a key typed on a checkbox cell ticks it. The slot
    editor draws its grid afresh after every edit the server takes, so the edit counts once the grid
    typed into is gone (settling before then proves nothing: the run may not have started). A
    dropped click, key or edit is tried again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    def selected(col: int) -> None:
        cell = grid.get_by_test_id(f"glide-cell-{col + 1}-{row}")  # the grid's row markers are column 0
        expect(cell).to_have_attribute("aria-selected", "true", timeout=3000)

    grid.locator("tbody tr").first.wait_for(state="attached")  # the grid has drawn its rows
    editor = page.locator("[id^=gdg-overlay-] textarea, [id^=gdg-overlay-] input").first
    for _ in range(5):
        typed_into = grid.element_handle()
        box = typed_into.bounding_box()
        try:
            page.mouse.click(box["x"] + 70, box["y"] + 52 + 35 * row)
            selected(0)
            for col in range(1, column + 1):
                page.keyboard.press("ArrowRight")
                selected(col)
            page.keyboard.type(value[:1])
            editor.wait_for(timeout=3000)
            editor.fill(value)
            editor.press("Enter")
            page.wait_for_function("grid => !grid.isConnected", arg=typed_into, timeout=15_000)
            break
        except (AssertionError, PlaywrightTimeout):
            page.keyboard.press("Escape")
    else:
        raise AssertionError(f"the grid never took {value!r} in row {row}, column {column}")
    settle(page)


def open_link(page, x: float, y: float) -> None:
    """Click the link drawn in a table cell at ``x``, ``y`` (the grid is a canvas); link cells
    open in a new tab, ``page.context.pages[-1]`` once this returns. The pointer rests on the
    cell first: the grid takes a click as a link's only over a link it has hovered."""
    with page.context.expect_page():
        page.mouse.move(x - 4, y)
        page.mouse.move(x, y, steps=4)
        page.mouse.click(x, y)
