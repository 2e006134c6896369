"""The Settings page's loaders and its save on real Postgres: the guild's roles kept and asked of
Discord at most once per ROLES_MAX_AGE (what was kept when Discord is away), every setting
checked on its own with the reason in words, only what changed stored and audited."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pointsbot.admin import actions
from pointsbot.admin.sessions import Identity
from pointsbot.community import profiles, windows
from pointsbot.discord.rest import DiscordError, DiscordUnavailable
from pointsbot.ledger import guilds

pytestmark = pytest.mark.integration

GUILD = 790000000000000001
ADMIN = Identity("local", "alice", (GUILD,))


class RolesFromDiscord:
    """What GET /guilds/{id}/roles answers (Discord's shapes), counting the calls."""

    def __init__(self, roles=None, error: Exception | None = None) -> None:
        self.roles = roles if roles is not None else [
            {"id": str(GUILD), "name": "@everyone", "position": 0, "managed": False},
            {"id": "791", "name": "Helpers", "position": 2, "managed": False},
            {"id": "792", "name": "Moderators", "position": 7, "managed": False},
            {"id": "793", "name": "pointsbot", "position": 10, "managed": True},
        ]  # fmt: skip
        self.error = error
        self.calls = 0

    def guild_roles(self, guild_id):
        self.calls += 1
        assert guild_id == str(GUILD)
        if self.error:
            raise self.error
        return self.roles


@pytest.fixture
def guild(db):
    db.run(
        lambda conn: conn.execute(
            "INSERT INTO guilds (guild_id) VALUES (%s) ON CONFLICT DO NOTHING", (GUILD,)
        )
    )
    db.run(
        lambda conn: conn.execute(
            "UPDATE guilds SET settings = '{}', roles = NULL WHERE guild_id = %s", (GUILD,)
        )
    )
    return GUILD


def test_roles_are_asked_once_then_kept_and_choosable_by_name(db, guild):
    # Given Discord's list of the guild's roles
    discord = RolesFromDiscord()
    # When two pages want them
    first = profiles.guild_roles(db, discord, guild)
    second = profiles.guild_roles(db, discord, guild)
    # Then Discord was asked once; the names are kept, highest first, without @everyone and the bot's role
    assert discord.calls == 1
    assert (
        [r.name for r in first.choosable] == [r.name for r in second.choosable] == ["Moderators", "Helpers"]
    )
    assert second.name_of(791) == "Helpers" and second.problem is None
    # And once the list is older than ROLES_MAX_AGE (or the admin asks), Discord is asked again
    db.run(lambda conn: conn.execute("UPDATE guilds SET roles_checked_at = now() - %s WHERE guild_id = %s",
                                     (profiles.ROLES_MAX_AGE + timedelta(seconds=1), guild)))  # fmt: skip
    profiles.guild_roles(db, discord, guild)
    profiles.guild_roles(db, discord, guild, refresh=True)
    assert discord.calls == 3


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (DiscordUnavailable("connection refused"), "Discord could not be reached to list the roles."),
        (DiscordError(403, 50001, "Missing Access"), "The bot is not in this server any more"),
    ],
)
def test_discord_away_gives_what_was_kept_and_says_so(db, guild, error, words):
    # Given nothing kept and Discord unreachable: no roles, a plain sentence
    nothing = profiles.guild_roles(db, RolesFromDiscord(error=error), guild)
    assert nothing.roles is None and words in nothing.problem
    # Given a list kept earlier, now stale, and Discord unreachable: the kept list, and the sentence
    profiles.guild_roles(db, RolesFromDiscord(), guild)
    kept = profiles.guild_roles(db, RolesFromDiscord(error=error), guild, refresh=True)
    assert [r.name for r in kept.choosable] == ["Moderators", "Helpers"] and words in kept.problem


def test_each_refused_setting_says_why_in_words(db, guild):
    # Given a form with several bad values
    changes = {"max_change": 0, "daily_cap": -1, "currency_name": "", "accent_color": 0x1000000,
               "admin_role_ids": ["12", "mods"], "time_zone": "Mars/Olympus_Mons",
               "window_excluded_sources": ["nowhere"], "transfers_enabled": True}  # fmt: skip
    # When it is checked
    problems = db.run(actions.guild_settings_problems, changes)
    # Then each bad value has its reason, in words that never name the internal key
    assert problems == {
        "max_change": "The largest single change must be above zero.",
        "daily_cap": "The daily cap must be a whole number, zero or above.",
        "currency_name": "The currency name must be 1 to 32 characters.",
        "accent_color": "The card colour must be a colour from #000000 to #FFFFFF.",
        "admin_role_ids": "A role id must be a Discord id (digits), not 'mods'",
        "time_zone": problems["time_zone"],
        "window_excluded_sources": problems["window_excluded_sources"],
    }
    assert "is not a time zone I know" in problems["time_zone"]
    assert "Unknown source 'nowhere'" in problems["window_excluded_sources"]
    for key, message in problems.items():
        assert key not in message
    # And a save with them stores nothing
    with pytest.raises(Exception, match="above zero"):
        db.run(actions.save_guild_settings, ADMIN, guild, changes)
    assert db.run(guilds.ensure_guild, guild) == {}


def test_a_save_stores_and_audits_only_what_changed(db, guild, settings):
    def audits():
        return db.run(lambda conn: conn.execute(
            "SELECT before, after FROM admin_audit WHERE guild_id = %s AND action = 'guild.settings' ORDER BY id",
            (guild,)).fetchall())  # fmt: skip

    # When an admin sets roles, the time zone and what counts on the weekly boards
    changed = db.run(actions.save_guild_settings, ADMIN, guild, {
        "admin_role_ids": ["792", "791", "792"], "time_zone": "Europe/Berlin", "accent_color": 0xFF8800,
        "window_excluded_sources": ["api", "purchase"], "window_excluded_kinds": []})  # fmt: skip
    # Then the bot reads them (roles once each), and the audit line holds exactly those settings
    assert changed is True
    policy = db.run(guilds.guild_policy, settings, guild)
    assert policy.admin_role_ids == (792, 791) and policy.accent_color == 0xFF8800
    rules = db.run(windows.counting_rules, guild)
    assert rules.time_zone == "Europe/Berlin" and rules.excluded_sources == ("api", "purchase")
    ((before, after),) = audits()
    assert set(after) == {"admin_role_ids", "time_zone", "accent_color", "window_excluded_sources",
                          "window_excluded_kinds"} and before == dict.fromkeys(after)  # fmt: skip
    # When the same form is saved again: nothing changes, nothing is audited
    same = db.run(actions.save_guild_settings, ADMIN, guild, {"admin_role_ids": ["792", "791"],
                                                              "time_zone": "Europe/Berlin"})  # fmt: skip
    assert same is False and len(audits()) == 1
