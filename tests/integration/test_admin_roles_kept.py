"""The Rewards and Seasons pages read the guild's roles as kept in Postgres (sql/055, as the
Settings page does, issue 12): with the kept list fresh a page view makes no call to Discord for
them; older than profiles.ROLES_MAX_AGE, one call for the page, and the list is kept again.

In-process requests (tests/integration/_admin_browser.py); Discord's client is replaced by one
that counts the calls."""

from __future__ import annotations

from datetime import timedelta

import pytest
from _admin_browser import Browser, admin_site_database
from psycopg.types.json import Jsonb

from pointsbot.community import profiles
from pointsbot.discord import rest
from pointsbot.platform import runtime

pytestmark = pytest.mark.integration
GUILD = 773000000000000001
ADMIN_NAME = "roles-kept-admin"
ADMIN_PASSWORD = "roles kept admin's password"
KEPT = [{"id": "773000000000000011", "name": "Kept Champion", "position": 4, "managed": False},
        {"id": "773000000000000012", "name": "Kept Helper", "position": 2, "managed": False},
        {"id": "773000000000000013", "name": "Some bot", "position": 6, "managed": True},
        {"id": str(GUILD), "name": "@everyone", "position": 0, "managed": False}]  # fmt: skip
FROM_DISCORD = [{"id": "773000000000000021", "name": "Fresh From Discord", "position": 3, "managed": False}]


@pytest.fixture(scope="module")
def site(database_url):
    db = admin_site_database(database_url, GUILD, (ADMIN_NAME, ADMIN_PASSWORD))
    yield db
    runtime.reset()


@pytest.fixture
def asked(monkeypatch) -> list[str]:
    """Every call for the guild's roles Discord gets, by any client (a stale list is answered)."""
    calls: list[str] = []

    def guild_roles(self, guild_id):
        calls.append(str(guild_id))
        return FROM_DISCORD

    monkeypatch.setattr(rest.DiscordClient, "guild_roles", guild_roles)
    monkeypatch.setattr(rest.DiscordClient, "guild_channels", lambda self, guild_id: [], raising=False)
    return calls


def _keep(site, age: timedelta) -> None:
    site.run(lambda conn: conn.execute("UPDATE guilds SET roles = %s, roles_checked_at = now() - %s "
                                       "WHERE guild_id = %s", (Jsonb(KEPT), age, GUILD)))  # fmt: skip


def _admin(monkeypatch) -> Browser:
    monkeypatch.delenv("ADMIN_BASE_URL", raising=False)
    browser = Browser("198.51.100.95")
    assert browser.sign_in(ADMIN_NAME, ADMIN_PASSWORD)["statusCode"] == 303
    return browser


@pytest.mark.parametrize("page", ["/rewards", "/seasons"])
def test_a_fresh_kept_role_list_is_shown_without_asking_discord(site, asked, monkeypatch, page):
    # Given roles kept a minute ago
    _keep(site, timedelta(minutes=1))
    admin = _admin(monkeypatch)
    # When the admin opens the page
    result = admin.request("GET", f"/admin/g/{GUILD}{page}")
    body = result["body"]
    # Then its role picker offers the kept roles by name, highest first, none a member cannot hold
    assert result["statusCode"] == 200
    assert body.index(">Kept Champion<") < body.index(">Kept Helper<")
    assert ">Some bot<" not in body and ">@everyone<" not in body
    # And Discord was not asked for them
    assert asked == []


@pytest.mark.parametrize("page", ["/rewards", "/seasons"])
def test_a_stale_kept_role_list_is_asked_of_discord_once_and_kept(site, asked, monkeypatch, page):
    # Given roles kept longer ago than the list lives
    _keep(site, profiles.ROLES_MAX_AGE + timedelta(minutes=1))
    admin = _admin(monkeypatch)
    # When the admin opens the page
    body = admin.request("GET", f"/admin/g/{GUILD}{page}")["body"]
    # Then Discord is asked once, its answer shown and kept for the next view
    assert asked == [str(GUILD)] and ">Fresh From Discord<" in body
    again = admin.request("GET", f"/admin/g/{GUILD}{page}")["body"]
    assert asked == [str(GUILD)] and ">Fresh From Discord<" in again
