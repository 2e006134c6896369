"""Guild roles on the stand-in, against Discord's OpenAPI description: granting and removing a
member's role (204), Discord's refusals (50013 for a role at or above the bot's highest role,
10011, 10007) in its error shape, the guild's roles and a member, the audit-log reason header,
and the admin site's "can the bot grant this role?" check."""

from __future__ import annotations

import pytest
from test_discord_contract import _all_exchanges_conform

from pointsbot.community.roles import bot_can_grant, grant_check_from
from pointsbot.discord.permissions import MANAGE_ROLES
from pointsbot.discord.rest import DiscordClient, DiscordError, audit_log_reason
from pointsbot_local import discord_standin_rest
from pointsbot_local.discord_standin import standin

pytestmark = pytest.mark.integration

GUILD = "300000000000000077"
USER = "200000000000000066"
BOT = "100000000000000001"
state = discord_standin_rest.state


def test_member_role_traffic_conforms(client: DiscordClient, contract) -> None:
    # Given a guild with a role below the bot's, one above it, and a member who left
    below = state.add_role(GUILD, "Supporter", position=2)
    above = state.add_role(GUILD, "Moderators", position=20)
    state.leave(GUILD, "200000000000000099")
    # When the bot grants, removes, and is refused, and reads the roles and a member
    client.add_member_role(GUILD, USER, below, "Bought: Supporter (purchase 12)")
    granted = client.guild_member(GUILD, USER)
    client.remove_member_role(GUILD, USER, below, "Refunded")
    refusals = {}
    for name, call in {
        "above": lambda: client.add_member_role(GUILD, USER, above, "too high"),
        "unknown role": lambda: client.add_member_role(GUILD, USER, "123456789", ""),
        "left": lambda: client.add_member_role(GUILD, "200000000000000099", below, ""),
        "remove above": lambda: client.remove_member_role(GUILD, USER, above, ""),
    }.items():
        with pytest.raises(DiscordError) as refused:
            call()
        refusals[name] = (refused.value.status, refused.value.code, refused.value.message)
    roles = client.guild_roles(GUILD)
    # Then the answers are Discord's, and every request and answer is as the spec says
    assert below in granted["roles"] and state.member_roles(GUILD, USER) == []
    assert refusals == {
        "above": (403, 50013, "Missing Permissions"),
        "unknown role": (404, 10011, "Unknown Role"),
        "left": (404, 10007, "Unknown Member"),
        "remove above": (403, 50013, "Missing Permissions"),
    }
    assert {r["name"]: r["position"] for r in roles} == {"@everyone": 0, "pointsbot": 10, "Supporter": 2,
                                                          "Moderators": 20}  # fmt: skip
    assert [e.status for e in standin.sent(route="/guilds/{guild_id}/members/{user_id}/roles/{role_id}")] == [
        204, 204, 403, 404, 404, 403,
    ]  # fmt: skip
    assert _all_exchanges_conform(contract) == 8


def test_the_audit_log_reason_arrives_as_written(client: DiscordClient) -> None:
    role = state.add_role(GUILD, "Émoji ✨", position=1)
    client.add_member_role(GUILD, USER, role, "Reached 1,000 points → «Émoji ✨»\nnext line")
    sent = standin.sent("PUT")[-1]
    assert sent.headers["x-audit-log-reason"].isascii()  # URL-encoded, one line
    assert state.audit_log[-1]["reason"] == "Reached 1,000 points → «Émoji ✨» next line"
    assert audit_log_reason("") == {} and len(audit_log_reason("x" * 900)["X-Audit-Log-Reason"]) == 512


def test_bad_ids_and_no_token_are_refused_in_discords_shape(fresh_standin, contract) -> None:
    anonymous = DiscordClient(fresh_standin, "")
    with pytest.raises(DiscordError) as unauthorized:
        anonymous.guild_roles(GUILD)
    assert unauthorized.value.status == 401
    client = DiscordClient(fresh_standin, "t")
    with pytest.raises(DiscordError) as bad:
        client.add_member_role(GUILD, USER, "abc", "")
    assert (bad.value.status, bad.value.code) == (400, 50035)
    _all_exchanges_conform(contract)


def test_bot_can_grant_says_plainly_why_not(client: DiscordClient) -> None:
    fine = state.add_role(GUILD, "Regular", position=3)
    high = state.add_role(GUILD, "Staff", position=12)
    check = bot_can_grant(client, int(GUILD), int(fine), BOT)
    assert check.ok and check.role_name == "Regular"
    check = bot_can_grant(client, int(GUILD), int(high), BOT)
    assert not check.ok and "at or above the bot's highest role (pointsbot)" in check.reason
    assert "no role with id 42" in bot_can_grant(client, int(GUILD), 42, BOT).reason
    assert "@everyone" in bot_can_grant(client, int(GUILD), int(GUILD), BOT).reason
    bot_role = state.guild(GUILD).bot_role_id
    assert "managed by an integration" in bot_can_grant(client, int(GUILD), int(bot_role), BOT).reason
    # Without Manage Roles the position does not matter
    state.guild(GUILD).roles[bot_role]["permissions"] = "0"
    check = bot_can_grant(client, int(GUILD), int(fine), BOT)
    assert not check.ok and "Manage Roles" in check.reason
    # Discord away: a plain sentence, no exception
    standin.inject("GET", "/guilds/{guild_id}/roles", 502, {"message": "Bad Gateway"})
    assert "could not be reached" in bot_can_grant(client, int(GUILD), int(fine), BOT).reason


def test_the_grant_check_by_discords_rules() -> None:
    guild = 1
    roles = [
        {"id": "1", "name": "@everyone", "permissions": "0", "position": 0},
        {"id": "10", "name": "bot", "permissions": str(MANAGE_ROLES), "position": 5, "managed": True},
        {"id": "11", "name": "helper", "permissions": str(1 << 3), "position": 2},  # Administrator
        {"id": "20", "name": "low", "permissions": "0", "position": 4},
        {"id": "21", "name": "same", "permissions": "0", "position": 5},
    ]
    assert grant_check_from(guild, 20, roles, ["10"]).ok
    assert not grant_check_from(guild, 21, roles, ["10"]).ok  # equal position: not below
    # Administrator gives the right, but the hierarchy still holds
    assert grant_check_from(guild, 20, [{**r, "permissions": "0"} if r["id"] == "10" else r for r in roles],
                            ["10", "11"]).ok  # fmt: skip
    assert not grant_check_from(guild, 20, roles, ["11"]).ok  # highest role 'helper' (2) is below 'low' (4)
    assert not grant_check_from(guild, 20, roles, []).ok
