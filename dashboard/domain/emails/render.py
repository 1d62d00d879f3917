"""Rendering: session facts -> subject, hidden preheader, HTML and plain-text parts.

Each email is two Jinja templates under ``templates/``: ``<milestone>.txt``
(the blocks ``subject``, ``preheader`` and the text body) and
``<milestone>.html`` (the HTML body). HTML templates are autoescaped; the
HTML is then passed through css-inline, which moves the stylesheet into
``style`` attributes and keeps the ``@media`` rules (narrow screens, dark mode).

Text that customers and mechanics wrote reaches the templates through
``clean``: control and bidirectional-override characters are removed, so it
cannot hide or reorder text in either part; it is cut to ``NAME_MAX``
characters (names, addresses, vehicle, specialties) or ``TEXT_MAX`` (the issue
and the summary); the subject and preheader are folded to one line, so no text
can add a header line. In HTML, autoescape turns markup into visible text, and
the layout breaks long words, so no text can widen the 600 px column.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import css_inline
import jinja2
from markupsafe import Markup, escape

from dashboard.core.settings import ROOT
from dashboard.domain.emails.due import PROBLEMS
from dashboard.domain.emails.settings import EmailSettings

TEMPLATES = Path(__file__).resolve().parent / "templates"
THEME_FILE = ROOT / ".streamlit" / "config.toml"
FONT = "-apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"  # no quotes: autoescape would break them
SUBJECT_MAX = 120
PREHEADER_MAX = 150
NAME_MAX = 80  # a name, an address, a vehicle part, a specialty
TEXT_MAX = 2000  # the issue a customer wrote, each part of a summary
CATEGORY_LABELS = {"hvac": "Heating and air conditioning"}
PROBLEM_TITLES = {
    "no_mechanic": "no mechanic accepted",
    "mechanic_no_show": "mechanic has not started",
    "live_without_mechanic": "live without a mechanic",
}
_HEX = re.compile(r"^#[0-9A-Fa-f]{6}$")
# Bidirectional overrides and isolates: they can make text read differently from what it is.
_BIDI = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))


@dataclass(frozen=True)
class Brand:
    """The app theme's colours (``.streamlit/config.toml``), reused by the emails."""

    name: str
    primary: str = "#C2410C"
    text: str = "#1F2937"
    link: str = "#9A3412"
    card: str = "#FFFFFF"
    canvas: str = "#F6F5F3"
    border: str = "#E5E2DD"
    muted: str = "#5B6472"
    font: str = FONT


def load_brand(name: str, theme_file: Path = THEME_FILE) -> Brand:
    theme = tomllib.loads(theme_file.read_text()).get("theme", {}) if theme_file.exists() else {}
    keys = {
        "primary": "primaryColor",
        "text": "textColor",
        "link": "linkColor",
        "card": "backgroundColor",
        "canvas": "secondaryBackgroundColor",
        "border": "borderColor",
    }
    colours = {field: theme[key] for field, key in keys.items() if _HEX.match(str(theme.get(key, "")))}
    return Brand(name=name, **colours)


@dataclass(frozen=True)
class Rendered:
    subject: str
    preheader: str
    html: str
    text: str


def clean(value: object, limit: int = NAME_MAX) -> str | None:
    """User text made safe for both parts: no control or bidi characters, ``\\n`` line ends,
    at most ``limit`` characters (cut with an ellipsis)."""
    if value is None:
        return None
    text = str(value).replace("\r\n", "\n").replace("\r", "\n").translate(_BIDI)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc").strip()
    return _cut(text, limit) or None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def one_line(text: str, limit: int) -> str:
    return _cut(" ".join(text.split()), limit)


def _lines(text: str) -> Markup:
    """HTML filter: escaped lines joined with ``<br>``."""
    return Markup("<br>\n").join(escape(line) for line in text.split("\n"))


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(["html"], default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["lines"] = _lines
_inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def render(milestone: str, context: Mapping) -> Rendered:
    """The email of ``milestone`` for ``context`` (see ``email_context``)."""
    text_template = _env.get_template(f"{milestone}.txt")

    def block(name: str) -> str:
        return "".join(text_template.blocks[name](text_template.new_context(dict(context))))

    subject = one_line(block("subject"), SUBJECT_MAX)
    preheader = one_line(block("preheader"), PREHEADER_MAX)
    html = _env.get_template(f"{milestone}.html").render(context, subject=subject, preheader=preheader)
    text = re.sub(r"\n{3,}", "\n\n", text_template.render(context)).strip() + "\n"
    return Rendered(subject, preheader, _inliner.inline(html), text)


# --- session facts -> template context ---------------------------------------------


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def format_time(moment: dt.datetime | None, tz: str | None) -> str | None:
    """E.g. ``Tuesday 3 March 2026 at 14:30 (Europe/Berlin)``."""
    if moment is None:
        return None
    zone = _zone(tz)
    local = moment.astimezone(zone)
    return f"{local:%A} {local.day} {local:%B %Y} at {local:%H:%M} ({zone.key})"


def format_money(cents: int | None) -> str | None:
    return None if cents is None else f"${cents / 100:,.2f}"


def _duration(start: dt.datetime | None, end: dt.datetime | None) -> str | None:
    if start is None or end is None or end < start:
        return None
    minutes = round((end - start).total_seconds() / 60)
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _vehicle(facts: Mapping) -> str | None:
    parts = [clean(facts.get(key)) for key in ("vehicle_year", "vehicle_make", "vehicle_model")]
    return " ".join(part for part in parts if part) or None


def _rating(avg: Decimal | float | None, reviews: int | None) -> str | None:
    if not reviews or avg is None:
        return None
    return f"{float(avg):.1f} out of 5 from {reviews:,} review{'s' if reviews != 1 else ''}"


def email_context(milestone: str, facts: Mapping, settings: EmailSettings, brand: Brand) -> dict:
    """Everything a template reads, from one row of ``due.facts_select``.

    Every key is always present (None when the fact is missing), so every template
    renders for any session; templates leave out what is None.
    """
    session_id = str(facts["session_id"])
    session_url = f"{settings.app_url}/sessions/{session_id}"
    customer_name = clean(facts.get("customer_name"))
    tz = {"mechanic_nudge": facts.get("mechanic_timezone"), "support_alert": "UTC"}.get(
        milestone, facts.get("customer_timezone")
    )
    specialties = [clean(item) for item in facts.get("specialties") or []]
    years = facts.get("years_experience")
    category = facts.get("category")
    session_type = facts.get("session_type")
    problem_code = facts.get("problem")
    return {
        "brand": brand,
        "support_email": settings.support_email,
        "session_id": session_id,
        "status": facts.get("status"),
        "session_url": session_url,
        "join_url": f"{session_url}/join",
        "review_url": f"{session_url}/review",
        "files_url": f"{session_url}/files" if facts.get("file_count") else None,
        "greeting_name": customer_name.split()[0] if customer_name else "there",
        "customer_display": customer_name,
        "customer_email": clean(facts.get("customer_email")),
        "mechanic_name": clean(facts.get("mechanic_name")),
        "mechanic_email": clean(facts.get("mechanic_email")),
        "specialties": ", ".join(item for item in specialties if item) or None,
        "rating": _rating(facts.get("avg_rating"), facts.get("total_reviews")),
        "experience": f"{years} year{'s' if years != 1 else ''} of experience" if years is not None else None,
        "scheduled": format_time(facts.get("scheduled_at"), tz),
        "vehicle": _vehicle(facts),
        "category": CATEGORY_LABELS.get(category, category.capitalize()) if category else None,
        "issue": clean(facts.get("description"), TEXT_MAX),
        "session_type": {"video": "video call", "chat": "chat"}.get(session_type),
        "price": format_money(facts.get("price_cents")),
        "duration": _duration(facts.get("started_at"), facts.get("ended_at")),
        "findings": clean(facts.get("findings"), TEXT_MAX),
        "steps_taken": clean(facts.get("steps_taken"), TEXT_MAX),
        "parts_needed": clean(facts.get("parts_needed"), TEXT_MAX),
        "next_steps": clean(facts.get("next_steps"), TEXT_MAX),
        "problem": PROBLEMS.get(problem_code),
        "problem_title": PROBLEM_TITLES.get(problem_code, "resolved"),
    }


def sample_facts(now: dt.datetime) -> dict:
    """A realistic session for template previews."""
    scheduled = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=2)
    return {
        "session_id": "3f1c2a9e-5b7d-4e21-9a0c-7d2b8e6f4a10",
        "status": "completed",
        "session_type": "video",
        "price_cents": 4900,
        "file_count": 3,
        "created_at": now - dt.timedelta(days=1),
        "scheduled_at": scheduled,
        "accepted_at": now - dt.timedelta(hours=20),
        "started_at": scheduled,
        "ended_at": scheduled + dt.timedelta(minutes=38),
        "summary_submitted_at": scheduled + dt.timedelta(hours=1),
        "customer_email": "jordan.lee@example.com",
        "customer_name": "Jordan Lee",
        "customer_timezone": "America/Chicago",
        "opted_out": False,
        "mechanic_name": "Priya Natarajan",
        "mechanic_email": "priya@example.com",
        "mechanic_timezone": "Europe/London",
        "specialties": ["brakes", "electrical", "diagnostics"],
        "avg_rating": Decimal("4.86"),
        "total_reviews": 212,
        "years_experience": 14,
        "vehicle_year": 2017,
        "vehicle_make": "Honda",
        "vehicle_model": "Civic",
        "category": "brakes",
        "description": "Grinding noise when braking at low speed.\nStarted last week, worse in the morning.",
        "findings": "Front pads worn to the backing plate; rotors scored.",
        "steps_taken": "Walked through a visual check of both front wheels over video.",
        "parts_needed": "Front brake pads (pair)\nFront rotors (pair)",
        "next_steps": "Stop driving long distances and book a pad and rotor replacement this week.",
        "problem": "mechanic_no_show",
        "nudge_due": True,
    }
