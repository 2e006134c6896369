"""The one Discord REST client against the stand-in over HTTP: headers, rate-limit buckets,
429 with retry_after, typed errors, and command registration that changes only what differs."""

from __future__ import annotations

import json
import socket

import pytest

from pointsbot import __version__, commands
from pointsbot.commands import __main__ as commands_cli
from pointsbot.commands.sync import sync_commands
from pointsbot.discord.rest import DiscordClient, DiscordError, DiscordUnavailable, RateLimited
from pointsbot.platform.config import reset_settings
from pointsbot_local import discord_standin_rest
from pointsbot_local.discord_standin import standin

pytestmark = pytest.mark.integration

APP = "100000000000000001"
MESSAGES = "/channels/{channel_id}/messages"


def test_headers_identify_the_bot_and_keep_the_token_off_webhooks(client):
    channel = client.create_dm("222")
    client.edit_original(APP, "tok", {"content": "done"})
    bot_call, webhook_call = standin.sent()
    assert (
        bot_call.headers["user-agent"]
        == f"DiscordBot (https://github.com/pointsbot/pointsbot, {__version__})"
    )
    assert bot_call.headers["authorization"] == "Bot test-bot-token"
    assert "authorization" not in webhook_call.headers  # interaction tokens are the credential
    assert channel.isdigit()


def test_the_client_waits_for_an_empty_bucket_instead_of_hitting_429(client):
    # Given a per-channel limit of 2 messages per 0.3 s
    discord_standin_rest.limiter.configure("POST", MESSAGES, 2, 0.3)
    channel = client.create_dm("222")
    # When the bot sends 5 messages in a row
    for number in range(5):
        client.send_message(channel, {"content": f"message {number}"})
    # Then all arrive, and the client never ran into a 429: it read X-RateLimit-* and waited
    statuses = [e.status for e in standin.sent("POST", MESSAGES)]
    assert statuses == [200] * 5
    assert [m["content"] for m in discord_standin_rest.state.dms_to("222")] == [
        f"message {n}" for n in range(5)
    ]


def test_buckets_are_per_channel(client):
    discord_standin_rest.limiter.configure("POST", MESSAGES, 1, 60.0)
    first, second = client.create_dm("222"), client.create_dm("333")
    client.send_message(first, {"content": "a"})
    client.send_message(second, {"content": "b"})  # another channel: its own bucket
    with pytest.raises(RateLimited):
        client.send_message(first, {"content": "c"})


def test_a_429_is_waited_out_and_retried(client):
    channel = client.create_dm("222")
    standin.inject("POST", MESSAGES, 429, {"message": "You are being rate limited.", "retry_after": 0.05,
                                           "global": False, "code": 0}, headers={"Retry-After": "1"})  # fmt: skip
    message = client.send_message(channel, {"content": "after the wait"})
    assert message["content"] == "after the wait"
    assert [e.status for e in standin.sent("POST", MESSAGES)] == [429, 200]


def test_a_429_longer_than_the_allowed_wait_is_raised(client):
    channel = client.create_dm("222")
    standin.inject(
        "POST", MESSAGES, 429, {"message": "slow down", "retry_after": 30.0, "global": True, "code": 0}
    )
    with pytest.raises(RateLimited) as limited:
        client.send_message(channel, {"content": "x"})
    assert limited.value.retry_after == 30.0 and limited.value.global_
    # A global limit holds back every route, not only the one that hit it
    with pytest.raises(RateLimited):
        client.create_dm("333")
    assert len(standin.sent("POST", "/users/@me/channels")) == 1


def test_the_stand_ins_global_limit(standin_url, fresh_standin):
    discord_standin_rest.limiter.configure_global(3, 60.0)
    client = DiscordClient(standin_url, "bot-token", max_retry_wait=0.5)
    for user in ("1", "2", "3"):
        client.create_dm(user)
    with pytest.raises(RateLimited) as limited:
        client.create_dm("4")
    assert limited.value.global_
    refused = standin.sent()[-1]
    assert refused.status == 429 and refused.response["global"] is True


@pytest.mark.parametrize(("status", "code", "error"), [(403, 50001, DiscordError), (500, 0, DiscordUnavailable),
                                                        (502, 0, DiscordUnavailable)])  # fmt: skip
def test_errors_are_typed(client, status, code, error):
    channel = client.create_dm("222")
    standin.inject("POST", MESSAGES, status, {"code": code, "message": "Missing Access"})
    with pytest.raises(error) as raised:
        client.send_message(channel, {"content": "x"})
    if error is DiscordError:
        assert (raised.value.status, raised.value.code) == (403, 50001)


def test_an_unreachable_api_is_discord_unavailable():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = DiscordClient(f"http://127.0.0.1:{port}/api/v10", "t", timeout=2)
    with pytest.raises(DiscordUnavailable):
        client.create_dm("222")


def test_sync_registers_once_and_then_changes_nothing(client):
    first = sync_commands(client, APP, guild_id="300000000000000001")
    again = sync_commands(client, APP, guild_id="300000000000000001")
    assert first.changed and first.applied and set(first.added) == {c["name"] for c in commands.COMMANDS}
    assert not again.changed and not again.applied
    puts = standin.sent("PUT", "/applications/{application_id}/guilds/{guild_id}/commands")
    assert len(puts) == 1  # the second sync only read
    assert first.definitions_hash == commands.definitions_hash()


def test_sync_overwrites_when_discord_has_something_else(client):
    stale = commands.definitions()
    stale[0]["description"] = "an old description"
    client.bulk_overwrite_commands(APP, [*stale, {"name": "retired", "description": "gone", "type": 1}])
    dry = sync_commands(client, APP, dry_run=True)
    assert (
        dry.changed and not dry.applied and dry.removed == ("retired",) and dry.updated == (stale[0]["name"],)
    )
    result = sync_commands(client, APP)
    assert result.applied
    registered = {c["name"]: c for c in client.get_commands(APP)}
    assert (
        "retired" not in registered
        and registered["balance"]["description"] == commands.COMMANDS[0]["description"]
    )
    assert not sync_commands(client, APP).changed


def test_the_registration_cli_shows_the_diff_then_applies(fresh_standin, monkeypatch, capsys):
    monkeypatch.setenv("DISCORD_API_BASE_URL", fresh_standin)
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "cli-token")
    monkeypatch.setenv("DISCORD_APPLICATION_ID", APP)
    reset_settings()
    try:
        assert commands_cli.main(["sync", "--guild", "300000000000000009", "--dry-run"]) == 0
        dry = capsys.readouterr().out
        assert "+ /points" in dry and "would update" in dry
        assert not standin.sent("PUT")
        assert commands_cli.main(["sync", "--guild", "300000000000000009"]) == 0
        assert "guild 300000000000000009: updated" in capsys.readouterr().out
        assert commands_cli.main(["sync", "--guild", "300000000000000009"]) == 0
        assert "up to date" in capsys.readouterr().out
        assert len(standin.sent("PUT")) == 1
        assert (
            commands_cli.main(["hash"]) == 0
            and capsys.readouterr().out.strip() == commands.definitions_hash()
        )
        assert (
            commands_cli.main(["show"]) == 0 and json.loads(capsys.readouterr().out) == commands.definitions()
        )
    finally:
        reset_settings()


def test_the_inspect_page_and_its_controls(client):
    import urllib.request

    from pointsbot.discord.rest import CannotDmUser
    from pointsbot_local import discord_standin_rest as rest
    from pointsbot_local.server import LocalServer, mount

    mount(rest.INSPECT_PREFIX, rest.inspect_app)
    server = LocalServer("127.0.0.1", 0).start()
    base = server.url + rest.INSPECT_PREFIX
    try:
        # A user who does not accept DMs, set through the page's control
        body = b'{"id": "444", "username": "eve", "accepts_dms": false}'
        request = urllib.request.Request(base + "/users", data=body, method="POST")  # noqa: S310 - a local URL
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - a local URL
            assert json.loads(answer.read())["username"] == "eve"
        with pytest.raises(CannotDmUser):
            client.send_message(client.create_dm("444"), {"content": "hi"})
        client.edit_original(APP, "tok-inspect", {"content": "shown on the page"})
        with urllib.request.urlopen(base, timeout=5) as page:  # noqa: S310
            html = page.read().decode()
        assert "/webhooks/100000000000000001/tok-inspect/messages/@original" in html and "50007" in html
        with urllib.request.urlopen(base + "?format=json", timeout=5) as page:  # noqa: S310
            data = json.loads(page.read())
        assert data["originals"]["tok-inspect"]["content"] == "shown on the page"
        assert data["closed_dms"] == ["444"]
        reset = urllib.request.Request(base + "/reset", data=b"", method="POST")  # noqa: S310
        urllib.request.urlopen(reset, timeout=5).close()  # noqa: S310
        assert rest.state.original("tok-inspect") is None and standin.sent() == []
    finally:
        server.stop()
