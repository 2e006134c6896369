"""GET /guilds/{guild_id}/channels (the admin site's channel picker for a season's final top 10)
on the stand-in, against Discord's OpenAPI description: the request the client sends and the
answer, a refusal in Discord's shape."""

from __future__ import annotations

import pytest
from test_discord_contract import _all_exchanges_conform

from pointsbot.discord.rest import DiscordClient, DiscordError
from pointsbot_local import discord_standin_rest

pytestmark = pytest.mark.integration

GUILD = "300000000000000099"
state = discord_standin_rest.state


def test_guild_channels_conform(client: DiscordClient, contract) -> None:
    # Given a guild with a text channel, an announcement channel, a voice channel and a category
    made = {
        state.add_channel(GUILD, "results", kind=0, position=2): "results",
        state.add_channel(GUILD, "news", kind=5, position=1): "news",
        state.add_channel(GUILD, "Lounge", kind=2, position=3): "Lounge",
        state.add_channel(GUILD, "Text channels", kind=4, position=0): "Text channels",
    }
    # When the bot lists them
    channels = client.guild_channels(GUILD)
    # Then every one comes back with its name and type, in Discord's shape
    assert {c["id"]: c["name"] for c in channels} == made
    assert {c["name"]: c["type"] for c in channels} == {
        "results": 0,
        "news": 5,
        "Lounge": 2,
        "Text channels": 4,
    }
    assert all(c["guild_id"] == GUILD for c in channels)
    assert _all_exchanges_conform(contract) == 1


def test_a_bad_guild_id_is_refused_in_discords_shape(client: DiscordClient, contract) -> None:
    with pytest.raises(DiscordError) as bad:
        client.guild_channels("not-a-snowflake")
    assert (bad.value.status, bad.value.code) == (400, 50035)
    _all_exchanges_conform(contract)
