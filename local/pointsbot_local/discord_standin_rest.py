"""The stand-in's REST endpoints: interaction webhooks (@original edits, follow-ups), DM
channels and messages, application commands, guild roles and members' roles, with Discord-like
rate limits.

Everything is kept in memory (`state`) and shown at /discord-api/_inspect (HTML, or JSON with
?format=json). Tests and people set which users exist and who does not accept DMs with
`state.set_user(...)` or POST /discord-api/_inspect/users. Answers use Discord's shapes
(../shared/discord/openapi.json), including 429 RatelimitedResponse with retry_after.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from . import inspect_page
from .apigw import HttpResponse
from .discord_standin import Handler, Request, error_response, json_response, standin

INSPECT_PREFIX = "/discord-api/_inspect"


# -- rate limits ------------------------------------------------------------------------------
@dataclass
class Limit:
    limit: int
    per_s: float


@dataclass
class _Window:
    started: float
    used: int = 0


# Per-route limits, roughly Discord's (they are not published exactly and change over time).
DEFAULT_LIMITS: dict[tuple[str, str], Limit] = {
    ("POST", "/channels/{channel_id}/messages"): Limit(5, 5.0),
    ("POST", "/users/@me/channels"): Limit(10, 10.0),
    ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original"): Limit(5, 2.0),
    ("POST", "/webhooks/{webhook_id}/{webhook_token}"): Limit(5, 2.0),
    ("PUT", "/applications/{application_id}/commands"): Limit(10, 20.0),
    ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands"): Limit(10, 20.0),
}
FALLBACK_LIMIT = Limit(50, 1.0)
GLOBAL_LIMIT = Limit(50, 1.0)
_MAJOR = ("channel_id", "guild_id", "webhook_id", "webhook_token")


class RateLimiter:
    """Fixed windows per bucket (route + major parameters) and one global window per bot token.

    Interaction webhooks are not counted against the global limit, as on Discord.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.limits = dict(DEFAULT_LIMITS)
        self.global_limit = Limit(GLOBAL_LIMIT.limit, GLOBAL_LIMIT.per_s)
        self._windows: dict[str, _Window] = {}
        self.clock = time.monotonic

    def configure(self, method: str, route: str, limit: int, per_s: float) -> None:
        with self.lock:
            self.limits[(method.upper(), route)] = Limit(limit, per_s)

    def configure_global(self, limit: int, per_s: float = 1.0) -> None:
        with self.lock:
            self.global_limit = Limit(limit, per_s)

    def reset(self) -> None:
        with self.lock:
            self.limits = dict(DEFAULT_LIMITS)
            self.global_limit = Limit(GLOBAL_LIMIT.limit, GLOBAL_LIMIT.per_s)
            self._windows.clear()

    @staticmethod
    def bucket_hash(method: str, route: str) -> str:
        return hashlib.sha1(f"{method} {route}".encode()).hexdigest()[:16]  # noqa: S324 - a label

    def _take(self, key: str, limit: Limit, now: float) -> tuple[bool, _Window]:
        window = self._windows.get(key)
        if window is None or now >= window.started + limit.per_s:
            window = self._windows[key] = _Window(now)
        if window.used >= limit.limit:
            return False, window
        window.used += 1
        return True, window

    def check(self, request: Request) -> tuple[HttpResponse | None, dict[str, str]]:
        """(a 429 to answer or None, the X-RateLimit-* headers for the answer)."""
        route = request.route
        limit = self.limits.get((request.method, route), FALLBACK_LIMIT)
        major = ":".join(request.params.get(k, "") for k in _MAJOR if k in request.params)
        bucket = self.bucket_hash(request.method, route)
        with self.lock:
            now = self.clock()
            if not route.startswith("/webhooks/"):
                token = request.headers.get("authorization", "")
                ok, window = self._take(f"global {token}", self.global_limit, now)
                if not ok:
                    retry = max(window.started + self.global_limit.per_s - now, 0.001)
                    return _limited(retry, global_=True, headers={"X-RateLimit-Global": "true",
                                                                    "X-RateLimit-Scope": "global"}), {}  # fmt: skip
            ok, window = self._take(f"{bucket} {major}", limit, now)
            # Rounded up to the millisecond, so a client that waits exactly this long is never early.
            reset_after = math.ceil(max(window.started + limit.per_s - now, 0.0) * 1000) / 1000
        headers = {
            "X-RateLimit-Limit": str(limit.limit),
            "X-RateLimit-Remaining": str(max(limit.limit - window.used, 0)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket,
        }
        if not ok:
            return _limited(max(reset_after, 0.001), global_=False,
                            headers={**headers, "X-RateLimit-Scope": "user"}), headers  # fmt: skip
        return None, headers


def _limited(retry_after: float, *, global_: bool, headers: dict[str, str]) -> HttpResponse:
    body = {"message": "You are being rate limited.", "retry_after": round(retry_after, 3), "global": global_,
            "code": 0}  # fmt: skip
    return json_response(429, body, {**headers, "Retry-After": str(math.ceil(retry_after))})


limiter = RateLimiter()


def limited(handler: Handler) -> Handler:
    """Wrap an endpoint with the rate limiter and its headers."""

    def wrapped(request: Request) -> HttpResponse:
        refusal, headers = limiter.check(request)
        if refusal is not None:
            return refusal
        response = handler(request)
        response.headers.extend(headers.items())
        return response

    return wrapped


# -- state -----------------------------------------------------------------------------------
def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class RecordedInteraction:
    at: float
    request: dict[str, Any]
    status: int
    answer: Any


def record_interaction(body: bytes, status: int, answer: bytes) -> None:
    """The local server's observer of POST /interactions: keep the interaction and its answer
    (PINGs and unreadable bodies are left out)."""
    try:
        request = json.loads(body)
    except ValueError:
        return
    if not isinstance(request, dict) or request.get("type") == 1:
        return
    try:
        shown: Any = json.loads(answer) if answer else None
    except ValueError:
        shown = answer.decode("utf-8", "replace")
    with standin.lock:
        state.interactions.append(RecordedInteraction(time.time(), request, status, shown))
        del state.interactions[: -inspect_page.MAX_SHOWN]


@dataclass
class StandInState:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    closed_dms: set[str] = field(default_factory=set)
    dm_channels: dict[str, str] = field(default_factory=dict)  # user id -> channel id
    channel_recipients: dict[str, str] = field(default_factory=dict)  # channel id -> user id
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # channel id -> messages
    originals: dict[str, dict[str, Any]] = field(default_factory=dict)  # token -> message
    original_edits: list[dict[str, Any]] = field(default_factory=list)
    followups: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    expired_tokens: set[str] = field(default_factory=set)
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # "app" or "app/guild"
    guilds: dict[str, StandInGuild] = field(default_factory=dict)
    audit_log: list[dict[str, Any]] = field(default_factory=list)  # role changes with their reasons
    nonces: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (channel, nonce) -> message
    no_access_channels: set[str] = field(default_factory=set)  # posting there: 403 50001
    # Interactions the local server answered (inline answers never reach Discord's REST API,
    # so the server hands them here to be shown on the inspect page), the newest MAX_SHOWN
    interactions: list[RecordedInteraction] = field(default_factory=list)

    def channel_messages(self, channel_id: str) -> list[dict[str, Any]]:
        with standin.lock:
            return list(self.messages.get(str(channel_id), []))

    def set_user(self, user_id: str, username: str | None = None, *, accepts_dms: bool = True,
                 global_name: str | None = None, avatar: str | None = None) -> dict[str, Any]:  # fmt: skip
        with standin.lock:
            user = self.user(str(user_id))
            if username:
                user["username"] = username
            if global_name is not None:
                user["global_name"] = global_name
            if avatar is not None:
                user["avatar"] = avatar
            (self.closed_dms.discard if accepts_dms else self.closed_dms.add)(str(user_id))
            return user

    def user(self, user_id: str) -> dict[str, Any]:
        """A user in Discord's shape; unknown ids get a made-up name (tests use many ids)."""
        if user_id not in self.users:
            self.users[user_id] = {
                "id": user_id, "username": f"user{user_id[-6:]}", "avatar": None, "discriminator": "0",
                "public_flags": 0, "flags": 0, "global_name": None, "primary_guild": None,
            }  # fmt: skip
        return self.users[user_id]

    # -- guilds, roles and members ----------------------------------------------------------------
    def guild(self, guild_id: str) -> StandInGuild:
        """A guild the bot is in; unknown ids get one on first use, with @everyone and the bot's
        own role ("pointsbot", Manage Roles, position 10), so tests only add the roles they grant."""
        with standin.lock:
            guild_id = str(guild_id)
            if guild_id not in self.guilds:
                guild = self.guilds[guild_id] = StandInGuild(guild_id)
                guild.roles[guild_id] = _role(guild_id, "@everyone", 0, permissions=0)
                bot_role = standin.snowflake()
                guild.roles[bot_role] = _role(bot_role, "pointsbot", 10, permissions=MANAGE_ROLES, managed=True,
                                              tags={"bot_id": bot_user_id()})  # fmt: skip
                guild.member(bot_user_id()).roles.append(bot_role)
                guild.bot_role_id = bot_role
            return self.guilds[guild_id]

    def add_role(self, guild_id: str, name: str, *, position: int = 1, permissions: int = 0,
                 managed: bool = False, role_id: str | None = None) -> str:  # fmt: skip
        """A role in the guild; returns its id. Positions above the bot's role (10) cannot be granted."""
        with standin.lock:
            guild = self.guild(guild_id)
            role_id = str(role_id or standin.snowflake())
            guild.roles[role_id] = _role(role_id, name, position, permissions=permissions, managed=managed)
            return role_id

    def add_channel(self, guild_id: str, name: str, *, kind: int = 0, position: int = 0) -> str:
        """A channel of the guild (type 0 text, 2 voice, 4 category, 5 announcement); returns its id."""
        with standin.lock:
            guild = self.guild(guild_id)
            channel_id = standin.snowflake()
            guild.channels[channel_id] = {
                "id": channel_id, "type": kind, "last_message_id": None, "flags": 0, "guild_id": str(guild_id),
                "name": name, "parent_id": None, "rate_limit_per_user": 0, "topic": None, "position": position,
                "permission_overwrites": [], "nsfw": False,
            }  # fmt: skip
            return channel_id

    def set_guild(self, guild_id: str, name: str, icon: str | None = None) -> None:
        """The guild's name and icon hash, as GET /guilds/{guild_id} answers them."""
        with standin.lock:
            guild = self.guild(guild_id)
            guild.name, guild.icon = name, icon

    def set_member(
        self, guild_id: str, user_id: str, *, nick: str | None = None, avatar: str | None = None
    ) -> None:
        """A member's server nickname and server avatar hash (GET /guilds/{g}/members/{u})."""
        with standin.lock:
            member = self.guild(guild_id).member(str(user_id))
            member.nick, member.avatar = nick, avatar

    def member_roles(self, guild_id: str, user_id: str) -> list[str]:
        with standin.lock:
            member = self.guild(guild_id).members.get(str(user_id))
            return list(member.roles) if member else []

    def leave(self, guild_id: str, user_id: str) -> None:
        """The member leaves the guild: role changes for them get 10007 Unknown Member."""
        with standin.lock:
            guild = self.guild(guild_id)
            guild.members.pop(str(user_id), None)
            guild.left.add(str(user_id))

    def expire_token(self, token: str) -> None:
        with standin.lock:
            self.expired_tokens.add(token)

    def dms_to(self, user_id: str) -> list[dict[str, Any]]:
        with standin.lock:
            channel = self.dm_channels.get(str(user_id))
            return list(self.messages.get(channel, [])) if channel else []

    def original(self, token: str) -> dict[str, Any] | None:
        with standin.lock:
            return self.originals.get(token)

    def clear(self) -> None:
        with standin.lock:
            for value in vars(self).values():
                value.clear()

    def as_dict(self) -> dict[str, Any]:
        with standin.lock:
            return {
                "users": list(self.users.values()),
                "closed_dms": sorted(self.closed_dms),
                "dms": {uid: self.messages.get(ch, []) for uid, ch in self.dm_channels.items()},
                "originals": self.originals,
                "followups": self.followups,
                "commands": self.commands,
                "guilds": {gid: g.as_dict() for gid, g in self.guilds.items()},
                "audit_log": self.audit_log,
            }


MANAGE_ROLES = 1 << 28
ADMINISTRATOR = 1 << 3


def _role(role_id: str, name: str, position: int, *, permissions: int, managed: bool = False,
          tags: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """A role in Discord's shape (GuildRoleResponse)."""
    role = {
        "id": role_id, "name": name, "permissions": str(permissions), "position": position, "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None}, "hoist": False,
        "managed": managed, "mentionable": False, "icon": None, "unicode_emoji": None, "flags": 0,
    }  # fmt: skip
    if tags:
        role["tags"] = tags
    return role


@dataclass
class StandInMember:
    user_id: str
    roles: list[str] = field(default_factory=list)
    joined_at: str = field(default_factory=_now_iso)
    nick: str | None = None
    avatar: str | None = None


@dataclass
class StandInGuild:
    guild_id: str
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)  # GET /guilds/{g}/channels
    members: dict[str, StandInMember] = field(default_factory=dict)
    left: set[str] = field(default_factory=set)  # users who are not members (10007)
    bot_role_id: str = ""
    name: str = ""  # "" until set_guild: answered as "Server <id>"
    icon: str | None = None

    def member(self, user_id: str) -> StandInMember:
        """A member; any user who has not left counts as one (tests use many ids)."""
        if user_id not in self.members:
            self.members[user_id] = StandInMember(user_id)
        return self.members[user_id]

    def highest_position(self, user_id: str) -> int:
        member = self.members.get(user_id)
        return (
            max((self.roles[r]["position"] for r in member.roles if r in self.roles), default=0)
            if member
            else 0
        )

    def permissions(self, user_id: str) -> int:
        member = self.members.get(user_id)
        bits = int(self.roles[self.guild_id]["permissions"])
        for role_id in member.roles if member else []:
            if role_id in self.roles:
                bits |= int(self.roles[role_id]["permissions"])
        return bits

    def as_dict(self) -> dict[str, Any]:
        return {
            "roles": sorted(self.roles.values(), key=lambda r: (r["position"], r["id"])),
            "members": {uid: m.roles for uid, m in self.members.items()},
            "left": sorted(self.left),
        }


state = StandInState()


def bot_user_id() -> str:
    return os.environ.get("DISCORD_APPLICATION_ID") or "100000000000000001"


def _bot_user() -> dict[str, Any]:
    app_id = bot_user_id()
    user = dict(state.user(app_id))
    user.update(username="pointsbot", bot=True)
    return user


def _unauthorized(request: Request) -> HttpResponse | None:
    if not request.headers.get("authorization", "").startswith("Bot "):
        return error_response(401, 0, "401: Unauthorized")
    return None


# What Discord fills in on the components it returns (Components V2: a container's colour and
# spoiler, a thumbnail's description and spoiler, a separator's look)
_RETURNED_DEFAULTS: dict[Any, dict[str, Any]] = {
    17: {"accent_color": None, "spoiler": False},
    11: {"description": None, "spoiler": False},
    14: {"spacing": 1, "divider": True},
}


def _components(components: Any) -> list[dict[str, Any]]:
    """Components as Discord returns them: each gets a numeric id, in order, depth first."""
    counter = iter(range(1, 10_000))

    def number(component: dict[str, Any]) -> dict[str, Any]:
        shown = {**_RETURNED_DEFAULTS.get(component.get("type"), {}), **component,
                 "id": component.get("id") or next(counter)}  # fmt: skip
        if component.get("type") == 11 and isinstance(component.get("media"), dict):  # a thumbnail's media
            url = str(component["media"].get("url") or "")
            shown["media"] = {"id": standin.snowflake(), "url": url, "proxy_url": url, "width": None,
                              "height": None, "content_type": None}  # fmt: skip
        if isinstance(component.get("components"), list):
            shown["components"] = [number(c) for c in component["components"] if isinstance(c, dict)]
        if isinstance(component.get("accessory"), dict):  # a Section's thumbnail or button
            shown["accessory"] = number(component["accessory"])
        return shown

    return [number(c) for c in components or [] if isinstance(c, dict)]


def _message(
    channel_id: str, body: dict[str, Any], *, author: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    message = {
        "type": 0, "content": str(body.get("content") or ""), "mentions": [], "mention_roles": [],
        "attachments": [], "embeds": list(body.get("embeds") or []), "timestamp": _now_iso(),
        "edited_timestamp": None, "flags": int(body.get("flags") or 0),
        "components": _components(body.get("components")), "id": standin.snowflake(), "channel_id": channel_id,
        "author": author, "pinned": False, "mention_everyone": False, "tts": False,
    }  # fmt: skip
    message.update(extra)
    return message


IS_COMPONENTS_V2 = 1 << 15


def _check_message_body(body: Any) -> HttpResponse | None:
    if not isinstance(body, dict):
        return error_response(400, 50109, "The request body contains invalid JSON.")
    content = body.get("content")
    if content is not None and (not isinstance(content, str) or len(content) > 2000):
        return error_response(400, 50035, "Invalid Form Body (content: Must be 2000 or fewer in length.)")
    if not content and not body.get("embeds") and not body.get("components"):
        return error_response(400, 50006, "Cannot send an empty message")
    flags = body.get("flags")
    if isinstance(flags, int) and flags & IS_COMPONENTS_V2 and (content or body.get("embeds")):
        # Discord: a Components V2 message is its components only
        return error_response(400, 50035, "Invalid Form Body (content: The 'content' field cannot be used "
                                          "when using MessageFlags.IS_COMPONENTS_V2)")  # fmt: skip
    return None


# -- DMs and channel messages ---------------------------------------------------------------------
@standin.route("POST", "/users/@me/channels")
@limited
def create_dm(request: Request) -> HttpResponse:
    if (refusal := _unauthorized(request)) is not None:
        return refusal
    body = request.json()
    recipient = str((body or {}).get("recipient_id") or "")
    if not recipient.isdigit():
        return error_response(400, 50035, "Invalid Form Body (recipient_id: Value is not snowflake.)")
    with standin.lock:
        channel_id = state.dm_channels.get(recipient)
        if channel_id is None:
            channel_id = state.dm_channels[recipient] = standin.snowflake()
            state.channel_recipients[channel_id] = recipient
        user = state.user(recipient)
    channel = {"id": channel_id, "type": 1, "last_message_id": None, "flags": 0, "recipients": [user]}
    return json_response(200, channel)


@standin.route("POST", "/channels/{channel_id}/messages")
@limited
def create_message(request: Request) -> HttpResponse:
    if (refusal := _unauthorized(request)) is not None:
        return refusal
    body = request.json()
    if (refusal := _check_message_body(body)) is not None:
        return refusal
    channel_id = request.params["channel_id"]
    nonce = body.get("nonce")
    if nonce is not None and (isinstance(nonce, bool) or not isinstance(nonce, (str, int))
                              or (isinstance(nonce, str) and len(nonce) > 25)):  # fmt: skip
        return error_response(400, 50035, "Invalid Form Body (nonce: Must be 25 or fewer in length.)")
    with standin.lock:
        if channel_id in state.no_access_channels:
            return error_response(403, 50001, "Missing Access")
        recipient = state.channel_recipients.get(channel_id)
        if recipient is not None and recipient in state.closed_dms:
            return error_response(403, 50007, "Cannot send messages to this user")
        # enforce_nonce: a second message with the same nonce (Discord keeps them a few minutes)
        # is not created; the first one is returned.
        if nonce is not None and body.get("enforce_nonce") and (channel_id, str(nonce)) in state.nonces:
            return json_response(200, state.nonces[(channel_id, str(nonce))])
        message = _message(channel_id, body, author=_bot_user())
        if nonce is not None:
            message["nonce"] = nonce
            state.nonces[(channel_id, str(nonce))] = message
        state.messages.setdefault(channel_id, []).append(message)
    return json_response(200, message)


# -- interaction webhooks -----------------------------------------------------------------------
_ORIGINAL = "/webhooks/{webhook_id}/{webhook_token}/messages/@original"


def _interaction_channel(token: str) -> str:
    """A channel id for an interaction's messages (the stand-in never saw the interaction)."""
    return str(int(hashlib.sha1(token.encode()).hexdigest()[:13], 16) + 1)  # noqa: S324 - an id, not security


def _webhook_gone(request: Request) -> HttpResponse | None:
    if request.params["webhook_token"] in state.expired_tokens:
        return error_response(404, 10015, "Unknown Webhook")
    return None


@standin.route("PATCH", _ORIGINAL)
@limited
def edit_original(request: Request) -> HttpResponse:
    if (refusal := _webhook_gone(request)) is not None:
        return refusal
    body = request.json()
    if not isinstance(body, dict):
        return error_response(400, 50109, "The request body contains invalid JSON.")
    token, app_id = request.params["webhook_token"], request.params["webhook_id"]
    with standin.lock:
        message = state.originals.get(token)
        if message is None:  # the deferred "thinking..." message, made when Discord got type 5
            message = _message(_interaction_channel(token), {}, author=_bot_user(), type=20, webhook_id=app_id,
                               application_id=app_id)  # fmt: skip
        for key in ("content", "embeds", "components"):
            if key in body:
                message[key] = body[key] if body[key] is not None else ([] if key != "content" else "")
        if isinstance(body.get("flags"), int):  # IS_COMPONENTS_V2 (and SUPPRESS_EMBEDS) may be set
            message["flags"] = (message.get("flags") or 0) | (body["flags"] & (1 << 15 | 1 << 2))
        message["components"] = _components(message["components"])
        message["edited_timestamp"] = _now_iso()
        state.originals[token] = message
        state.original_edits.append({"token": token, "body": body, "at": time.time()})
    return json_response(200, message)


@standin.route("GET", _ORIGINAL)
def get_original(request: Request) -> HttpResponse:
    if (refusal := _webhook_gone(request)) is not None:
        return refusal
    message = state.original(request.params["webhook_token"])
    if message is None:
        return error_response(404, 10008, "Unknown Message")
    return json_response(200, message)


@standin.route("POST", "/webhooks/{webhook_id}/{webhook_token}")
@limited
def followup(request: Request) -> HttpResponse:
    if (refusal := _webhook_gone(request)) is not None:
        return refusal
    body = request.json()
    if (refusal := _check_message_body(body)) is not None:
        return refusal
    token, app_id = request.params["webhook_token"], request.params["webhook_id"]
    with standin.lock:
        message = _message(_interaction_channel(token), body, author=_bot_user(), webhook_id=app_id,
                           application_id=app_id)  # fmt: skip
        state.followups.setdefault(token, []).append(message)
    if request.query.get("wait", "").lower() != "true":
        return json_response(204, None)
    return json_response(200, message)


# -- application commands --------------------------------------------------------------------------
def _commands_key(request: Request) -> str:
    app_id = request.params["application_id"]
    guild = request.params.get("guild_id")
    return f"{app_id}/{guild}" if guild else app_id


def _stored_command(
    request: Request, definition: dict[str, Any], previous: dict[str, Any] | None
) -> dict[str, Any]:
    command = {
        "id": previous["id"] if previous else standin.snowflake(),
        "application_id": request.params["application_id"],
        "version": standin.snowflake(),
        "default_member_permissions": None,
        "type": 1,
        "name": definition["name"],
        "description": definition.get("description") or "",
        "dm_permission": True,
        "contexts": None,
        "integration_types": [0],
        "options": [],
        "nsfw": False,
    }
    for key in ("type", "description", "contexts", "integration_types", "options", "nsfw", "dm_permission",
                "name_localizations", "description_localizations"):  # fmt: skip
        if definition.get(key) is not None:
            command[key] = definition[key]
    if definition.get("default_member_permissions") is not None:
        command["default_member_permissions"] = str(definition["default_member_permissions"])
    if "guild_id" in request.params:
        command["guild_id"] = request.params["guild_id"]
    return command


def _get_commands(request: Request) -> HttpResponse:
    if (refusal := _unauthorized(request)) is not None:
        return refusal
    with standin.lock:
        registered = list(state.commands.get(_commands_key(request), []))
    if request.query.get("with_localizations") != "true":  # Discord leaves them out unless asked
        registered = [_without_localizations(c) for c in registered]
    return json_response(200, registered)


def _without_localizations(item: dict[str, Any]) -> dict[str, Any]:
    shown = {k: v for k, v in item.items() if k not in ("name_localizations", "description_localizations")}
    if isinstance(item.get("options"), list):
        shown["options"] = [_without_localizations(o) for o in item["options"]]
    return shown


def _put_commands(request: Request) -> HttpResponse:
    if (refusal := _unauthorized(request)) is not None:
        return refusal
    body = request.json()
    if not isinstance(body, list) or len(body) > 130:
        return error_response(400, 50035, "Invalid Form Body (a list of at most 130 commands)")
    names = [c.get("name") if isinstance(c, dict) else None for c in body]
    if any(not isinstance(n, str) or not 1 <= len(n) <= 32 for n in names) or len(set(names)) != len(names):
        return error_response(400, 50035, "Invalid Form Body (command names: 1-32 characters, unique)")
    key = _commands_key(request)
    with standin.lock:
        previous = {c["name"]: c for c in state.commands.get(key, [])}
        stored = [_stored_command(request, c, previous.get(c["name"])) for c in body]
        state.commands[key] = stored
    return json_response(200, stored)


for _route in (
    "/applications/{application_id}/commands",
    "/applications/{application_id}/guilds/{guild_id}/commands",
):
    standin.route("GET", _route)(_get_commands)
    standin.route("PUT", _route)(limited(_put_commands))


# -- guild roles and members' roles ------------------------------------------------------------------
_MEMBER_ROLE = "/guilds/{guild_id}/members/{user_id}/roles/{role_id}"


def _snowflakes(request: Request, *names: str) -> HttpResponse | None:
    for name in names:
        value = request.params[name]
        if not value.isdigit() or len(value) > 20:
            return error_response(
                400, 50035, f'Invalid Form Body ({name}: Value "{value}" is not snowflake.)'
            )
    return None


def _change_member_role(request: Request) -> HttpResponse:
    """PUT/DELETE a member's role, as Discord does: the bot needs Manage Roles (or Administrator)
    and a highest role above the role's position, and may not touch a managed role or @everyone."""
    if (refusal := _unauthorized(request)) is not None:
        return refusal
    if (refusal := _snowflakes(request, "guild_id", "user_id", "role_id")) is not None:
        return refusal
    guild_id, user_id, role_id = (request.params[k] for k in ("guild_id", "user_id", "role_id"))
    reason = unquote(request.headers.get("x-audit-log-reason", ""))
    with standin.lock:
        guild = state.guild(guild_id)
        role = guild.roles.get(role_id)
        if role is None:
            return error_response(404, 10011, "Unknown Role")
        if user_id in guild.left:
            return error_response(404, 10007, "Unknown Member")
        bot = bot_user_id()
        bits = guild.permissions(bot)
        if (
            not bits & (MANAGE_ROLES | ADMINISTRATOR)
            or role["position"] >= guild.highest_position(bot)
            or role["managed"]
            or role_id == guild_id
        ):
            return error_response(403, 50013, "Missing Permissions")
        member = guild.member(user_id)
        if request.method == "PUT" and role_id not in member.roles:
            member.roles.append(role_id)
        elif request.method == "DELETE" and role_id in member.roles:
            member.roles.remove(role_id)
        state.audit_log.append({"guild_id": guild_id, "user_id": user_id, "role_id": role_id,
                                "action": "add" if request.method == "PUT" else "remove", "reason": reason})  # fmt: skip
    return json_response(204, None)


standin.route("PUT", _MEMBER_ROLE)(limited(_change_member_role))
standin.route("DELETE", _MEMBER_ROLE)(limited(_change_member_role))


@standin.route("GET", "/guilds/{guild_id}/roles")
@limited
def list_roles(request: Request) -> HttpResponse:
    if (refusal := _unauthorized(request)) is not None:
        return refusal
    if (refusal := _snowflakes(request, "guild_id")) is not None:
        return refusal
    with standin.lock:
        roles = state.guild(request.params["guild_id"]).as_dict()["roles"]
    return json_response(200, roles)


@standin.route("GET", "/guilds/{guild_id}/channels")
@limited
def list_channels(request: Request) -> HttpResponse:
    if (refusal := _unauthorized(request)) is not None:
        return refusal
    if (refusal := _snowflakes(request, "guild_id")) is not None:
        return refusal
    with standin.lock:
        channels = sorted(
            state.guild(request.params["guild_id"]).channels.values(), key=lambda c: (c["position"], c["id"])
        )
        answer = [dict(c) for c in channels]
    return json_response(200, answer)


@standin.route("GET", "/guilds/{guild_id}/members/{user_id}")
@limited
def get_member(request: Request) -> HttpResponse:
    if (refusal := _unauthorized(request)) is not None:
        return refusal
    if (refusal := _snowflakes(request, "guild_id", "user_id")) is not None:
        return refusal
    guild_id, user_id = request.params["guild_id"], request.params["user_id"]
    with standin.lock:
        guild = state.guild(guild_id)
        if user_id in guild.left:
            return error_response(404, 10007, "Unknown Member")
        member = guild.member(user_id)
        user = dict(state.user(user_id)) if user_id != bot_user_id() else _bot_user()
        shown = {
            "avatar": member.avatar, "banner": None, "communication_disabled_until": None, "flags": 0,
            "joined_at": member.joined_at, "nick": member.nick, "pending": False, "premium_since": None,
            "roles": list(member.roles), "user": user, "mute": False, "deaf": False,
        }  # fmt: skip
    return json_response(200, shown)


@standin.route("GET", "/guilds/{guild_id}")
@limited
def get_guild(request: Request) -> HttpResponse:
    """The guild as Discord describes it (GuildWithCountsResponse); what the bot reads is its
    name and icon, the rest is there because the shape requires it."""
    if (refusal := _unauthorized(request)) is not None:
        return refusal
    if (refusal := _snowflakes(request, "guild_id")) is not None:
        return refusal
    guild_id = request.params["guild_id"]
    with standin.lock:
        guild = state.guild(guild_id)
        roles = guild.as_dict()["roles"]
        shown = {
            "id": guild_id, "name": guild.name or f"Server {guild_id[-4:]}", "icon": guild.icon, "description": None,
            "home_header": None, "splash": None, "discovery_splash": None, "features": [], "banner": None,
            "owner_id": "200000000000000001", "application_id": None, "region": "deprecated", "afk_channel_id": None,
            "afk_timeout": 300, "system_channel_id": None, "system_channel_flags": 0, "widget_enabled": False,
            "widget_channel_id": None, "verification_level": 0, "roles": roles, "default_message_notifications": 0,
            "mfa_level": 0, "explicit_content_filter": 0, "max_presences": None, "max_members": 500000,
            "max_stage_video_channel_users": 50, "max_video_channel_users": 25, "vanity_url_code": None,
            "premium_tier": 0, "premium_subscription_count": 0, "preferred_locale": "en-US", "rules_channel_id": None,
            "safety_alerts_channel_id": None, "public_updates_channel_id": None, "premium_progress_bar_enabled": False,
            "nsfw": False, "nsfw_level": 0, "emojis": [], "stickers": [], "incidents_data": None,
        }  # fmt: skip
    return json_response(200, shown)


# -- the inspect page and its controls ----------------------------------------------------------------
def inspect_app(method: str, target: str, headers: dict[str, str], body: bytes) -> HttpResponse:
    """GET /discord-api/_inspect[?format=json]; POST .../users {id, username, accepts_dms};
    POST .../roles {guild_id, name, position, permissions}; POST .../reset."""
    parts = urlsplit(target)
    path = parts.path[len(INSPECT_PREFIX) :] or "/"
    query = dict(parse_qsl(parts.query))
    if method == "GET" and path == "/":
        if query.get("format") == "json":
            exchanges = [
                {"at": e.at, "method": e.method, "path": e.path, "route": e.route, "status": e.status,
                 "body": e.body, "response": e.response}
                for e in standin.sent()
            ]  # fmt: skip
            with standin.lock:
                answered = [{"at": i.at, "interaction": i.request, "status": i.status, "answer": i.answer}
                            for i in state.interactions]  # fmt: skip
            return json_response(200, {**state.as_dict(), "exchanges": exchanges, "interactions": answered})
        with standin.lock:
            interactions = list(state.interactions)
        document, policy = inspect_page.page(standin.sent(), interactions)
        headers = [("content-type", "text/html; charset=utf-8"), ("content-security-policy", policy),
                   ("x-content-type-options", "nosniff"), ("referrer-policy", "no-referrer")]  # fmt: skip
        return HttpResponse(200, headers, document.encode())
    if method == "POST" and path == "/users":
        try:
            data = json.loads(body or b"{}")
            user = state.set_user(str(int(data["id"])), data.get("username"),
                                  accepts_dms=bool(data.get("accepts_dms", True)),
                                  global_name=data.get("global_name"))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return error_response(400, 50035, "give id (digits), and optionally username, accepts_dms")
        return json_response(200, user)
    if method == "POST" and path == "/roles":
        try:
            data = json.loads(body or b"{}")
            guild_id = str(int(data["guild_id"]))
            name = str(data["name"])
            role_id = state.add_role(guild_id, name, position=int(data.get("position", 1)),
                                     permissions=int(data.get("permissions", 0)))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return error_response(
                400, 50035, "give guild_id (digits), name, and optionally position, permissions"
            )
        return json_response(200, state.guild(guild_id).roles[role_id])
    if method == "POST" and path == "/reset":
        reset()
        return json_response(200, {"reset": True})
    return error_response(404, 0, "404: Not Found")


def reset() -> None:
    """Forget everything recorded and every limit changed (tests call this between cases)."""
    standin.clear()
    state.clear()
    limiter.reset()
