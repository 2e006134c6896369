"""The admin site's one time format: day and month in words, 24-hour clock, the zone named;
in the admin's zone, daylight saving included."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from admin_site import timefmt
from admin_site.web import render_template

pytestmark = pytest.mark.unit

BERLIN = timefmt.zone("Europe/Berlin")
NEW_YORK = timefmt.zone("America/New_York")


def test_a_winter_time_in_berlin_is_cet():
    assert timefmt.when(datetime(2026, 12, 5, 13, 3, tzinfo=UTC), BERLIN) == "5 Dec 2026, 14:03 CET"


def test_a_summer_time_in_berlin_is_cest():
    assert timefmt.when(datetime(2026, 7, 1, 12, 0, tzinfo=UTC), BERLIN) == "1 Jul 2026, 14:00 CEST"


def test_the_spring_change_in_berlin_skips_an_hour():
    # 29 Mar 2026: at 01:00 UTC the clocks go from 02:00 CET to 03:00 CEST
    before = datetime(2026, 3, 29, 0, 59, tzinfo=UTC)
    assert timefmt.when(before, BERLIN) == "29 Mar 2026, 01:59 CET"
    assert timefmt.when(before + timedelta(minutes=1), BERLIN) == "29 Mar 2026, 03:00 CEST"


def test_the_autumn_change_in_new_york_shows_the_repeated_hour_by_its_zone():
    # 1 Nov 2026: 01:30 happens twice in New York, first as EDT then as EST
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert timefmt.when(first, NEW_YORK) == "1 Nov 2026, 01:30 EDT"
    assert timefmt.when(first + timedelta(hours=1), NEW_YORK) == "1 Nov 2026, 01:30 EST"


def test_a_time_near_midnight_is_on_the_local_day():
    assert timefmt.when(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), BERLIN) == "1 Jan 2027, 00:30 CET"
    assert timefmt.when(datetime(2027, 1, 1, 3, 0, tzinfo=UTC), NEW_YORK) == "31 Dec 2026, 22:00 EST"


@pytest.mark.parametrize(
    ("zone", "expected"),
    [("Asia/Kolkata", "5 Dec 2026, 18:33 IST"), ("America/Sao_Paulo", "5 Dec 2026, 10:03 UTC-3"),
     ("Asia/Kathmandu", "5 Dec 2026, 18:48 UTC+5:45"), ("UTC", "5 Dec 2026, 13:03 UTC")],
)  # fmt: skip
def test_a_zone_without_letters_is_named_by_its_offset(zone, expected):
    assert timefmt.when(datetime(2026, 12, 5, 13, 3, tzinfo=UTC), timefmt.zone(zone)) == expected


def test_no_zone_is_utc_and_a_naive_time_is_taken_as_utc():
    assert timefmt.when(datetime(2026, 12, 5, 13, 3, tzinfo=UTC)) == "5 Dec 2026, 13:03 UTC"
    assert timefmt.when(datetime(2026, 12, 5, 13, 3), BERLIN) == "5 Dec 2026, 14:03 CET"
    other = datetime(2026, 12, 5, 15, 3, tzinfo=timezone(timedelta(hours=2)))
    assert timefmt.when(other, BERLIN) == "5 Dec 2026, 14:03 CET"
    assert timefmt.when(None, BERLIN) == ""


def test_an_unknown_or_empty_zone_name_falls_back_to_utc():
    assert timefmt.zone("Mars/Olympus_Mons").key == "UTC"
    assert timefmt.zone(None).key == "UTC" and timefmt.zone("").key == "UTC"


def test_days_and_zone_labels():
    assert timefmt.day(date(2026, 12, 5)) == "5 Dec 2026" and timefmt.short_day(date(2026, 1, 9)) == "9 Jan"
    assert timefmt.zone_now_label(BERLIN, datetime(2026, 12, 5, tzinfo=UTC)) == "Europe/Berlin (CET)"
    assert timefmt.zone_now_label(timefmt.zone("UTC"), datetime(2026, 12, 5, tzinfo=UTC)) == "UTC"


def test_the_when_filter_uses_the_pages_zone():
    # Given the entries table every list of the site includes, rendered for an admin in Berlin
    from pointsbot.ledger import LedgerEntry

    entry = LedgerEntry(1, 1, 1, 2, 5, 5, "award", "", None, "admin_site", False, None, None,
                        datetime(2026, 7, 1, 12, 0, tzinfo=UTC), "local:a")  # fmt: skip
    html = render_template("_entries.html", entries=[entry], time_zone=BERLIN, who=lambda *a, **k: "",
                           guild_id=1, csrf_token="", req=None)  # fmt: skip
    # Then the time is in Berlin's summer time; without a zone (an error page) it is UTC
    assert "1 Jul 2026, 14:00 CEST" in html
    assert "1 Jul 2026, 12:00 UTC" in render_template("_entries.html", entries=[entry], who=lambda *a, **k: "",
                                                      guild_id=1, csrf_token="", req=None)  # fmt: skip
