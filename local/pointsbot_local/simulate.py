"""The interaction simulator: sign an interaction with the local key and send it as Discord would.

    python -m pointsbot_local.simulate ping
    python -m pointsbot_local.simulate balance
    python -m pointsbot_local.simulate --as admin points add member=222 amount=50 reason="helped out"
    python -m pointsbot_local.simulate click leaderboard:2:next
    python -m pointsbot_local.simulate inspect

Words up to the first key=value name the command; key=value pairs are its options (typed by
the command definitions). A deferred answer is followed to its final text by reading the
stand-in's @original message. The builders are used by the tests as well.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pointsbot.commands.catalog import BOOLEAN, COMMANDS, INTEGER, SUB_COMMAND, USER

from .keys import KeyPair

DEFAULT_GUILD = "300000000000000001"
DEFAULT_CHANNEL = "300000000000000002"
DEFAULT_MEMBER = "200000000000000001"
DEFAULT_APPLICATION = "100000000000000001"
# What a plain member typically has: view channels, send messages, read history, use commands.
MEMBER_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 16) | (1 << 31)
ADMIN_PERMISSIONS = MEMBER_PERMISSIONS | (1 << 3)
DISCORD_EPOCH_MS = 1_420_070_400_000
_sequence = itertools.count()


def snowflake(at: float | None = None) -> str:
    """A new id with the time in it, as Discord's interaction ids have."""
    millis = int((time.time() if at is None else at) * 1000) - DISCORD_EPOCH_MS
    return str((millis << 22) | (os.getpid() & 0x1F) << 17 | (next(_sequence) & 0x1FFFF))


def _user(user_id: str, name: str | None = None) -> dict[str, Any]:
    return {"id": user_id, "username": name or f"user{user_id[-4:]}", "global_name": name, "avatar": None,
            "discriminator": "0", "public_flags": 0}  # fmt: skip


def _find(path: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The definition of a command path and the option definitions of its leaf."""
    top = next((c for c in COMMANDS if c["name"] == path[0]), None)
    if top is None:
        raise ValueError(f"no command /{path[0]}")
    options = top.get("options") or []
    for name in path[1:]:
        sub = next((o for o in options if o["name"] == name and o["type"] == SUB_COMMAND), None)
        if sub is None:
            raise ValueError(f"/{' '.join(path)}: no sub-command {name!r}")
        options = sub.get("options") or []
    return top, options


def _typed(definition: dict[str, Any], raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    if definition["type"] == INTEGER:
        return int(raw)
    if definition["type"] == BOOLEAN:
        return raw.lower() in ("1", "true", "yes", "on")
    if definition["type"] == USER:
        return raw.strip("<@!>")
    return raw


def command_payload(
    path: str | list[str],
    options: dict[str, Any] | None = None,
    *,
    user_id: str = DEFAULT_MEMBER,
    username: str | None = None,
    guild_id: str | None = DEFAULT_GUILD,
    admin: bool = False,
    permissions: int | None = None,
    roles: list[str] | None = None,
    application_id: str = DEFAULT_APPLICATION,
    interaction_id: str | None = None,
    token: str | None = None,
    bots: set[str] | None = None,
    locale: str = "en-US",
    guild_locale: str = "en-US",
) -> dict[str, Any]:
    """An APPLICATION_COMMAND interaction shaped like Discord's, options typed by the definitions."""
    words = path.split() if isinstance(path, str) else list(path)
    _top, leaf_definitions = _find(words)
    by_name = {o["name"]: o for o in leaf_definitions}
    leaf: list[dict[str, Any]] = []
    resolved_users: dict[str, Any] = {}
    resolved_members: dict[str, Any] = {}
    for name, raw in (options or {}).items():
        if name not in by_name:
            raise ValueError(f"/{' '.join(words)} has no option {name!r}")
        value = _typed(by_name[name], raw)
        leaf.append({"name": name, "type": by_name[name]["type"], "value": value})
        if by_name[name]["type"] == USER:
            resolved_users[value] = {**_user(value), **({"bot": True} if value in (bots or ()) else {})}
            resolved_members[value] = {"roles": [], "nick": None, "permissions": str(MEMBER_PERMISSIONS)}
    data_options: list[dict[str, Any]] = leaf
    for name in reversed(words[1:]):
        data_options = [{"name": name, "type": SUB_COMMAND, "options": data_options}]
    data: dict[str, Any] = {"id": snowflake(), "name": words[0], "type": 1, "options": data_options}
    if resolved_users:
        data["resolved"] = {"users": resolved_users, "members": resolved_members}
    payload = _base(
        2, user_id, username, guild_id, admin, permissions, roles, application_id, interaction_id, token
    )
    payload["data"] = data
    return _localized(payload, locale, guild_locale)


def _localized(payload: dict[str, Any], locale: str, guild_locale: str) -> dict[str, Any]:
    payload["locale"] = locale
    if "guild_locale" in payload:
        payload["guild_locale"] = guild_locale
    return payload


def autocomplete_payload(
    path: str | list[str], options: dict[str, Any], focused: str, **kwargs: Any
) -> dict[str, Any]:
    """An APPLICATION_COMMAND_AUTOCOMPLETE interaction: the member is typing in `focused`
    (the options given so far, as Discord sends them: partial values, one focused)."""
    payload = command_payload(path, options, **kwargs)
    payload["type"] = 4
    level = payload["data"]["options"]
    while level and level[0]["type"] == SUB_COMMAND:
        level = level[0]["options"]
    for option in level:
        if option["name"] == focused:
            option["focused"] = True
    return payload


def menu_payload(
    name: str,
    target_id: str,
    *,
    message: dict[str, Any] | None = None,
    target_bot: bool = False,
    user_id: str = DEFAULT_MEMBER,
    guild_id: str | None = DEFAULT_GUILD,
    admin: bool = False,
    application_id: str = DEFAULT_APPLICATION,
    interaction_id: str | None = None,
    token: str | None = None,
    locale: str = "en-US",
    guild_locale: str = "en-US",
) -> dict[str, Any]:
    """A context-menu command: "Points profile" on a member (`target_id` a user), or a message
    command (`message` = {"id", "channel_id", "author_id"[, "bot"]}, target_id its id)."""
    payload = _base(2, user_id, None, guild_id, admin, None, None, application_id, interaction_id, token)
    if message is None:
        resolved = {"users": {target_id: {**_user(target_id), **({"bot": True} if target_bot else {})}},
                    "members": {target_id: {"roles": [], "nick": None, "permissions": str(MEMBER_PERMISSIONS)}}}  # fmt: skip
        kind = 2
    else:
        author = {**_user(message["author_id"]), **({"bot": True} if message.get("bot") else {})}
        resolved = {"messages": {target_id: {"id": target_id, "channel_id": message.get("channel_id", DEFAULT_CHANNEL),
                                             "content": message.get("content", "a helpful answer"), "author": author,
                                             "type": 0, "timestamp": "2026-01-01T00:00:00+00:00"}}}  # fmt: skip
        kind = 3
    payload["data"] = {
        "id": snowflake(),
        "name": name,
        "type": kind,
        "target_id": target_id,
        "resolved": resolved,
    }
    return _localized(payload, locale, guild_locale)


def modal_payload(
    custom_id: str,
    values: dict[str, Any],
    *,
    user_id: str = DEFAULT_MEMBER,
    guild_id: str | None = DEFAULT_GUILD,
    admin: bool = False,
    application_id: str = DEFAULT_APPLICATION,
    interaction_id: str | None = None,
    token: str | None = None,
    locale: str = "en-US",
    guild_locale: str = "en-US",
) -> dict[str, Any]:
    """A MODAL_SUBMIT interaction: each field in a Label, as Discord sends them (a checkbox for
    a True/False value, a text input otherwise)."""
    payload = _base(5, user_id, None, guild_id, admin, None, None, application_id, interaction_id, token)
    fields = []
    for field_id, value in values.items():
        if isinstance(value, bool):
            fields.append({"type": 18, "component": {"type": 23, "custom_id": field_id, "value": value}})
        else:
            fields.append({"type": 18, "component": {"type": 4, "custom_id": field_id, "value": str(value)}})
    payload["data"] = {"custom_id": custom_id, "components": fields}
    return _localized(payload, locale, guild_locale)


def component_payload(
    custom_id: str,
    *,
    user_id: str = DEFAULT_MEMBER,
    guild_id: str | None = DEFAULT_GUILD,
    admin: bool = False,
    message: dict[str, Any] | None = None,
    application_id: str = DEFAULT_APPLICATION,
    interaction_id: str | None = None,
    token: str | None = None,
    locale: str = "en-US",
    guild_locale: str = "en-US",
) -> dict[str, Any]:
    """A MESSAGE_COMPONENT interaction: a button on a message was clicked."""
    payload = _base(3, user_id, None, guild_id, admin, None, None, application_id, interaction_id, token)
    payload["data"] = {"custom_id": custom_id, "component_type": 2}
    payload["message"] = message or {
        "id": snowflake(),
        "channel_id": DEFAULT_CHANNEL,
        "content": "",
        "components": [],
    }
    return _localized(payload, locale, guild_locale)


def _base(kind: int, user_id: str, username: str | None, guild_id: str | None, admin: bool,
          permissions: int | None, roles: list[str] | None, application_id: str,
          interaction_id: str | None, token: str | None) -> dict[str, Any]:  # fmt: skip
    payload: dict[str, Any] = {
        "id": interaction_id or snowflake(),
        "application_id": application_id,
        "type": kind,
        "token": token or "sim-" + secrets.token_urlsafe(48),
        "version": 1,
        "channel_id": DEFAULT_CHANNEL,
        "locale": "en-US",
        "entitlements": [],
    }
    if guild_id is None:
        payload["user"] = _user(user_id, username)
        payload["context"] = 1
        return payload
    perms = permissions if permissions is not None else (ADMIN_PERMISSIONS if admin else MEMBER_PERMISSIONS)
    payload.update(
        guild_id=guild_id,
        guild_locale="en-US",
        context=0,
        app_permissions=str(MEMBER_PERMISSIONS),
        member={"user": _user(user_id, username), "roles": list(roles or []), "permissions": str(perms),
                "nick": None, "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False, "mute": False,
                "flags": 0},
    )  # fmt: skip
    return payload


def signed(
    payload: dict[str, Any] | bytes, keys: KeyPair, timestamp: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """The body and headers Discord sends: X-Signature-Ed25519 over timestamp + body."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    stamp = timestamp or str(int(time.time()))
    return body, {
        "content-type": "application/json",
        "x-signature-ed25519": keys.sign(stamp, body),
        "x-signature-timestamp": stamp,
        "user-agent": "Discord-Interactions/1.0 (+https://discord.com)",
    }


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 10.0) -> tuple[int, Any]:
    """POST and return (status, parsed JSON or text)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - a local URL
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


def follow(
    discord_base: str, application_id: str, token: str, timeout: float = 20.0
) -> dict[str, Any] | None:
    """Wait for the worker's edit of @original (recorded by the stand-in) and return the message."""
    url = f"{discord_base.rstrip('/')}/webhooks/{application_id}/{token}/messages/@original"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a local URL
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
        time.sleep(0.1)
    return None


def load_keys(local_dir: Path) -> KeyPair:
    path = local_dir / "discord-keys.json"
    if not path.exists():
        raise SystemExit(f"{path} does not exist: start the local runtime first (make run)")
    data = json.loads(path.read_text())
    return KeyPair(data["private_key"], data["public_key"])


def _parse_words(words: list[str]) -> tuple[list[str], dict[str, str]]:
    path: list[str] = []
    options: dict[str, str] = {}
    for word in words:
        if "=" in word:
            name, _, value = word.partition("=")
            options[name] = value
        elif options:
            raise SystemExit(f"{word!r}: command words come before the key=value options")
        else:
            path.append(word.lstrip("/"))
    return path, options


def message_text(message: dict[str, Any] | None) -> str:
    """What a message says: its content, or the text of its Components V2 card."""
    from pointsbot.discord.cards import plain_text

    if not message:
        return ""
    return message.get("content") or plain_text(message.get("components"))


def _show(status: int, answer: Any) -> None:
    if isinstance(answer, dict) and answer.get("type") in (5, 6):
        private = " (only you can see this)" if ((answer.get("data") or {}).get("flags") or 0) & 64 else ""
        print(f"[{status}] type {answer['type']}: thinking...{private}")
        return
    if isinstance(answer, dict) and answer.get("type") == 9 and isinstance(answer.get("data"), dict):
        fields = [f.get("component", {}).get("custom_id") for f in answer["data"].get("components", [])]
        print(f"[{status}] a form: {answer['data'].get('title')} ({answer['data'].get('custom_id')}); fields: "
              + ", ".join(str(f) for f in fields if f))  # fmt: skip
        return
    if (
        isinstance(answer, dict)
        and isinstance(answer.get("data"), dict)
        and ("content" in answer["data"] or answer["data"].get("components"))
    ):
        private = " (only you can see this)" if (answer["data"].get("flags") or 0) & 64 else ""
        print(f"[{status}] type {answer.get('type')}{private}:\n{message_text(answer['data'])}")
        for row in answer["data"].get("components") or []:
            if row.get("type") != 1:
                continue
            buttons = [f"{c.get('label')} -> {c.get('custom_id')}{' (disabled)' if c.get('disabled') else ''}"
                       for c in row.get("components", [])]  # fmt: skip
            print("buttons: " + ", ".join(buttons))
    else:
        print(f"[{status}] {json.dumps(answer)}")


def main(argv: list[str] | None = None) -> int:
    from .__main__ import LOCAL_DIR

    parser = argparse.ArgumentParser(prog="python -m pointsbot_local.simulate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument(
        "--url",
        default=os.environ.get("LOCAL_URL", f"http://127.0.0.1:{os.environ.get('LOCAL_PORT', '8787')}"),
    )
    parser.add_argument("--as", dest="who", choices=("member", "admin"), default="member")
    parser.add_argument("--user", default=DEFAULT_MEMBER, help="the member's user id")
    parser.add_argument("--name", default=None, help="the member's display name")
    parser.add_argument("--guild", default=DEFAULT_GUILD)
    parser.add_argument("--role", action="append", default=[], help="a role id the member has (repeatable)")
    parser.add_argument(
        "--application-id", default=os.environ.get("DISCORD_APPLICATION_ID", DEFAULT_APPLICATION)
    )
    parser.add_argument("--local-dir", type=Path, default=Path(os.environ.get("LOCAL_DIR", LOCAL_DIR)))
    parser.add_argument("--no-follow", action="store_true", help="do not wait for a deferred answer")
    parser.add_argument(
        "words", nargs="+", help="ping | inspect | click CUSTOM_ID | COMMAND [SUB] [name=value ...]"
    )
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    discord_base = os.environ.get("DISCORD_API_BASE_URL") or f"{url}/discord-api/v10"
    if args.words == ["inspect"]:
        with urllib.request.urlopen(f"{url}/discord-api/_inspect?format=json", timeout=10) as response:  # noqa: S310
            print(json.dumps(json.loads(response.read()), indent=2))
        return 0
    keys = load_keys(args.local_dir)
    common = dict(
        user_id=args.user, guild_id=args.guild, admin=args.who == "admin", application_id=args.application_id
    )
    if args.words == ["ping"]:
        payload: dict[str, Any] = {"id": snowflake(), "application_id": args.application_id, "type": 1, "token": "x",
                                   "version": 1}  # fmt: skip
    elif args.words[0] == "click" and len(args.words) == 2:
        payload = component_payload(args.words[1], **common)
    else:
        path, options = _parse_words(args.words)
        try:
            payload = command_payload(path, options, username=args.name, roles=args.role, **common)
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
    body, headers = signed(payload, keys)
    status, answer = post(f"{url}/interactions", body, headers)
    _show(status, answer)
    if status == 200 and isinstance(answer, dict) and answer.get("type") in (5, 6) and not args.no_follow:
        print("deferred; waiting for the worker's answer ...", flush=True)
        final = follow(discord_base, args.application_id, payload["token"])
        if final is None:
            print("no answer arrived (is the worker running?)")
            return 1
        print(f"final answer:\n{message_text(final)}")
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
