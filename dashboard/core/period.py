"""The period every page filters on: whole days in the viewer's display timezone.

A period runs from the local midnight that starts ``start`` to the local
midnight that ends ``end`` (both days included). ``bounds()`` turns those two
midnights into UTC instants, so queries compare plain ``timestamptz`` columns
with ``>= start AND < end`` (index-friendly, the same on PostgreSQL and
DuckDB) while the day boundaries still follow the display timezone, also
across daylight-saving changes. The URL keeps a period as ``from``, ``to``
(ISO dates) and ``tz`` (an IANA name) so a view can be shared, and a relative
choice (``preset``: "Last 30 days", "This month", ...) as its name, so a shared link
to "the last 30 days" still means the last 30 days on the day it is opened.

Presets count whole days up to today in the period's timezone (``preset_range``):
``today``; ``last_7_days``, ``last_30_days``, ``last_90_days`` (today and the days before);
``this_month`` (from the 1st to today); ``last_month`` (the whole calendar month before).
``custom`` is a fixed pair of dates.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

DEFAULT_DAYS = 30
MAX_DAYS = 366
DEFAULT_TZ = "UTC"
EARLIEST = dt.date(2000, 1, 1)

CUSTOM = "custom"
PRESETS = {
    "today": "Today",
    "last_7_days": "Last 7 days",
    "last_30_days": "Last 30 days",
    "last_90_days": "Last 90 days",
    "this_month": "This month",
    "last_month": "Last month",
    CUSTOM: "Custom",
}
DEFAULT_PRESET = "last_30_days"
_LAST_DAYS = {"today": 1, "last_7_days": 7, "last_30_days": DEFAULT_DAYS, "last_90_days": 90}


@dataclass(frozen=True)
class Period:
    start: dt.date  # first day, included
    end: dt.date  # last day, included
    tz: str = DEFAULT_TZ  # IANA name the days are counted in
    # How it was chosen (a key of PRESETS): not part of its identity, two periods of the
    # same days are equal (and share cached query results) however they were chosen.
    preset: str = field(default=CUSTOM, compare=False)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """The period as a half-open range of UTC instants [start, end)."""
        zone = ZoneInfo(self.tz)

        def midnight(day: dt.date) -> dt.datetime:
            return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)

        return midnight(self.start), midnight(self.end + dt.timedelta(days=1))

    def previous(self) -> Period:
        """The period of equal length that ends the day before this one starts."""
        length = dt.timedelta(days=self.days)
        return Period(self.start - length, self.end - length, self.tz)

    def to_params(self) -> dict[str, str]:
        """The URL's ``from``, ``to``, ``tz``, and ``preset`` when the period is relative."""
        params = {"from": self.start.isoformat(), "to": self.end.isoformat(), "tz": self.tz}
        if self.preset != CUSTOM:
            params["preset"] = self.preset
        return params

    @property
    def span(self) -> str:
        """The days, e.g. ``01 Mar 2024 – 10 Mar 2024`` (one date for a single day)."""
        if self.start == self.end:
            return f"{self.start:%d %b %Y}"
        return f"{self.start:%d %b %Y} – {self.end:%d %b %Y}"

    @property
    def label(self) -> str:
        """The period as people name it: "today", "the last 30 days", "this month", the month
        for last month ("November 2026"), or its days ("01 Mar 2024 – 10 Mar 2024")."""
        if self.preset == CUSTOM:
            return self.span
        if self.preset == "last_month":
            return f"{self.start:%B %Y}"
        name = PRESETS[self.preset].lower()
        return name if self.preset in ("today", "this_month") else f"the {name}"

    @property
    def scope(self) -> str:
        """What a number of the period covers: "today", "this month", else "in <label>"."""
        return self.label if self.preset in ("today", "this_month") else f"in {self.label}"

    def includes_today(self, today: dt.date | None = None) -> bool:
        """True while the period is not over yet (its last day is today or later)."""
        return self.end >= (today or today_in(self.tz))


@lru_cache(maxsize=1)
def timezones() -> tuple[str, ...]:
    """Every IANA timezone name, UTC first."""
    return (DEFAULT_TZ, *sorted(available_timezones() - {DEFAULT_TZ}))


def today_in(tz: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(tz)).date()


def latest_allowed(today: dt.date) -> dt.date:
    """The latest day a period may reach (a year ahead, for schedules)."""
    return today + dt.timedelta(days=MAX_DAYS)


def preset_range(preset: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of a relative ``preset`` (a key of PRESETS but ``custom``) on ``today``."""
    if preset in _LAST_DAYS:
        return today - dt.timedelta(days=_LAST_DAYS[preset] - 1), today
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        last = today.replace(day=1) - dt.timedelta(days=1)
        return last.replace(day=1), last
    raise ValueError(f"not a relative preset: {preset!r}")


def preset_period(preset: str, tz: str = DEFAULT_TZ, today: dt.date | None = None) -> Period:
    """The period ``preset`` means today in ``tz`` (or on ``today``)."""
    start, end = preset_range(preset, today or today_in(tz))
    return Period(start, end, tz, preset)


def default_period(tz: str = DEFAULT_TZ, today: dt.date | None = None) -> Period:
    """The last 30 days, today included."""
    return preset_period(DEFAULT_PRESET, tz, today)


def period_problem(start: dt.date, end: dt.date) -> str | None:
    """Why ``start``..``end`` is not a usable period, or None if it is."""
    if end < start:
        return f"The end date, {end:%d %b %Y}, is before the start date, {start:%d %b %Y}."
    days = (end - start).days + 1
    if days > MAX_DAYS:
        return f"The period has {days} days; the longest is {MAX_DAYS} days."
    return None


GRAINS = ("day", "week", "month")  # chart buckets; weeks start on Monday


def next_bucket(day: dt.date, grain: str) -> dt.date:
    """The first day of the bucket after the one that starts on ``day``."""
    if grain == "month":
        return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return day + dt.timedelta(days={"day": 1, "week": 7}[grain])


def incomplete_buckets(starts, grain: str, today: dt.date) -> list[bool]:
    """For each bucket starting on a day of ``starts``: True while it is not over on
    ``today`` (its last day is today or later), so a chart can draw it as "so far"."""
    return [next_bucket(start, grain) > today for start in starts]


RANGE_SEPARATOR = " – "
_DAY = r"(\d{4}[-/]\d{1,2}[-/]\d{1,2})"
_RANGE = re.compile(rf"\s*{_DAY}?\s*(?:(?:–|—|-|to|until|\.\.|,)\s*{_DAY}?)?\s*", re.IGNORECASE)
_SPARE = re.compile(rf"\s*{_DAY}\s*(–|—|-|to|until|\.\.|,)\s*", re.IGNORECASE)


def format_range(start: dt.date, end: dt.date) -> str:
    """Two days as the period's text field shows them: ``2024-03-01 – 2024-03-10``."""
    return f"{start.isoformat()}{RANGE_SEPARATOR}{end.isoformat()}"


def parse_range(text: str, today: dt.date) -> tuple[tuple[dt.date, dt.date] | None, str | None]:
    """The first and last day typed in ``text``, or why they are not a usable period:
    ``((start, end), None)`` or ``(None, problem)``.

    Days are ISO dates (``2024-03-01``, also with ``/``); two of them with a dash, "to" or
    ".." between (``2024-03-01 – 2024-03-10``), or one day alone (a one-day period)."""
    match = _RANGE.fullmatch(text or "")
    if not match or not (match.group(1) or match.group(2)):
        return None, "Type the first and the last day as YYYY-MM-DD – YYYY-MM-DD, then press Enter."
    first, last = match.group(1), match.group(2)
    if first is None or (last is None and _SPARE.fullmatch(text)):
        which = "first" if first is None else "last"
        return None, f"Type the {which} day too (YYYY-MM-DD – YYYY-MM-DD), then press Enter."
    days = []
    for part in (first, last or first):
        try:
            days.append(dt.date.fromisoformat("-".join(f"{int(n):02d}" for n in part.replace("/", "-").split("-"))))
        except ValueError:
            return None, f"{part} is not a date."
    start, end = days
    latest = latest_allowed(today)
    if start < EARLIEST or end > latest:
        return None, f"Dates must lie between {EARLIEST:%d %b %Y} and {latest:%d %b %Y}."
    problem = period_problem(start, end)
    return (None, problem) if problem else ((start, end), None)


def _date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def period_from_params(params: Mapping[str, str], today: dt.date | None = None) -> tuple[Period, list[str]]:
    """The period a shared link asks for, and a notice for each part that was not valid.

    A relative ``preset`` wins over the link's dates (they said what it meant the day the
    link was made). Invalid parts fall back to the defaults: an unknown timezone to UTC, an
    unknown preset to the link's dates, a date range that cannot be read or used to the last 30 days.
    """
    notices = []
    tz = params.get("tz") or DEFAULT_TZ
    if tz not in timezones():
        notices.append(f"The link's timezone {tz[:40]!r} is not an IANA timezone name: showing {DEFAULT_TZ}.")
        tz = DEFAULT_TZ
    today = today or today_in(tz)
    fallback = default_period(tz, today)
    preset = params.get("preset") or CUSTOM
    if preset != CUSTOM and preset in PRESETS:
        return preset_period(preset, tz, today), notices
    if preset not in PRESETS:
        notices.append(f"The link's period {preset[:40]!r} is not one of the choices: using its dates.")
    if "from" not in params and "to" not in params:
        return fallback, notices
    start, end = _date(params.get("from")), _date(params.get("to"))
    if start is None or end is None:
        problem = "It needs both dates, as YYYY-MM-DD."
    elif not (EARLIEST <= start and end <= latest_allowed(today)):
        problem = f"Dates must lie between {EARLIEST:%d %b %Y} and {latest_allowed(today):%d %b %Y}."
    else:
        problem = period_problem(start, end)
    if problem:
        notices.append(f"The link's dates could not be used. {problem} Showing the last {DEFAULT_DAYS} days instead.")
        return fallback, notices
    return Period(start, end, tz), notices
