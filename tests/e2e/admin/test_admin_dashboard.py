"""The dashboard's charts, period switches, top earners, the admin's time zone and the dark
theme, in chromium at a laptop's 1366 px and a phone's 390 px. Screenshots land in
test-artifacts/admin/dashboard-*."""

from __future__ import annotations

import re

import pytest
from _admin_e2e import GUILD_A, shot, sign_in_local

pytestmark = pytest.mark.e2e

G = f"/g/{GUILD_A}"
MEMBERS = [783_000_000_000_000_000 + i for i in range(1, 9)]
CHARTS = ("#chart-points", "#chart-active", "#chart-dms")
WHEN = re.compile(
    r"^\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}, \d{2}:\d{2} ([A-Z]{2,5}|UTC[+-]\d+(:\d\d)?)$"
)


@pytest.fixture(scope="module")
def history(site):
    """100 days of entries and DMs written with past dates, and entries today through the site's path."""
    from pointsbot.admin import bulk
    from pointsbot.admin.sessions import Identity
    from pointsbot.community import members

    def setup(conn):
        for user in MEMBERS:
            members.remember(conn, GUILD_A, user, f"m{user % 100}", f"Member {user % 100}")
        op = conn.execute("INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) "
                          "VALUES (%s, 'dash-history', 'x', 'award') RETURNING id", (GUILD_A,)).fetchone()[0]  # fmt: skip
        conn.execute(
            "INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, source, created_at) "
            "SELECT %s, %s, %s + 1 + (d + k) %% 8, CASE WHEN k = 0 THEN -d ELSE 5 * d END, 0, "
            "CASE WHEN k = 0 THEN 'deduct' ELSE 'award' END, 'system', now() - make_interval(days => d, mins => k) "
            "FROM generate_series(1, 100) d, generate_series(0, 3) k",
            (op, GUILD_A, MEMBERS[0] - 1),
        )
        conn.execute(
            "INSERT INTO direct_messages (guild_id, user_id, content, status, created_at) "
            "SELECT %s, %s, 'hi', CASE WHEN d %% 3 = 0 THEN 'failed' ELSE 'sent' END, now() - make_interval(days => d) "
            "FROM generate_series(1, 100) d",
            (GUILD_A, MEMBERS[0]),
        )
        conn.execute("UPDATE points p SET balance = s.total FROM (SELECT user_id, sum(amount) total FROM transactions "
                     "WHERE guild_id = %s GROUP BY user_id) s WHERE p.guild_id = %s AND p.user_id = s.user_id",
                     (GUILD_A, GUILD_A))  # fmt: skip

    site.db.run(setup)
    who = Identity("local", "alice", (GUILD_A,))
    for i, user in enumerate(MEMBERS[:4]):
        site.db.run(bulk.change_points, who, guild_id=GUILD_A, user_id=user, operation="award", amount=50 * (i + 1),
                    reason="dashboard today", silent=True, form_token=f"dash-{i}")  # fmt: skip


def _overflow(page) -> int:
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - window.innerWidth"
    )


def _columns(page, chart: str) -> int:
    return page.locator(f"{chart} svg.chart g.day").count()


@pytest.mark.parametrize("width", [1366, 390])
def test_charts_have_axes_tooltips_and_switch_period_without_widening_the_page(site, browser, history, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in_local(page, site)
    # Given the dashboard (30 days by default)
    page.goto(site.admin(f"{G}/"))
    for chart in CHARTS:
        svg = page.locator(f"{chart} svg.chart")
        # Then each chart is on screen with a value axis (round ticks from 0) and a day axis
        assert svg.is_visible() and svg.bounding_box()["height"] > 100
        ticks = svg.locator(".y-axis text").all_text_contents()
        assert ticks[0] == "0" and len(ticks) >= 2
        assert 5 <= svg.locator(".x-axis text").count() <= 8
        assert _columns(page, chart) == 30
    # And a day's bars carry its numbers as a tooltip (today: the four awards of the fixture at least)
    today = page.locator("#chart-points g.day").last.locator("title").text_content()
    assert (
        "(UTC day):" in today
        and "issued" in today
        and int(re.search(r"([\d,]+) issued", today)[1].replace(",", "")) >= 500
    )
    assert (
        page.locator("#chart-points rect.s-in").count() > 20
        and page.locator("#chart-dms rect.s-failed").count() > 5
    )
    # And the page is no wider than the screen (a chart scrolls inside its card on a phone)
    assert _overflow(page) <= 0
    shot(page, f"dashboard-30-{width}")
    # When the admin switches to 7 days, then to 90
    for days in (7, 90):
        with page.expect_navigation():
            page.click(f"#period-switch a:has-text('{days} days')")
        assert f"days={days}" in page.url
        assert page.locator("#period-switch a[aria-current]").inner_text() == f"{days} days"
        assert page.locator("#charts-heading").inner_text() == f"The last {days} days"
        for chart in CHARTS:
            assert _columns(page, chart) == days
        assert _overflow(page) <= 0
        shot(page, f"dashboard-{days}-{width}")
    # And the numbers behind a chart are there as a table too
    page.click("#chart-active details summary")
    assert page.locator("#chart-active details table tbody tr").count() == 90
    assert _overflow(page) <= 0
    context.close()


def test_top_earners_switch_between_all_time_week_month_and_season(site, admin_page, history):
    page = admin_page
    page.goto(site.admin(f"{G}/?days=7"))
    assert page.locator("#top-heading").inner_text() == "Top earners: all time"
    rows = page.locator("#top-earners tbody tr")
    assert rows.count() == 8 and rows.first.locator("td").first.inner_text() == "1"
    assert page.locator("#top-earners svg.meter rect.fill").first.get_attribute("width") == "100.0"
    # When the week is chosen, the board is this week's (today's awards), and the chart period stays
    with page.expect_navigation():
        page.click("#board-switch a:has-text('Week')")
    assert "board=week" in page.url and "days=7" in page.url
    assert page.locator("#top-heading").inner_text() == "Top earners: this week"
    # (people by name and avatar, scores highest first)
    assert page.locator("#top-earners tbody tr td:nth-child(2) .person").count() >= 4
    scores = [
        int(t.replace(",", ""))
        for t in page.locator("#top-earners tbody tr td:nth-child(3)").all_inner_texts()
    ]
    assert scores == sorted(scores, reverse=True) and scores[0] >= 200
    assert _columns(page, "#chart-points") == 7
    with page.expect_navigation():
        page.click("#board-switch a:has-text('Month')")
    assert page.locator("#board-switch a[aria-current]").inner_text() == "Month"
    # And with no season running, the season choice says what to do
    with page.expect_navigation():
        page.click("#board-switch a:has-text('Season')")
    assert "No season is running" in page.locator("#top-earners").inner_text()
    shot(page, "dashboard-top-season")


def test_a_period_the_site_does_not_offer_is_a_plain_message(site, admin_page):
    page = admin_page
    for query, words in (("days=14", "7, 30 or 90 days"), ("board=year", "all time, week, month or season")):
        response = page.goto(site.admin(f"{G}/?{query}"))
        assert response.status == 400 and words in page.locator("main").inner_text()
        assert "Traceback" not in page.content()


def test_times_show_in_the_zone_the_admin_chooses(site, browser, history):
    from admin_site import timefmt

    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    sign_in_local(page, site)
    page.goto(site.admin(f"{G}/"))
    # Given the default: the guild has no zone, so UTC, in the one format
    assert page.locator("#time-zone-link").inner_text() == "UTC"
    first = page.locator("#recent table.data tbody tr td:nth-child(2)").first
    assert WHEN.match(first.inner_text()) and first.inner_text().endswith(" UTC")
    # When the admin picks Europe/Berlin from the header's link
    with page.expect_navigation():
        page.click("#time-zone-link")
    page.select_option("#time-zone", "Europe/Berlin")
    with page.expect_navigation():
        page.click("#preferences-form button[type=submit]")
    assert "Times are now shown in Europe/Berlin" in page.locator(".flash").inner_text()
    # Then every time on the dashboard and the transactions page is Berlin's, written the one way
    newest = site.db.run(lambda conn: conn.execute(
        "SELECT created_at FROM transactions WHERE guild_id = %s ORDER BY id DESC LIMIT 1", (GUILD_A,)).fetchone()[0])  # fmt: skip
    expected = timefmt.when(newest, timefmt.zone("Europe/Berlin"))
    page.goto(site.admin(f"{G}/transactions"))
    cells = page.locator("main table.data tbody tr td:nth-child(2)").all_inner_texts()
    assert cells[0] == expected and all(WHEN.match(c) for c in cells)
    assert re.search(r"Europe/Berlin \(CES?T\)", page.locator("#time-zone-link").inner_text())
    page.goto(site.admin(f"{G}/"))
    page.wait_for_selector("[data-live-note]:has-text('Updated')")
    note = page.locator("[data-live-note]").inner_text()
    assert WHEN.match(note.removeprefix("Updated ")) and re.search(r"CES?T$", note), note
    # And back to the server's zone
    page.goto(site.admin(f"{G}/preferences"))
    page.select_option("#time-zone", "server")
    with page.expect_navigation():
        page.click("#preferences-form button[type=submit]")
    assert page.locator("#time-zone-link").inner_text() == "UTC"
    context.close()


def _luminance(rgb: str) -> float:
    parts = [int(x) / 255 for x in re.findall(r"\d+", rgb)[:3]]
    lin = [p / 12.92 if p <= 0.03928 else ((p + 0.055) / 1.055) ** 2.4 for p in parts]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_theme_follows_the_browser_with_readable_contrast_charts_included(site, browser, history, scheme):
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme=scheme)
    page = context.new_page()
    sign_in_local(page, site)
    page.goto(site.admin(f"{G}/"))
    style = page.evaluate(
        """() => {
            const css = (sel, prop) => getComputedStyle(document.querySelector(sel))[prop];
            return {page: css('body', 'backgroundColor') === 'rgba(0, 0, 0, 0)' ? css('html', 'backgroundColor') : css('body', 'backgroundColor'),
                    card: css('#charts', 'backgroundColor'), text: css('main', 'color'),
                    axis: css('#chart-points .y-axis text', 'fill'), bar_in: css('#chart-points rect.s-in', 'fill'),
                    bar_out: css('#chart-points rect.s-out', 'fill'), active: css('#chart-active rect.s-active', 'fill'),
                    failed: css('#chart-dms rect.s-failed', 'fill'), link: css('#charts details summary', 'color')};
        }"""
    )
    dark = _luminance(style["card"]) < 0.1
    assert dark == (scheme == "dark"), style
    # Text at least 4.5:1 on the card, chart marks and axis labels at least 3:1 (WCAG's non-text contrast)
    assert _contrast(style["text"], style["card"]) >= 4.5
    for mark in ("axis", "bar_in", "bar_out", "active", "failed", "link"):
        assert _contrast(style[mark], style["card"]) >= 3, (mark, style)
    assert _overflow(page) <= 0
    shot(page, f"dashboard-{scheme}-390")
    context.close()
