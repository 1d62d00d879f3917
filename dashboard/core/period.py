"""The period every page filters on: whole days in the viewer's display timezone.

A period runs from the local midnight that starts ``start`` to the local
midnight that ends ``end`` (both days included). ``bounds()`` turns those two
midnights into UTC instants, so queries compare plain ``timestamptz`` columns
with ``>= start AND < end`` (index-friendly, the same on PostgreSQL and
DuckDB) while the day boundaries still follow the display timezone, also
across daylight-saving changes. The URL keeps a period as ``from``, ``to``
(ISO dates) and ``tz`` (an IANA name) so a view can be shared.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

DEFAULT_DAYS = 30
MAX_DAYS = 366
DEFAULT_TZ = "UTC"
EARLIEST = dt.date(2000, 1, 1)


@dataclass(frozen=True)
class Period:
    start: dt.date  # first day, included
    end: dt.date  # last day, included
    tz: str = DEFAULT_TZ  # IANA name the days are counted in

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
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "tz": self.tz}


@lru_cache(maxsize=1)
def timezones() -> tuple[str, ...]:
    """Every IANA timezone name, UTC first."""
    return (DEFAULT_TZ, *sorted(available_timezones() - {DEFAULT_TZ}))


def today_in(tz: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(tz)).date()


def latest_allowed(today: dt.date) -> dt.date:
    """The latest day a period may reach (a year ahead, for schedules)."""
    return today + dt.timedelta(days=MAX_DAYS)


def default_period(tz: str = DEFAULT_TZ, today: dt.date | None = None) -> Period:
    """The last 30 days, today included."""
    end = today or today_in(tz)
    return Period(end - dt.timedelta(days=DEFAULT_DAYS - 1), end, tz)


def period_problem(start: dt.date, end: dt.date) -> str | None:
    """Why ``start``..``end`` is not a usable period, or None if it is."""
    if end < start:
        return f"The end date, {end:%d %b %Y}, is before the start date, {start:%d %b %Y}."
    days = (end - start).days + 1
    if days > MAX_DAYS:
        return f"The period has {days} days; the longest is {MAX_DAYS} days."
    return None


def _date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def period_from_params(params: Mapping[str, str], today: dt.date | None = None) -> tuple[Period, list[str]]:
    """The period a shared link asks for, and a notice for each part that was not valid.

    Invalid parts fall back to the defaults: an unknown timezone to UTC, a
    date range that cannot be read or used to the last 30 days.
    """
    notices = []
    tz = params.get("tz") or DEFAULT_TZ
    if tz not in timezones():
        notices.append(f"The link's timezone {tz[:40]!r} is not an IANA timezone name: showing {DEFAULT_TZ}.")
        tz = DEFAULT_TZ
    today = today or today_in(tz)
    fallback = default_period(tz, today)
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
