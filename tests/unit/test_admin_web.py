"""Admin-site pieces without I/O: redirects stay on the site, headers, CSV parsing, the chart."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from admin_site import web
from pointsbot.admin import bulk, monitor, stats
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


def test_chart_scales_issued_up_and_removed_down_from_the_middle():
    series = [stats.DayTotal(date(2026, 1, d), issued, removed, 1) for d, issued, removed in
              ((1, 100, 0), (2, 0, 50), (3, 0, 0))]  # fmt: skip
    chart = stats.chart(series, width=300, height=120)
    top, bottom, empty = chart.bars
    assert top.issued_h == 50.0 and top.issued_y == chart.middle - 50.0 and top.removed_h == 0
    assert bottom.removed_h == 25.0 and bottom.removed_y == chart.middle
    assert empty.issued_h == empty.removed_h == 0


@pytest.mark.parametrize(
    ("moment", "zone", "shown"),
    [(datetime(2026, 1, 15, 12, 0, tzinfo=UTC), "Europe/Berlin", "2026-01-15 13:00 CET"),
     (datetime(2026, 7, 15, 12, 0, tzinfo=UTC), "Europe/Berlin", "2026-07-15 14:00 CEST"),
     (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "Europe/Berlin", "2026-03-29 03:00 CEST"),  # the hour DST begins
     (datetime(2026, 12, 1, 5, 30, tzinfo=UTC), "America/New_York", "2026-12-01 00:30 EST"),
     (datetime(2026, 12, 1, 5, 30, tzinfo=UTC), "UTC", "2026-12-01 05:30 UTC"),
     (datetime(2026, 12, 1, 5, 30, tzinfo=UTC), "Moon/Tranquility", "2026-12-01 05:30 UTC")],
)  # fmt: skip
def test_a_season_date_is_shown_in_the_guilds_time_zone(moment, zone, shown):
    # Given a moment and a guild's zone (one the site cannot read falls back to UTC, never an error)
    assert web._when_in(moment, zone) == shown
