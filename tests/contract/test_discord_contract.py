"""The bot's Discord traffic against Discord's OpenAPI description: every request the REST
client sends and every answer the stand-in gives, and every interaction answer the bot makes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from pointsbot import commands
from pointsbot.commands.member import leaderboard_buttons
from pointsbot.commands.sync import sync_commands
from pointsbot.discord import cards, interactions
from pointsbot.discord.interactions import Reply
from pointsbot.discord.rest import CannotDmUser, DiscordError, RateLimited, UnknownWebhook
from pointsbot_local import discord_standin_rest
from pointsbot_local.discord_standin import standin
from pointsbot_local.simulate import command_payload, component_payload

pytestmark = pytest.mark.integration

APP = "100000000000000001"
TOKEN = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OTpzZWNyZXQ"


def _docs_win(exchange):
    """Discord's docs say default_member_permissions is a string (a bit set); the preview spec
    says integer. Its README: where they differ, the docs win. Check the rest as the spec says."""
    if exchange.method == "PUT" and exchange.path.endswith("/commands") and isinstance(exchange.body, list):
        exchange.body = [
            {**c, "default_member_permissions": int(c["default_member_permissions"])}
            if isinstance(c.get("default_member_permissions"), str) else c
            for c in exchange.body
        ]  # fmt: skip
    return exchange


def _all_exchanges_conform(contract) -> int:
    exchanges = standin.sent()
    assert exchanges, "nothing was sent"
    problems = {
        f"{e.method} {e.path} -> {e.status}": contract.check_exchange(_docs_win(e)) for e in exchanges
    }
    assert {k: v for k, v in problems.items() if v} == {}
    return len(exchanges)


def test_dm_traffic_conforms(client, contract):
    # Given a member who accepts DMs and one who does not
    discord_standin_rest.state.set_user("222", "ada")
    discord_standin_rest.state.set_user("333", "bob", accepts_dms=False)
    # When the bot DMs both
    channel = client.create_dm("222")
    message = client.send_message(
        channel, {"content": "You received **5 points**.", "allowed_mentions": {"parse": []}}
    )
    closed = client.create_dm("333")
    with pytest.raises(CannotDmUser) as refused:
        client.send_message(closed, {"content": "hello"})
    # Then the answers are what Discord gives, and every request and answer matches the spec
    assert message["content"] == "You received **5 points**." and message["channel_id"] == channel
    assert refused.value.code == 50007 and refused.value.status == 403
    assert discord_standin_rest.state.dms_to("222")[0]["content"] == message["content"]
    assert _all_exchanges_conform(contract) == 4


def test_interaction_webhook_traffic_conforms(client, contract):
    reply = Reply("**Leaderboard** (page 1 of 2)", components=leaderboard_buttons(1, 2))
    edited = client.edit_original(APP, TOKEN, reply.as_edit())
    fetched = client.get_original(APP, TOKEN)
    extra = client.followup(APP, TOKEN, {"content": "one more thing", "flags": 64})
    discord_standin_rest.state.expire_token("expired-token")
    with pytest.raises(UnknownWebhook):
        client.edit_original(APP, "expired-token", {"content": "too late"})
    assert edited["content"] == fetched["content"] == reply.content
    # Discord numbers the components it returns; otherwise they are what was sent
    returned_buttons = fetched["components"][0]["components"]
    assert [{k: v for k, v in b.items() if k != "id"} for b in returned_buttons] == reply.components[0][
        "components"
    ]
    assert extra["content"] == "one more thing"
    assert _all_exchanges_conform(contract) == 4


def test_command_registration_traffic_conforms(client, contract):
    first = sync_commands(client, APP)
    guild = sync_commands(client, APP, guild_id="300000000000000001")
    assert first.changed and first.applied and guild.changed
    assert _all_exchanges_conform(contract) == 4  # GET + PUT, twice


def test_the_429_answer_conforms(client, contract):
    discord_standin_rest.limiter.configure("POST", "/channels/{channel_id}/messages", 1, 60.0)
    channel = client.create_dm("222")
    client.send_message(channel, {"content": "one"})
    with pytest.raises(RateLimited) as limited:
        client.send_message(channel, {"content": "two"})
    assert 0 < limited.value.retry_after <= 60 and not limited.value.global_
    # The client did not even ask: it knew the bucket was empty. Ask by hand to see the 429.
    request = urllib.request.Request(  # noqa: S310 - the local stand-in
        f"{client.base_url}/channels/{channel}/messages", data=b'{"content":"three"}', method="POST",
        headers={"Authorization": "Bot x", "Content-Type": "application/json"},
    )  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=5)  # noqa: S310 - the local stand-in
    body = json.loads(answer.value.read())
    assert answer.value.code == 429 and body["global"] is False and body["retry_after"] > 0
    assert answer.value.headers["Retry-After"] and answer.value.headers["X-RateLimit-Remaining"] == "0"
    _all_exchanges_conform(contract)


def _callback_errors(contract, answer: dict) -> list[str]:
    schema = contract.request_schema("POST", "/interactions/1/token/callback")
    return contract.errors(schema, answer)


@pytest.mark.parametrize(
    "answer",
    [
        interactions.pong(),
        Reply("You have **5 points**.").as_response(),
        Reply("Only admins can use /points.", ephemeral=True).as_response(),
        Reply(
            "**Leaderboard** (page 2 of 3)", components=leaderboard_buttons(2, 3), update=True
        ).as_response(),
        Reply("**Leaderboard** (page 1 of 3)", components=leaderboard_buttons(1, 3)).as_response(),
        interactions.deferred(interactions.parse(command_payload("history")), ephemeral=True),
        interactions.deferred(interactions.parse(command_payload("balance")), ephemeral=False),
        interactions.deferred(interactions.parse(component_payload("leaderboard:2:next")), ephemeral=False),
        {"type": 8, "data": {"choices": []}},
    ],
    ids=[
        "pong",
        "message",
        "ephemeral",
        "update",
        "buttons",
        "deferred-private",
        "deferred",
        "deferred-update",
        "autocomplete",
    ],
)
def test_every_interaction_answer_shape_conforms(contract, answer):
    assert _callback_errors(contract, answer) == []


def test_a_wrong_answer_would_be_caught(contract):
    # The check can fail: content over Discord's 2000 characters, a type that does not exist.
    assert _callback_errors(contract, {"type": 4, "data": {"content": "x" * 2001}})
    assert _callback_errors(contract, {"type": 99})


def test_the_definitions_conform_to_the_bulk_overwrite_body(contract):
    schema = contract.request_schema("PUT", "/applications/1/commands")
    body = [{**c, "default_member_permissions": None if c["default_member_permissions"] is None
             else int(c["default_member_permissions"])} for c in commands.definitions()]  # fmt: skip
    assert contract.errors(schema, body) == []


def test_admin_sign_in_and_rights_recheck_traffic_conforms(fresh_standin, contract):
    from pointsbot.admin.auth import DiscordOAuthClient, OAuthFailed
    from pointsbot_local.discord_standin_oauth import MANAGE_GUILD, oauth_directory

    # Given a Discord user who manages one guild and owns another, with an access token
    oauth_directory.reset()
    oauth_directory.add_user("200000000000000002", "dora", "Dora")
    oauth_directory.join("200000000000000002", "300000000000000003", "Alpha", permissions=MANAGE_GUILD)
    oauth_directory.join("200000000000000002", "300000000000000004", "Beta", owner=True)
    oauth_directory.tokens["user-access-token"] = "200000000000000002"
    client = DiscordOAuthClient(fresh_standin, APP, "client-secret", "https://example.org/bot")
    try:
        # When the admin site asks who they are and what they manage, then once revoked
        user = client.current_user("user-access-token")
        grants = client.guilds("user-access-token")
        oauth_directory.revoke("200000000000000002")
        with pytest.raises(OAuthFailed):
            client.guilds("user-access-token")
    finally:
        oauth_directory.reset()
    # Then the answers are read right, and every request and answer is as Discord's spec says
    assert user == (200000000000000002, "Dora")
    assert [(g.guild_id, g.can_manage) for g in grants] == [
        (300000000000000003, True),
        (300000000000000004, True),
    ]
    assert _all_exchanges_conform(contract) == 3


def test_season_top_ten_post_traffic_conforms(client, contract):
    # Given a server channel the bot may post in, and one it has no access to
    channel, hidden = "555000000000000101", "555000000000000102"
    discord_standin_rest.state.no_access_channels.add(hidden)
    components, _ = (
        cards.Card().header("### 🏁 Season Winter: final top 10").text("🥇 <@222> · **90 points**").build()
    )
    body = {
        "flags": cards.IS_COMPONENTS_V2,
        "components": list(components),
        "allowed_mentions": {"parse": []},
        "nonce": "season-7",
        "enforce_nonce": True,
    }  # fmt: skip (the shape of seasons.top_ten_body)
    # When the season end posts its table, then posts it again (a run killed after the POST)
    first = client.send_message(channel, body)
    again = client.send_message(channel, body)
    # Then Discord's nonce makes it one message, and a channel without access is refused plainly
    assert again["id"] == first["id"] and len(discord_standin_rest.state.channel_messages(channel)) == 1
    with pytest.raises(DiscordError) as refused:
        client.send_message(hidden, body)
    assert (refused.value.status, refused.value.code) == (403, 50001)
    assert _all_exchanges_conform(contract) == 3
