"""The admin site's Seasons section in chromium at 390 and 1366 px: the time zone, a refused start
(end before start, a prize role the bot cannot give, dates overlapping another season) keeps
what was typed and writes nothing; a season is started, listed with its dates in the guild's
time zone, ended early through the confirmation step, its end run, its final standings paged
with names and shared places, and its balance reset reverted as one batch after a confirmation
that says how many are affected. No page is wider than the screen."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from _admin_e2e import GUILD_A, shot, sign_in_local

pytestmark = pytest.mark.e2e

G = f"/g/{GUILD_A}"
ZONE = "Europe/Berlin"
EXTRA = 27  # members with one point each, so the standings have a second page (25 a page)


def _sql(site, query, params=()):
    return site.db.run(lambda conn: conn.execute(query, params).fetchall())


def _overflow(page) -> int:
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - window.innerWidth"
    )


def _counts(site):
    return _sql(site, "SELECT (SELECT count(*) FROM seasons), (SELECT count(*) FROM admin_audit), "
                      "(SELECT count(*) FROM transactions), (SELECT settings FROM guilds WHERE guild_id = %s)::text",
                (GUILD_A,))[0]  # fmt: skip


def _submit(page, form: str) -> None:
    with page.expect_navigation():
        page.click(f"{form} button[type=submit]")


def _local(days: float) -> str:
    """A datetime-local value `days` from now in the guild's zone."""
    return (datetime.now(ZoneInfo(ZONE)) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


def _award(site, user: int, amount: int, key: str) -> None:
    from pointsbot import ledger
    from pointsbot.platform.config import get_settings

    site.db.run(ledger.award, guild_id=GUILD_A, user_id=user, amount=amount, reason="season play", actor_id=1,
                source="system", idempotency_key=key, settings=get_settings())  # fmt: skip


@pytest.fixture(scope="module")
def channels(site):
    """The roles a prize may be (one the bot cannot give) and a results channel per width."""
    from pointsbot_local.discord_standin_rest import state as discord_state

    discord_state.add_role(str(GUILD_A), "Season Champion", position=2)
    discord_state.add_role(str(GUILD_A), "Admins", position=15)  # above the bot's own role (10)
    discord_state.add_channel(str(GUILD_A), "Voice lounge", kind=2)  # no messages there: not offered
    return {
        width: discord_state.add_channel(str(GUILD_A), f"results-{width}", position=width)
        for width in (390, 1366)
    }


def _members(site, width: int) -> list[int]:
    from pointsbot.community import members
    from pointsbot_local.discord_standin_rest import state as discord_state

    base = 760000000000000000 + width * 1000
    named = [(base + 1, "Ada Winner"), (base + 2, "Bea Tied"), (base + 3, "Cy Third")]
    for uid, name in named:
        site.db.run(members.remember, GUILD_A, uid, name.split()[0].lower(), name)
        discord_state.set_user(str(uid), name.split()[0].lower(), global_name=name)  # the same in Discord
    return [uid for uid, _ in named] + [base + 100 + i for i in range(EXTRA)]


@pytest.mark.parametrize("width", [390, 1366])
def test_start_list_end_standings_and_revert(site, browser, channels, width):
    # Given an admin of guild A in a browser this wide, on the Seasons page
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in_local(page, site)
    page.goto(site.admin(f"{G}/seasons"))
    assert page.locator("#site-nav a[aria-current=page]").inner_text() == "Seasons"
    assert _overflow(page) <= 0
    before = _counts(site)

    # When they give an unknown time zone: a plain message next to it, what they typed stays
    page.fill("#zone-form input[name=time_zone]", "Moon/Tranquility")
    _submit(page, "#zone-form")
    assert "not a time zone" in page.locator("#error-season-zone-time_zone").inner_text()
    assert page.input_value("#zone-form input[name=time_zone]") == "Moon/Tranquility"
    assert _counts(site) == before
    # And a real one is saved, audited as a settings change (the Settings page's action)
    page.fill("#zone-form input[name=time_zone]", ZONE)
    _submit(page, "#zone-form")
    assert page.locator("#season-zone").inner_text() == ZONE
    assert (ZONE,) in _sql(
        site, "SELECT after->>'time_zone' FROM admin_audit WHERE action = 'guild.settings'"
    )

    # When they start a season that ends before it starts
    form = "#season-form"
    before = _counts(site)
    page.fill(f"{form} input[name=name]", f"Spring {width}")
    typed_start = _local(10)
    page.fill(f"{form} input[name=starts_at]", typed_start)
    page.fill(f"{form} input[name=ends_at]", _local(5))
    page.fill(f"{form} input[name=prize_places]", "3")
    page.fill(f"{form} input[name=prize_points]", "100")
    page.check(f"{form} input[name=reset_balances]")
    _submit(page, form)
    # Then the message is next to the end, everything typed stays, nothing is written
    assert "end after it starts" in page.locator("#error-season-ends_at").inner_text()
    assert page.input_value(f"{form} input[name=name]") == f"Spring {width}"
    assert page.input_value(f"{form} input[name=starts_at]") == typed_start
    assert page.input_value(f"{form} input[name=prize_points]") == "100"
    assert page.is_checked(f"{form} input[name=reset_balances]")
    assert _counts(site) == before
    assert _overflow(page) <= 0
    shot(page, f"seasons-refused-{width}")
    # And a prize role the bot cannot give (chosen by name): Discord's reason in words, the choice kept
    page.fill(f"{form} input[name=starts_at]", "")
    page.fill(f"{form} input[name=ends_at]", _local(30))
    page.select_option(f"{form} select[name=prize_role_id]", label="Admins")
    _submit(page, form)
    assert "cannot give that prize role" in page.locator("#error-season-prize_role_id").inner_text()
    assert page.locator(f"{form} select[name=prize_role_id] option:checked").inner_text() == "Admins"
    assert page.input_value(f"{form} input[name=name]") == f"Spring {width}"
    assert _counts(site) == before

    # And a channel that is not one of the server's text channels (a forged choice)
    page.select_option(f"{form} select[name=prize_role_id]", label="Season Champion")
    assert "Voice lounge" not in page.locator(f"{form} select[name=post_channel_id]").inner_text()
    page.evaluate("() => { const s = document.querySelector('#season-form select[name=post_channel_id]'); "
                  "s.add(new Option('#forged', '123456789012345678')); s.value = '123456789012345678'; }")  # fmt: skip
    _submit(page, form)
    assert "not one of this server's text" in page.locator("#error-season-post_channel_id").inner_text()
    assert _counts(site) == before

    # When they start it with a role the bot can give and a channel for the final top 10
    page.select_option(f"{form} select[name=post_channel_id]", label=f"#results-{width}")
    _submit(page, form)
    assert f"Spring {width}" in page.locator("h1").inner_text()
    season_id, reset = _sql(
        site, "SELECT id, reset_balances FROM seasons WHERE name = %s", (f"Spring {width}",)
    )[0]
    assert reset is True
    assert _sql(site, "SELECT count(*) FROM admin_audit WHERE action = 'season.start' AND target = %s",
                (f"season:{season_id}",))[0][0] == 1  # fmt: skip
    # And a second season overlapping it is refused next to the dates, nothing written
    page.goto(site.admin(f"{G}/seasons"))
    before = _counts(site)
    page.fill(f"{form} input[name=name]", f"Overlap {width}")
    page.fill(f"{form} input[name=starts_at]", _local(10))
    page.fill(f"{form} input[name=ends_at]", _local(40))
    _submit(page, form)
    assert f"overlap the season 'Spring {width}'" in page.locator("#error-season-ends_at").inner_text()
    assert page.input_value(f"{form} input[name=name]") == f"Overlap {width}"
    assert _counts(site) == before
    # And a later one is scheduled: listed under Scheduled, the running one under Running, in the zone
    page.fill(f"{form} input[name=starts_at]", _local(31))
    page.fill(f"{form} input[name=ends_at]", _local(40))
    _submit(page, form)
    page.goto(site.admin(f"{G}/seasons"))
    running = page.locator("#seasons-running").inner_text()
    assert f"Spring {width}" in running and "Season Champion" in running
    assert ("CET" in running or "CEST" in running) and "UTC" not in running
    assert f"Overlap {width}" in page.locator("#seasons-scheduled").inner_text()
    assert _overflow(page) <= 0
    shot(page, f"seasons-list-{width}")

    # When the scheduled one is cancelled through its confirmation
    later_id = _sql(site, "SELECT id FROM seasons WHERE name = %s", (f"Overlap {width}",))[0][0]
    page.goto(site.admin(f"{G}/seasons/{later_id}"))
    with page.expect_navigation():
        page.click("#season-end-link")
    assert "has not started" in page.locator("#season-end-confirm").inner_text()
    _submit(page, "#season-end-confirm")
    assert _sql(site, "SELECT count(*) FROM seasons WHERE id = %s", (later_id,))[0][0] == 0

    # Given members who score in the season: two share first place, 27 share fourth
    users = _members(site, width)
    for i, (user, amount) in enumerate(zip(users, [50, 50, 20] + [1] * EXTRA, strict=True)):
        _award(site, user, amount, f"season-{width}-{i}")
    # Then the running season's page leads to its live board on the Leaderboard page
    page.goto(site.admin(f"{G}/seasons/{season_id}"))
    with page.expect_navigation():
        page.click("#season-live-board")
    assert f"Spring {width}" in page.content() and "Ada Winner" in page.content()
    # When the admin ends it early: the confirmation says what follows, then it ends
    page.goto(site.admin(f"{G}/seasons/{season_id}"))
    with page.expect_navigation():
        page.click("#season-end-link")
    confirm = page.locator("#season-end-confirm").inner_text()
    assert "30 members" in confirm and "top 3" in confirm and "resets every balance" in confirm
    assert _overflow(page) <= 0
    shot(page, f"seasons-end-confirm-{width}")
    _submit(page, "#season-end-confirm")
    assert "has ended" in page.locator(".flash").first.inner_text()
    assert _sql(site, "SELECT ends_at <= now() FROM seasons WHERE id = %s", (season_id,))[0][0] is True
    assert _sql(site, "SELECT count(*) FROM admin_audit WHERE action = 'season.end_early' AND target = %s",
                (f"season:{season_id}",))[0][0] == 1  # fmt: skip

    # When the end runs (the worker's task)
    from pointsbot.community import seasons

    holders = _sql(site, "SELECT count(*) FROM points WHERE guild_id = %s AND balance <> 0", (GUILD_A,))[0][0]
    assert seasons.run_end(site.db, season_id).finished
    from pointsbot_local.discord_standin_rest import state as discord_state

    posted = discord_state.channel_messages(channels[width])
    from pointsbot.discord.cards import plain_text

    assert len(posted) == 1 and "final top 10" in plain_text(posted[0]["components"])  # a card
    balances = dict(_sql(site, "SELECT user_id, balance FROM points WHERE guild_id = %s AND user_id = ANY(%s)",
                         (GUILD_A, users)))  # fmt: skip
    # the reset came before the prizes: the top 3 (a tie for first) hold exactly their 100 points
    assert balances == {user: 100 if i < 3 else 0 for i, user in enumerate(users)}
    # Then the final standings show names, shared places, and a second page
    page.goto(site.admin(f"{G}/seasons/{season_id}"))
    table = page.locator("#standings")
    rows = [r.split("\t") for r in table.locator("tbody tr").all_inner_texts()]
    assert [r[0].strip() for r in rows[:4]] == ["1", "1", "3", "4"]
    assert "Ada Winner" in rows[0][1] + rows[1][1] and "Bea Tied" in rows[0][1] + rows[1][1]
    assert "Cy Third" in rows[2][1] and rows[2][2].strip() == "20"
    assert str(users[0]) not in table.evaluate(
        "t => [...t.querySelectorAll('td')].map(td => [...td.childNodes].filter(n => n.nodeType === 3)"
        ".map(n => n.textContent).join('')).join(' ')"
    )
    assert len(rows) == 25 and "Page 1 of 2" in page.content()
    assert f"#results-{width} (posted)" in page.locator("#season-facts").inner_text()
    assert _overflow(page) <= 0
    shot(page, f"seasons-standings-{width}")
    page.goto(site.admin(f"{G}/seasons/{season_id}?page=2"))
    assert [r.split("\t")[0].strip() for r in page.locator("#standings tbody tr").all_inner_texts()] == [
        "4"
    ] * 5

    # When the admin reverts the reset: the confirmation says who and how many
    with page.expect_navigation():
        page.click("#season-revert-link")
    summary = page.locator("#revert-summary").inner_text()
    assert f"from {holders} members" in summary  # every balance of the guild, not only the season's
    assert "Ada Winner" in page.locator("#revert-largest").inner_text()
    assert _overflow(page) <= 0
    shot(page, f"seasons-revert-confirm-{width}")
    _submit(page, "#revert-form")
    # Then every balance is back to what it was before the reset, the prizes kept, as entries
    assert f"reset is reverted: {holders} balances restored" in page.locator(".flash").first.inner_text()
    restored = dict(_sql(site, "SELECT user_id, balance FROM points WHERE guild_id = %s AND user_id = ANY(%s)",
                         (GUILD_A, users)))  # fmt: skip
    assert restored[users[0]] == restored[users[1]] == 150 and restored[users[2]] == 120
    assert restored[users[3]] == 1
    sums = dict(_sql(site, "SELECT user_id, sum(amount) FROM transactions WHERE guild_id = %s AND user_id = ANY(%s) "
                           "GROUP BY user_id", (GUILD_A, users)))  # fmt: skip
    assert sums == restored
    assert _sql(site, "SELECT count(*) FROM admin_audit WHERE action = 'season.reset_reverted' AND target = %s",
                (f"season:{season_id}",))[0][0] == 1  # fmt: skip
    # And a second revert changes nothing
    page.goto(site.admin(f"{G}/seasons/{season_id}/revert"))
    assert "reverted already" in page.locator("#revert-summary").inner_text()
    assert page.locator("#revert-form").count() == 0
    context.close()


def test_rename_keeps_a_refused_name_and_a_season_of_another_server_is_not_found(site, browser, channels):
    from pointsbot.community import seasons

    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in_local(page, site)
    ids = [sid for (sid,) in _sql(site, "SELECT id FROM seasons WHERE guild_id = %s ORDER BY id", (GUILD_A,))]
    assert len(ids) >= 2
    first, second = (site.db.run(seasons.get_season, GUILD_A, i) for i in ids[:2])
    # When a season is renamed to another season's name: a plain message, the typed name stays
    page.goto(site.admin(f"{G}/seasons/{first.id}"))
    before = _counts(site)
    page.fill("#rename-form input[name=name]", second.name.upper())
    _submit(page, "#rename-form")
    assert "already a season called" in page.locator("#error-season-rename-name").inner_text()
    assert page.input_value("#rename-form input[name=name]") == second.name.upper()
    assert _counts(site) == before
    # And to a free name: renamed, audited
    page.fill("#rename-form input[name=name]", "Spring Cup")
    _submit(page, "#rename-form")
    assert "Spring Cup" in page.locator("h1").inner_text()
    assert _sql(site, "SELECT after->>'name' FROM admin_audit WHERE action = 'season.rename' AND target = %s",
                (f"season:{first.id}",)) == [("Spring Cup",)]  # fmt: skip
    # And a season id that is not this server's is a plain page, not a 500
    response = page.goto(site.admin(f"{G}/seasons/999999"))
    assert response is not None and response.status == 400
    assert "no such season" in page.content()
    context.close()
