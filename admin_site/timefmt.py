"""The admin site's one time format: "5 Dec 2026, 14:03 CET", in the admin's time zone.

Every time a page shows goes through `when` (the `|when` filter in templates). Day and month
are written in words and the zone is named, so no date reads two ways (5/12 or 12/5) and no
time is mistaken for another zone's; 24-hour clock. The zone's abbreviation comes from the tz
database (CET, CEST, EST, UTC); where it has none (it gives "-03"), the offset is written
"UTC-3" or "UTC+5:30".
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@lru_cache(maxsize=64)
def zone(name: str | None) -> ZoneInfo:
    """The zone by name; UTC for none or one the tz database does not know (a stored name is
    checked when chosen, so this is only for a zone removed from tzdata since)."""
    try:
        return ZoneInfo(name) if name else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta()).total_seconds() // 60)
    if minutes == 0:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def zone_label(local: datetime) -> str:
    """The zone of an aware local time as a reader knows it: CET, EST, UTC, else UTC+5:30."""
    name = local.tzname() or ""
    if name and name[0] not in "+-" and name.isalpha():
        return name
    return _offset(local.utcoffset())


def when(value: datetime | None, tz: ZoneInfo | None = None) -> str:
    """ "5 Dec 2026, 14:03 CET": the moment in `tz` (UTC if none). A naive value is taken as UTC
    (the database gives aware ones)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(tz or UTC)
    return f"{local.day} {MONTHS[local.month - 1]} {local.year}, {local:%H:%M} {zone_label(local)}"


def day(value: date | None) -> str:
    """ "5 Dec 2026"."""
    if value is None:
        return ""
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


def short_day(value: date) -> str:
    """ "5 Dec" (a chart's axis)."""
    return f"{value.day} {MONTHS[value.month - 1]}"


def zone_now_label(tz: ZoneInfo, now: datetime | None = None) -> str:
    """The zone's name with its abbreviation now: "Europe/Berlin (CET)", "UTC"."""
    key = getattr(tz, "key", "UTC")
    label = zone_label((now or datetime.now(UTC)).astimezone(tz))
    return key if label == key else f"{key} ({label})"
