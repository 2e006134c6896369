"""The guild and member reads the admin site's names and avatars come from, on the stand-in,
against Discord's OpenAPI description: GET /guilds/{guild_id} (name, icon) and
GET /guilds/{guild_id}/members/{user_id} with a nickname and a server avatar."""

from __future__ import annotations

import pytest
from test_discord_contract import _all_exchanges_conform

from pointsbot.discord.rest import DiscordClient, DiscordError
from pointsbot_local import discord_standin_rest

pytestmark = pytest.mark.integration

GUILD = "300000000000000088"
USER = "200000000000000077"
HASH = "0123456789abcdef0123456789abcdef"
state = discord_standin_rest.state


def test_guild_and_member_reads_conform(client: DiscordClient, contract) -> None:
    # Given a guild with a name and an icon, and a member with a nickname and server avatar
    state.set_guild(GUILD, "Alpha Guild", icon=HASH)
    state.set_user(USER, "frank", global_name="Frank", avatar=HASH)
    state.set_member(GUILD, USER, nick="Franky", avatar="a_" + HASH)
    # When the bot reads them
    guild = client.guild(GUILD)
    member = client.guild_member(GUILD, USER)
    # Then the answers carry what the site shows, in Discord's shape
    assert (guild["id"], guild["name"], guild["icon"]) == (GUILD, "Alpha Guild", HASH)
    assert (member["nick"], member["avatar"], member["user"]["global_name"]) == (
        "Franky",
        "a_" + HASH,
        "Frank",
    )
    assert _all_exchanges_conform(contract) == 2


def test_an_unknown_guild_id_is_refused_in_discords_shape(client: DiscordClient, contract) -> None:
    with pytest.raises(DiscordError) as bad:
        client.guild("not-a-snowflake")
    assert (bad.value.status, bad.value.code) == (400, 50035)
    _all_exchanges_conform(contract)
