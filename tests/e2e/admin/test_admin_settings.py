"""The Settings page in chromium at 390 and 1366 px: every per-server option in groups, admin
roles chosen by their names (Discord's list, kept in Postgres), the card colour from a colour
input, the time zone of the weekly boards; a refused value keeps what was typed with the reason
in words beside its field and nothing stored; when Discord cannot be reached, a plain message and
the current role ids. Every change is in the audit log. No page is wider than the screen."""

from __future__ import annotations

import pytest
from _admin_e2e import GUILD_A, shot, sign_in_local

pytestmark = pytest.mark.e2e

G = f"/g/{GUILD_A}"


def _sql(site, query, params=()):
    return site.db.run(lambda conn: conn.execute(query, params).fetchall())


def _settings(site) -> dict:
    return _sql(site, "SELECT settings FROM guilds WHERE guild_id=%s", (GUILD_A,))[0][0]


def _audits(site) -> int:
    return _sql(site, "SELECT count(*) FROM admin_audit WHERE action='guild.settings'")[0][0]


def _overflow(page) -> int:
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - window.innerWidth"
    )


def _submit(page) -> None:
    with page.expect_navigation():
        page.click("#settings-form button[type=submit]")


@pytest.fixture(scope="module")
def roles(site):
    from pointsbot_local.discord_standin_rest import state as discord_state

    return {
        "Moderators": discord_state.add_role(str(GUILD_A), "Moderators", position=5),
        "Event team": discord_state.add_role(str(GUILD_A), "Event team", position=3),
    }


@pytest.fixture
def phone_or_laptop(site, browser, request):
    context = browser.new_context(viewport={"width": request.param, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in_local(page, site)
    yield page, request.param
    context.close()


@pytest.mark.parametrize("phone_or_laptop", [390, 1366], indirect=True)
def test_settings_by_name_refusals_keep_input_and_are_audited(site, roles, phone_or_laptop):
    page, width = phone_or_laptop
    # Given the settings page
    page.goto(site.admin(f"{G}/settings") + "?roles=refresh")
    # Then the groups are there, the roles by name (not the bot's own role, not @everyone)
    headings = page.locator("#settings-form h2").all_inner_texts()
    assert headings[:5] == ["Currency and look", "Limits", "Members and DMs", "Admin roles",
                            "Weekly, monthly and season boards"]  # fmt: skip
    names = page.locator("#settings-admins .role-name").all_inner_texts()
    # (other modules' tests may have added roles of their own to the stand-in's guild)
    assert names.index("Moderators") < names.index("Event team") and not {"pointsbot", "@everyone"} & set(
        names
    )
    assert _overflow(page) <= 0
    shot(page, f"settings-{width}")

    # When the admin refuses to give a sensible largest change and an unknown time zone,
    # and also picks a role and a colour
    audits = _audits(site)
    before = _settings(site)
    page.fill("#settings-form input[name=max_change]", "0")
    page.fill("#settings-form input[name=time_zone]", "Mars/Olympus_Mons")
    page.check("#settings-admins label:has-text('Moderators') input")
    page.fill("#settings-form input[name=currency_name]", f"stars{width}")
    page.click("#settings-form button[type=submit]")
    page.wait_for_selector("#error-settings-max_change")
    # Then nothing is stored, each reason sits beside its field in words, and what was typed stays
    assert _settings(site) == before and _audits(site) == audits
    assert (
        page.locator("#error-settings-max_change").inner_text()
        == "The largest single change must be above zero."
    )
    assert "is not a time zone I know" in page.locator("#error-settings-time_zone").inner_text()
    assert "max_change" not in page.locator("main").inner_text()
    assert page.input_value("#settings-form input[name=max_change]") == "0"
    assert page.input_value("#settings-form input[name=time_zone]") == "Mars/Olympus_Mons"
    assert page.input_value("#settings-form input[name=currency_name]") == f"stars{width}"
    assert page.is_checked("#settings-admins label:has-text('Moderators') input")
    assert page.locator("#settings-form [aria-invalid=true]").count() == 2
    assert _overflow(page) <= 0
    shot(page, f"settings-refused-{width}")

    # When they put the values right and save
    zone, colour = ("Europe/Berlin", "#ff8800") if width == 390 else ("America/New_York", "#0088ff")
    page.fill("#settings-form input[name=max_change]", f"{5000 + width:,}")
    page.fill("#settings-form input[name=time_zone]", zone)
    page.fill("#settings-form input[name=accent_color]", colour)
    page.uncheck("#settings-form input[name=counted_sources][value=api]")
    _submit(page)
    # Then it is stored, as the bot reads it, and one audit line has what changed, before and after
    assert "Settings saved" in page.locator(".flash").first.inner_text()
    stored = _settings(site)
    assert stored["max_change"] == 5000 + width and stored["time_zone"] == zone
    assert stored["admin_role_ids"] == [roles["Moderators"]] and stored["accent_color"] == int(colour[1:], 16)
    assert "api" in stored["window_excluded_sources"] and stored["currency_name"] == f"stars{width}"
    assert _audits(site) == audits + 1
    was, now = _sql(site, "SELECT before, after FROM admin_audit WHERE action='guild.settings' "
                          "ORDER BY id DESC LIMIT 1")[0]  # fmt: skip
    assert set(now) == {k for k in set(before) | set(stored) if before.get(k) != stored.get(k)}
    assert now["time_zone"] == zone and was.get("max_change") == before.get("max_change")
    from pointsbot.ledger import guilds
    from pointsbot.platform.config import get_settings

    policy = site.db.run(guilds.guild_policy, get_settings(), GUILD_A)
    assert policy.max_change == 5000 + width and policy.admin_role_ids == (int(roles["Moderators"]),)
    assert page.is_checked("#settings-admins label:has-text('Moderators') input")
    assert page.input_value("#settings-form input[name=accent_color]") == colour
    # And saving again unchanged stores nothing and writes no audit line
    _submit(page)
    assert "Nothing to change" in page.locator(".flash").first.inner_text()
    assert _audits(site) == audits + 1


def test_discord_away_shows_a_message_and_the_role_ids(site, roles, admin_page):
    from pointsbot.discord import rest

    page = admin_page
    # Given admin roles set, and no role list kept yet, and Discord unreachable
    from psycopg.types.json import Jsonb

    site.db.run(lambda conn: conn.execute(
        "UPDATE guilds SET settings = settings || %s, roles = NULL WHERE guild_id = %s",
        (Jsonb({"admin_role_ids": [roles["Event team"]]}), GUILD_A)))  # fmt: skip

    class Unreachable(rest.DiscordClient):
        def _send(self, *args, **kwargs):
            raise rest.DiscordUnavailable("connection refused")

    saved = rest.get_client(), rest._made_here
    rest.set_client(Unreachable(saved[0].base_url, "token"))
    try:
        page.goto(site.admin(f"{G}/settings"))
        # Then the page says so plainly and shows the current ids, in a field that keeps working
        assert "could not be reached" in page.locator("#roles-unavailable").inner_text()
        assert page.input_value("#settings-form input[name=admin_role_ids_text]") == roles["Event team"]
        assert "Traceback" not in page.content()
        # When the admin types a bad id, it is refused beside the field and kept
        page.fill("#settings-form input[name=admin_role_ids_text]", f"{roles['Event team']} mods")
        page.click("#settings-form button[type=submit]")
        page.wait_for_selector("#error-settings-admin_role_ids")
        assert "must be a Discord id" in page.locator("#error-settings-admin_role_ids").inner_text()
        assert (
            page.input_value("#settings-form input[name=admin_role_ids_text]")
            == f"{roles['Event team']} mods"
        )
        assert _settings(site)["admin_role_ids"] == [roles["Event team"]]
    finally:
        rest._client, rest._made_here = saved
    # And once Discord answers again, the names are back (kept for the next pages)
    page.goto(site.admin(f"{G}/settings"))
    assert {"Moderators", "Event team"} <= set(page.locator("#settings-admins .role-name").all_inner_texts())
    assert page.is_checked("#settings-admins label:has-text('Event team') input")
    kept = _sql(site, "SELECT roles IS NOT NULL FROM guilds WHERE guild_id=%s", (GUILD_A,))[0][0]
    assert kept
