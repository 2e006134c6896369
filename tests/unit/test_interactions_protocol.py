"""Parsing interactions, the shapes of answers, rights, and the command definitions (no I/O)."""

from __future__ import annotations

import pytest

from pointsbot import commands
from pointsbot.commands import catalog as defs
from pointsbot.commands.dispatch import _REGISTRY, _load_commands, _route, is_admin
from pointsbot.commands.sync import plan
from pointsbot.discord import interactions
from pointsbot.ledger.guilds import policy_from
from pointsbot.platform.config import load_settings
from pointsbot_local.simulate import command_payload, component_payload

pytestmark = pytest.mark.unit


def test_parse_flattens_sub_commands_and_keeps_ids_as_strings():
    payload = command_payload("points add", {"member": "222", "amount": "50", "reason": "r", "silent": "true"},
                              user_id="111", admin=True)  # fmt: skip
    parsed = interactions.parse(payload)
    assert parsed.command == "points add"
    assert parsed.options == {"member": "222", "amount": 50, "reason": "r", "silent": True}
    assert parsed.user_id == "111" and parsed.guild_id == payload["guild_id"]
    assert parsed.users["222"].id == "222"
    assert isinstance(parsed.created_at, float)


def test_permissions_are_a_big_integer_string():
    # Bits above 2**53 must survive: a float would lose them.
    payload = command_payload("balance", permissions=(1 << 60) | (1 << 5))
    parsed = interactions.parse(payload)
    assert parsed.permissions == (1 << 60) | (1 << 5)
    assert parsed.has_permission(interactions.MANAGE_GUILD)


@pytest.mark.parametrize(
    ("permissions", "roles", "admin_roles", "expected"),
    [
        (1 << 3, [], (), True),  # ADMINISTRATOR
        (1 << 5, [], (), True),  # MANAGE_GUILD
        ((1 << 10) | (1 << 11), [], (), False),
        ((1 << 10), ["555"], (555,), True),  # the guild's configured admin role
        ((1 << 10), ["556"], (555,), False),
    ],
)
def test_admin_rights_come_from_the_interaction(permissions, roles, admin_roles, expected):
    parsed = interactions.parse(command_payload("points add", permissions=permissions, roles=roles))
    policy = policy_from(load_settings({}), {"admin_role_ids": [str(r) for r in admin_roles]})
    assert is_admin(parsed, policy) is expected


def test_replies_have_discords_shapes():
    private = interactions.Reply("hi", ephemeral=True)
    assert private.as_response() == {"type": 4, "data": {"content": "hi", "allowed_mentions": {"parse": []},
                                                          "flags": 64}}  # fmt: skip
    update = interactions.Reply("page 2", components=({"type": 1, "components": []},), update=True)
    assert update.as_response()["type"] == 7 and "flags" not in update.as_response()["data"]
    assert "flags" not in private.as_edit()
    assert interactions.Reply.from_json(private.to_json()) == private


def test_deferred_answers():
    command = interactions.parse(command_payload("history"))
    button = interactions.parse(component_payload("leaderboard:2:next"))
    assert interactions.deferred(command, ephemeral=True) == {"type": 5, "data": {"flags": 64}}
    assert interactions.deferred(command, ephemeral=False) == {"type": 5}
    assert interactions.deferred(button, ephemeral=True) == {"type": 6}


def test_leaderboard_buttons_route_to_the_leaderboard_page():
    # A button posted before the keyset names only its page, and still leads to it.
    assert _route(interactions.parse(component_payload("leaderboard:3:next"))) == (
        "leaderboard",
        {"page": 3, "cursor": "next"},
        True,
    )
    assert _route(interactions.parse(component_payload("leaderboard:4:prev:-12:730000000000000001"))) == (
        "leaderboard",
        {"page": 4, "cursor": "prev:-12:730000000000000001"},
        True,
    )
    assert _route(interactions.parse(component_payload("something-else")))[0] == ""


def test_every_definition_has_a_handler_and_every_handler_a_definition():
    _load_commands()
    defined = set()
    for command in defs.SLASH_COMMANDS:
        subs = [o["name"] for o in command["options"] if o["type"] == defs.SUB_COMMAND]
        defined.update(f"{command['name']} {s}" for s in subs) if subs else defined.add(command["name"])
    assert defined == set(_REGISTRY)
    # A context menu runs the slash command it stands for
    from pointsbot.commands.menus import CONTEXT_MENUS

    menus = {c["name"] for c in defs.COMMANDS if c["type"] != defs.CHAT_INPUT}
    assert menus == set(CONTEXT_MENUS) and set(CONTEXT_MENUS.values()) <= set(_REGISTRY)


def test_admin_commands_are_registered_with_default_member_permissions():
    by_name = {c["name"]: c for c in defs.COMMANDS}
    assert {"points", "emails", "member"} <= defs.ADMIN_COMMANDS
    for name in ("points", "emails", "member"):
        assert by_name[name]["default_member_permissions"] == str(1 << 5)
    for name in ("balance", "leaderboard", "rank", "history", "achievements", "email", "give"):
        assert by_name[name]["default_member_permissions"] is None
    assert all(c["contexts"] == [0] for c in defs.COMMANDS)  # never in DMs: the data is per guild


def test_definitions_hash_is_stable_and_sensitive():
    first = commands.definitions_hash()
    assert first == commands.definitions_hash() and len(first) == 64
    changed = commands.definitions()
    changed[0]["description"] += "!"
    assert defs.canonical_json(changed) != defs.canonical_json(defs.COMMANDS)


def _as_discord_returns(definitions: list[dict]) -> list[dict]:
    """What GET .../commands gives back: ids, versions, permissions as strings, defaults filled."""
    returned = []
    for index, command in enumerate(definitions):
        item = {
            **command,
            "id": str(900 + index),
            "application_id": "1",
            "version": "1",
            "dm_permission": True,
        }
        item["default_member_permissions"] = command["default_member_permissions"]
        # Asked with_localizations=true (as sync asks), Discord gives the localizations back;
        # an option without any comes back with null.
        item["options"] = [{"name_localizations": None, **o} for o in command["options"]]
        returned.append(item)
    return returned


def test_plan_sees_no_change_when_discord_has_the_same_commands():
    result = plan(_as_discord_returns(commands.definitions()))
    assert not result.changed and result.diff == ()


def test_plan_names_what_changed():
    remote = _as_discord_returns(commands.definitions())
    remote = [c for c in remote if c["name"] != "rank"]  # missing on Discord
    remote.append({**remote[0], "name": "old-command"})  # no longer defined
    remote[0] = {**remote[0], "description": "stale text"}  # differs
    result = plan(remote)
    assert result.changed
    assert result.added == ("rank",) and result.removed == ("old-command",) and result.updated == ("balance",)
    assert any("description" in line for line in result.diff)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("Ada@Example.COM", "Ada@example.com"),
        ("  first.last+tag@sub.example.org ", "first.last+tag@sub.example.org"),
        ("no-at-sign.example.com", None),
        ("two@@example.com", None),
        ("spaces in@example.com", None),
        ("dots..twice@example.com", None),
        ("nodot@localhost", None),
        ("ünicode@example.com", None),
        ("x" * 65 + "@example.com", None),
        ("a@" + "b" * 250 + ".com", None),
        ("", None),
    ],
)
def test_email_addresses_are_checked_before_anything_is_stored(address, expected):
    from pointsbot.community import emails
    from pointsbot.platform.errors import InvalidInput

    if expected is None:
        with pytest.raises(InvalidInput):
            emails.validate_address(address)
    else:
        assert emails.validate_address(address) == expected
