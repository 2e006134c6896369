"""Admin-site pieces without I/O: redirects stay on the site, headers, CSV parsing, the chart."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from admin_site import charts, web
from pointsbot.admin import bulk, monitor
from pointsbot.platform.config import load_settings
from pointsbot.platform.errors import InvalidInput

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/admin/g/1/members", "/admin/g/1/members"),
        ("https://evil.example/admin/", "/admin/"),
        ("//evil.example/admin/x", "/admin/"),
        ("/admin\\..\\evil", "/admin/"),
        ("/other", "/admin/"),
        (None, "/admin/"),
    ],
)
def test_after_sign_in_only_paths_inside_the_site_are_followed(target, expected):
    assert web.safe_next(target) == expected


@pytest.mark.parametrize(
    "target",
    ["/admin/../../discord-api/_inspect", "/admin/../health/deep", "/admin/./../x", "/admin/g/1/..",
     "/admin/..%2f..%2fdiscord-api/_inspect", "/admin/..%2F..%2Fx", "/admin/%2e%2e/%2e%2e/x",
     "/admin/%2E%2E/x", "/admin/.%2e/x", "/admin/..%5c..%5cx"],
)  # fmt: skip
def test_a_target_that_climbs_out_of_the_site_by_dot_segments_goes_home(target):
    # A browser resolves "..", "%2e%2e" (and a decoding server "..%2f") against /admin/: out of the site
    assert web.safe_next(target) == "/admin/"


def test_dots_inside_a_name_or_the_query_are_not_dot_segments():
    assert web.safe_next("/admin/static/site.css") == "/admin/static/site.css"
    assert web.safe_next("/admin/g/1/members?q=a/../b%2F") == "/admin/g/1/members?q=a/../b%2F"


def test_urls_and_ids_render_as_text():
    assert web.url("/g/1/members", q="a b", page=None) == "/admin/g/1/members?q=a+b"
    html = web.render_template("error.html", status_code=400, message="<b>no</b>", identity=None, flashes=[],
                               guilds=[])  # fmt: skip
    assert "&lt;b&gt;no&lt;/b&gt;" in html and "<b>no</b>" not in html


def test_content_security_policy_allows_only_the_site_and_discords_authorize_page():
    headers = web.security_headers(load_settings({}))
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "form-action 'self' https://discord.com;" in csp
    assert headers["X-Frame-Options"] == "DENY"


def test_cookie_name_is_host_prefixed_over_https_only():
    assert web.cookie_name(True) == "__Host-pointsbot_admin"
    assert web.cookie_name(False) == "pointsbot_admin"


def test_csv_rows_keep_commas_in_reasons_and_skip_blank_lines():
    rows = bulk.parse_csv('\ufeffuser_id,amount,reason\n\n 12 , 5 ,"thanks, really"\n13,-2\n')
    assert [(r.line, r.user_id, r.amount, r.reason) for r in rows] == [(3, "12", "5", "thanks, really"),
                                                                      (4, "13", "-2", "")]  # fmt: skip
    with pytest.raises(InvalidInput):
        bulk.parse_csv("user_id,amount,reason\n")
    with pytest.raises(InvalidInput):
        bulk.parse_csv("1,1,x\n" * (bulk.MAX_ROWS + 1))


def test_transaction_filter_round_trips_through_the_query_string():
    form = {"member": "123", "kind": "award", "from": "2026-01-02", "to": "2026-01-03", "min_amount": "-5"}
    flt = monitor.TransactionFilter.from_form(form)
    assert flt.user_id == 123 and flt.date_from == date(2026, 1, 2) and flt.min_amount == -5
    assert monitor.TransactionFilter.from_form(flt.as_query()) == flt


def test_chart_bars_stand_on_the_zero_line_of_a_value_axis_with_round_ticks():
    days = [date(2026, 1, d) for d in (1, 2, 3)]
    chart = charts.bar_chart("t", days, [charts.Series("issued", "s-in", [100, 0, 0]),
                                         charts.Series("removed", "s-out", [0, 50, 0])])  # fmt: skip
    # The value axis: 0 to the peak in round steps, labelled, from the baseline up
    assert [t.label for t in chart.ticks] == ["0", "25", "50", "75", "100"]
    assert chart.ticks[0].y == chart.baseline and chart.ticks[-1].y == chart.top
    top, bottom, empty = chart.columns
    (issued,) = top.bars
    (removed,) = bottom.bars
    # A bar's height is its value on that axis, standing on the baseline; empty days have no bar
    assert issued.y == chart.top and issued.y + issued.height == chart.baseline
    assert removed.height == round((chart.baseline - chart.top) / 2, 2) and removed.css == "s-out"
    assert empty.bars == ()
    # Every day has a tooltip with its numbers, and a label on the day axis (three days: all)
    assert top.title == "1 Jan 2026: 100 issued, 0 removed"
    assert [d.label for d in chart.days] == ["1 Jan", "2 Jan", "3 Jan"]


@pytest.mark.parametrize(
    ("moment", "zone", "shown"),
    [(datetime(2026, 1, 15, 12, 0, tzinfo=UTC), "Europe/Berlin", "15 Jan 2026, 13:00 CET"),
     (datetime(2026, 7, 15, 12, 0, tzinfo=UTC), "Europe/Berlin", "15 Jul 2026, 14:00 CEST"),
     (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "Europe/Berlin", "29 Mar 2026, 03:00 CEST"),  # the hour DST begins
     (datetime(2026, 12, 1, 5, 30, tzinfo=UTC), "America/New_York", "1 Dec 2026, 00:30 EST"),
     (datetime(2026, 12, 1, 5, 30, tzinfo=UTC), "UTC", "1 Dec 2026, 05:30 UTC"),
     (datetime(2026, 12, 1, 5, 30, tzinfo=UTC), "Moon/Tranquility", "1 Dec 2026, 05:30 UTC")],
)  # fmt: skip
def test_a_season_date_is_shown_in_the_guilds_time_zone(moment, zone, shown):
    # Given a moment and a guild's zone (one the site cannot read falls back to UTC, never an error);
    # written in the site's one time format (admin_site/timefmt.py)
    assert web._when_in(moment, zone) == shown
