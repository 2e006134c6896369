"""Discord's interactions protocol: parsing, and the shapes of answers (signature.py checks
that a request is Discord's; its names are handed on here too).

No database and no command logic here: this is what the interactions function needs to answer
PING and to turn a signed HTTP body into an `Interaction` (and a `Reply` back into JSON).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from discord_interactions import InteractionResponseFlags, InteractionResponseType, InteractionType

from .permissions import ADMINISTRATOR, parse_permissions
from .permissions import MANAGE_GUILD as MANAGE_GUILD  # the bit commands check, re-exported

# signature.py's names the protocol's callers use, handed on: interactions.read_request, ...
from .signature import MAX_BODY_BYTES as MAX_BODY_BYTES
from .signature import RequestRejected
from .signature import read_request as read_request
from .signature import verifier_for as verifier_for

# Discord's numbers come from discord-interactions (the design card's library): interaction
# types, callback types and the ephemeral flag, under the short names this package uses. The
# signature is checked with PyNaCl directly (`Verifier`): the library's verify_key makes a key
# per call, prints failures to stdout and knows no timestamp window.

PING = InteractionType.PING
APPLICATION_COMMAND = InteractionType.APPLICATION_COMMAND
MESSAGE_COMPONENT = InteractionType.MESSAGE_COMPONENT
AUTOCOMPLETE = InteractionType.APPLICATION_COMMAND_AUTOCOMPLETE
MODAL_SUBMIT = InteractionType.MODAL_SUBMIT

PONG = InteractionResponseType.PONG
CHANNEL_MESSAGE_WITH_SOURCE = InteractionResponseType.CHANNEL_MESSAGE_WITH_SOURCE
DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = InteractionResponseType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
DEFERRED_UPDATE_MESSAGE = InteractionResponseType.DEFERRED_UPDATE_MESSAGE
UPDATE_MESSAGE = InteractionResponseType.UPDATE_MESSAGE
AUTOCOMPLETE_RESULT = InteractionResponseType.APPLICATION_COMMAND_AUTOCOMPLETE_RESULT

EPHEMERAL = InteractionResponseFlags.EPHEMERAL
IS_COMPONENTS_V2 = 1 << 15  # the message is a Components V2 card (pointsbot.discord.cards)
MODAL = InteractionResponseType.MODAL  # open a modal (a context-menu command asks for amount and reason)

DISCORD_EPOCH_MS = 1_420_070_400_000


# -- parsed interactions ---------------------------------------------------------------------
@dataclass(frozen=True)
class ResolvedUser:
    id: str
    username: str | None
    display_name: str | None
    avatar: str | None = None  # the user's avatar hash (pointsbot.discord.cards.avatar_url)
    discriminator: str | None = None
    member_avatar: str | None = None  # their avatar in this server, when they set one
    bot: bool = False


CHAT_INPUT, USER_COMMAND, MESSAGE_COMMAND = 1, 2, 3


@dataclass(frozen=True)
class TargetMessage:
    """The message a message command was used on: enough to credit its author and link it."""

    id: str
    channel_id: str
    author_id: str
    author_bot: bool = False


@dataclass(frozen=True)
class Interaction:
    """What the commands need from an interaction; `raw` goes to the worker when deferred."""

    id: str
    application_id: str
    type: int
    token: str
    guild_id: str | None
    channel_id: str | None
    user_id: str
    username: str | None
    display_name: str | None
    permissions: int
    roles: tuple[str, ...]
    command: str  # "balance", "points add", ... ("" for components)
    options: dict[str, Any]
    custom_id: str | None
    users: dict[str, ResolvedUser] = field(default_factory=dict)
    option_types: dict[str, int] = field(default_factory=dict)  # the type each option came as
    focused: str | None = None  # autocomplete: the option the member is typing in
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    locale: str | None = None  # the asker's Discord language ("de", "en-US", ...)
    guild_locale: str | None = None  # the server's language (community posts, DMs)
    command_type: int = CHAT_INPUT  # 2: a user's context menu, 3: a message's
    target_id: str | None = None  # the user or message a context-menu command was used on
    target_message: TargetMessage | None = None
    modal_values: dict[str, Any] = field(default_factory=dict)  # a modal's fields by custom_id
    me: ResolvedUser | None = None  # the asker, with avatar

    @property
    def is_component(self) -> bool:
        return self.type == MESSAGE_COMPONENT

    @property
    def is_modal_submit(self) -> bool:
        return self.type == MODAL_SUBMIT

    def user(self, user_id: str) -> ResolvedUser | None:
        """What Discord sent about a user: the asker, or one resolved in the command's data."""
        if self.me is not None and user_id == self.me.id:
            return self.me
        return self.users.get(user_id)

    @property
    def created_at(self) -> float:
        """Unix seconds, from the interaction id (a snowflake)."""
        return ((int(self.id) >> 22) + DISCORD_EPOCH_MS) / 1000

    def has_permission(self, bit: int) -> bool:
        return bool(self.permissions & ADMINISTRATOR) or bool(self.permissions & bit)


# -- the shape of an interaction -------------------------------------------------------------
# Checked once, here, by hand rather than with a JSON Schema library: the fields the bot reads
# are few, the checks are a screenful, and jsonschema (a dev dependency) would bring attrs,
# referencing and a compiled rpds into the layer and its import into a cold start. Fields the
# bot does not read are not checked; a payload that breaks a check is not Discord's: 400.
MAX_NAME_CHARS = 100  # usernames, global names and nicks are at most 32; some slack for changes
MAX_TOKEN_CHARS = 1000  # Discord's tokens are a few hundred URL-safe characters
MAX_OPTION_STRING_CHARS = 6000  # Discord's own limit for a string option
MAX_CUSTOM_ID_CHARS = 100  # Discord's own limit
MAX_OPTIONS = 25  # per level, Discord's own limit
MAX_ROLES = 250  # a guild's roles, Discord's own limit
MAX_SAFE_NUMBER = 2**53  # integer and number options are doubles in Discord's API
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
# STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT
_OPTION_TYPES = frozenset({3, 4, 5, 6, 7, 8, 9, 10, 11})


def _refuse(where: str, what: str) -> RequestRejected:
    return RequestRejected(400, f"not an interaction Discord would send: {where} {what}")


def _snowflake(value: Any, where: str) -> str:
    """A Discord id as Discord sends it: a string of digits, no sign or leading zero, < 2^63."""
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= 19
        or not value.isascii()
        or not value.isdigit()
        or value[0] == "0"
        or int(value) >= 2**63
    ):
        raise _refuse(where, "is not a Discord id")
    return value


def _text(value: Any, where: str, max_chars: int, *, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > max_chars:
        raise _refuse(where, f"is not a string of 1 to {max_chars} characters")
    return value


def _object(value: Any, where: str, *, optional: bool = True) -> dict[str, Any]:
    if value is None and optional:
        return {}
    if not isinstance(value, dict):
        raise _refuse(where, "is not an object")
    return value


def _list(value: Any, where: str, max_items: int) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > max_items:
        raise _refuse(where, f"is not a list of at most {max_items}")
    return value


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse(where, "is not an integer")
    return value


def _option_value(option: dict[str, Any], where: str) -> Any:
    """An option's value: a string, number or boolean of an option type Discord has. Whether it
    is the type the command declares is for `catalog.option_problem`, which answers in words."""
    kind, value = option.get("type"), option.get("value")
    if kind not in _OPTION_TYPES:
        raise _refuse(where, "has an unknown option type")
    if isinstance(value, str):
        if len(value) > MAX_OPTION_STRING_CHARS:
            raise _refuse(where, f"is longer than {MAX_OPTION_STRING_CHARS} characters")
    elif isinstance(value, float):
        if not abs(value) <= MAX_SAFE_NUMBER:  # NaN and infinities too
            raise _refuse(where, "is not a number in range")
    elif not isinstance(value, int):  # bool is an int
        raise _refuse(where, "is not a string, number or boolean")
    return value


def _flatten_options(options: Any) -> tuple[list[str], dict[str, Any], dict[str, int], str | None]:
    """Sub-command (group) names, the leaf options' values and types, of a command, and the
    option an autocomplete interaction is focused on (the one the member is typing in)."""
    path: list[str] = []
    values: dict[str, Any] = {}
    types: dict[str, int] = {}
    focused: str | None = None
    level = _list(options, "data.options", MAX_OPTIONS)
    while level:
        for option in level:
            _object(option, "an option", optional=False)
        first = level[0]
        if first.get("type") in (SUB_COMMAND, SUB_COMMAND_GROUP):
            if len(level) != 1 or len(path) == 2 or (path and first["type"] == SUB_COMMAND_GROUP):
                raise _refuse("data.options", "nest sub-commands the way Discord does not")
            path.append(_text(first.get("name"), "a sub-command name", 32, optional=False))
            level = _list(first.get("options"), "a sub-command's options", MAX_OPTIONS)
            continue
        for option in level:
            name = _text(option.get("name"), "an option name", 32, optional=False)
            if name in values:
                raise _refuse("data.options", f"name {name!r} twice")
            values[name] = _option_value(option, f"option {name!r}")
            types[name] = option["type"]
            if option.get("focused") is True:
                if focused is not None:
                    raise _refuse("data.options", "focus two options")
                focused = name
        break
    return path, values, types, focused


def _user_of(value: Any, where: str) -> dict[str, Any]:
    user = _object(value, where, optional=False)
    _snowflake(user.get("id"), f"{where}.id")
    for name in ("username", "global_name"):
        _text(user.get(name), f"{where}.{name}", MAX_NAME_CHARS)
    return user


def _display(user: dict[str, Any], member: dict[str, Any] | None) -> str | None:
    return (member or {}).get("nick") or user.get("global_name") or user.get("username")


MAX_LOCALE_CHARS = 16  # Discord's locales are like "en-US", "zh-TW", "es-419"
MAX_MODAL_FIELDS = 25


def _locale(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_LOCALE_CHARS or not value.isascii() \
            or not value.replace("-", "").isalnum():  # fmt: skip
        raise _refuse(where, "is not a locale")
    return value


def _resolved_user(uid: str, user: dict[str, Any], member: dict[str, Any] | None) -> ResolvedUser:
    """A user with the fields a card shows; avatar hashes are checked where they are used."""
    for name in ("avatar", "discriminator"):
        _text(user.get(name), f"a user's {name}", MAX_NAME_CHARS)
    _text((member or {}).get("avatar"), "a member's avatar", MAX_NAME_CHARS)
    return ResolvedUser(uid, user.get("username"), _display(user, member), user.get("avatar"),
                        user.get("discriminator"), (member or {}).get("avatar"), user.get("bot") is True)  # fmt: skip


def _modal_values(components: Any, found: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """A modal submit's values by custom_id: text inputs (value), selects (values), checkboxes."""
    for item in _list(components, "data.components", MAX_MODAL_FIELDS):
        _object(item, "a modal component", optional=False)
        if depth > 3:
            raise _refuse("data.components", "nest deeper than Discord does")
        inner = item.get("component")
        if inner is not None:
            _modal_values([inner], found, depth + 1)
        if item.get("components") is not None:
            _modal_values(item.get("components"), found, depth + 1)
        custom_id = item.get("custom_id")
        if custom_id is None:
            continue
        _text(custom_id, "a modal field's custom_id", MAX_CUSTOM_ID_CHARS, optional=False)
        if "value" in item:
            value = item["value"]
            if isinstance(value, str):
                if len(value) > 4000:
                    raise _refuse("a modal field", "is longer than 4000 characters")
            elif not isinstance(value, bool):
                raise _refuse("a modal field", "has a value that is neither text nor true/false")
            found[custom_id] = value
        elif "values" in item:
            values = _list(item["values"], "a modal select's values", 25)
            if not all(isinstance(v, str) and len(v) <= 100 for v in values):
                raise _refuse("a modal select", "has values that are not short strings")
            found[custom_id] = values
    return found


def parse(payload: dict[str, Any]) -> Interaction:
    """Turn a verified payload into an Interaction; raises RequestRejected(400) if it is not one
    Discord would send (see the checks above)."""
    kind = _integer(payload.get("type"), "type")
    interaction_id = _snowflake(payload.get("id"), "id")
    application_id = _snowflake(payload.get("application_id"), "application_id")
    token = _text(payload.get("token"), "token", MAX_TOKEN_CHARS, optional=False)
    if not token.isascii() or not token.isprintable() or " " in token:  # it goes into webhook URLs
        raise _refuse("token", "has characters Discord's tokens do not")
    guild_id = payload.get("guild_id")
    if guild_id is not None:
        _snowflake(guild_id, "guild_id")
    channel_id = payload.get("channel_id")
    if channel_id is None:
        channel_id = _object(payload.get("channel"), "channel").get("id")
    if channel_id is not None:
        _snowflake(channel_id, "channel_id")
    member = _object(payload.get("member"), "member") or None
    if member is not None:
        user = _user_of(member.get("user"), "member.user")
        _text(member.get("nick"), "member.nick", MAX_NAME_CHARS)
        roles = tuple(
            _snowflake(r, "member.roles[]") for r in _list(member.get("roles"), "member.roles", MAX_ROLES)
        )
    else:
        user = _user_of(payload.get("user"), "user")
        roles = ()
    data = _object(
        payload.get("data"),
        "data",
        optional=kind not in (APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT),
    )
    command, options, option_types, custom_id, focused = "", {}, {}, None, None
    users: dict[str, ResolvedUser] = {}
    command_type, target_id, target_message, modal_values = CHAT_INPUT, None, None, {}
    if kind in (APPLICATION_COMMAND, AUTOCOMPLETE):
        command_type = data.get("type", CHAT_INPUT)
        if command_type not in (CHAT_INPUT, USER_COMMAND, MESSAGE_COMMAND):
            raise _refuse("data.type", "is not a command type")
        path, options, option_types, focused = _flatten_options(data.get("options"))
        # Context-menu commands have names with spaces and capitals ("Points profile").
        name_limit = 32 if command_type == CHAT_INPUT else MAX_NAME_CHARS
        command = " ".join([_text(data.get("name"), "data.name", name_limit, optional=False), *path])
        resolved = _object(data.get("resolved"), "data.resolved")
        resolved_members = _object(resolved.get("members"), "data.resolved.members")
        for uid, raw_user in _object(resolved.get("users"), "data.resolved.users").items():
            _snowflake(uid, "a data.resolved.users key")
            resolved_user = _user_of(raw_user, "a data.resolved.users value")
            resolved_member = _object(resolved_members.get(uid), "a data.resolved.members value") or None
            _text((resolved_member or {}).get("nick"), "a resolved member's nick", MAX_NAME_CHARS)
            users[uid] = _resolved_user(uid, resolved_user, resolved_member)
        if kind == AUTOCOMPLETE and focused is None:
            raise _refuse("data.options", "focus no option in an autocomplete")
        if command_type != CHAT_INPUT:
            target_id = _snowflake(data.get("target_id"), "data.target_id")
        if command_type == MESSAGE_COMMAND:
            message = _object(_object(resolved.get("messages"), "data.resolved.messages").get(target_id),
                              "the target message", optional=False)  # fmt: skip
            author = _user_of(message.get("author"), "the target message's author")
            target_message = TargetMessage(
                target_id, _snowflake(message.get("channel_id") or channel_id, "the message's channel_id"),
                author["id"], author.get("bot") is True,
            )  # fmt: skip
    elif kind == MESSAGE_COMPONENT:
        custom_id = _text(data.get("custom_id"), "data.custom_id", MAX_CUSTOM_ID_CHARS, optional=False)
        _integer(data.get("component_type"), "data.component_type")
    elif kind == MODAL_SUBMIT:
        custom_id = _text(data.get("custom_id"), "data.custom_id", MAX_CUSTOM_ID_CHARS, optional=False)
        modal_values = _modal_values(data.get("components"), {})
    return Interaction(
        id=interaction_id,
        application_id=application_id,
        type=kind,
        token=token,
        guild_id=guild_id,
        channel_id=channel_id,
        user_id=user["id"],
        username=user.get("username"),
        display_name=_display(user, member),
        permissions=parse_permissions((member or {}).get("permissions")),
        roles=roles,
        command=command,
        options=options,
        custom_id=custom_id,
        users=users,
        option_types=option_types,
        focused=focused,
        raw=payload,
        locale=_locale(payload.get("locale"), "locale"),
        guild_locale=_locale(payload.get("guild_locale"), "guild_locale"),
        command_type=command_type,
        target_id=target_id,
        target_message=target_message,
        modal_values=modal_values,
        me=_resolved_user(user["id"], user, member),
    )


# -- answers -----------------------------------------------------------------------------------
NO_MENTIONS = {"parse": []}


@dataclass(frozen=True)
class Reply:
    """What a command answers: text, whether only the asker sees it, buttons.

    `update` means "edit the message the button was on" (UPDATE_MESSAGE) rather than a new one.
    `v2`: `components` are a Components V2 card (pointsbot.discord.cards) and `content` is only
    its plain-text rendering (logs, tests): Discord gets the components and the IS_COMPONENTS_V2
    flag, no content. `modal`: the answer opens this modal (MODAL callback) instead.
    """

    content: str
    ephemeral: bool = False
    components: tuple[dict[str, Any], ...] = ()
    update: bool = False
    v2: bool = False
    modal: dict[str, Any] | None = None

    def message_data(self) -> dict[str, Any]:
        if self.v2:
            data: dict[str, Any] = {"components": list(self.components), "allowed_mentions": NO_MENTIONS}
            data["flags"] = IS_COMPONENTS_V2 | (EPHEMERAL if self.ephemeral and not self.update else 0)
            return data
        data = {"content": self.content[:2000], "allowed_mentions": NO_MENTIONS}
        if self.components or self.update:
            data["components"] = list(self.components)
        if self.ephemeral and not self.update:
            data["flags"] = EPHEMERAL
        return data

    def as_response(self) -> dict[str, Any]:
        if self.modal is not None:
            return {"type": MODAL, "data": self.modal}
        kind = UPDATE_MESSAGE if self.update else CHANNEL_MESSAGE_WITH_SOURCE
        return {"type": kind, "data": self.message_data()}

    def as_edit(self) -> dict[str, Any]:
        """The body of PATCH .../messages/@original (only IS_COMPONENTS_V2 of the flags may be set
        on an edit; ephemeral was decided by the first answer)."""
        data = self.message_data()
        data.pop("flags", None)
        if self.v2:
            data["flags"] = IS_COMPONENTS_V2
        return data

    def with_update(self) -> Reply:
        return replace(self, update=True)

    def to_json(self) -> dict[str, Any]:
        return {"content": self.content, "ephemeral": self.ephemeral,
                "components": list(self.components), "update": self.update, "v2": self.v2}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        return cls(
            str(data["content"]),
            bool(data.get("ephemeral")),
            tuple(data.get("components") or ()),
            bool(data.get("update")),
            bool(data.get("v2")),
        )


def pong() -> dict[str, Any]:
    return {"type": PONG}


def deferred(interaction: Interaction, ephemeral: bool, update: bool = True) -> dict[str, Any]:
    """ "Thinking..." for a command or a button that answers with a new message (update=False:
    @original is then that message), or a silent acknowledgement for a button that edits the
    message it is on."""
    if interaction.is_component and update:
        return {"type": DEFERRED_UPDATE_MESSAGE}
    answer: dict[str, Any] = {"type": DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE}
    if ephemeral:
        answer["data"] = {"flags": EPHEMERAL}
    return answer


def ephemeral(content: str) -> dict[str, Any]:
    return Reply(content, ephemeral=True).as_response()


MAX_CHOICES = 25  # Discord's limit on autocomplete choices
MAX_CHOICE_CHARS = 100  # a choice's name and a string choice's value


def autocomplete_result(choices: list[tuple[str, str]]) -> dict[str, Any]:
    """APPLICATION_COMMAND_AUTOCOMPLETE_RESULT with (name, value) string choices, clipped to
    Discord's limits (25 choices, 100 characters each)."""
    return {
        "type": AUTOCOMPLETE_RESULT,
        "data": {
            "choices": [
                {"name": name[:MAX_CHOICE_CHARS], "value": value[:MAX_CHOICE_CHARS]}
                for name, value in choices[:MAX_CHOICES]
            ]
        },
    }


_AVATAR_HASH = re.compile(r"^(a_)?[0-9a-f]{32}$")


def avatar_path(user_id: str | int, user_hash: Any, guild_id: str | int | None = None,
                member_hash: Any = None) -> str | None:  # fmt: skip
    """The picture Discord shows for a member, as a path on its CDN (kept for the admin site):
    the guild's own avatar if set, else the account's; None without one. A hash that is not
    Discord's shape is ignored (never refused: it is only a picture)."""
    if guild_id and isinstance(member_hash, str) and _AVATAR_HASH.match(member_hash):
        return f"guilds/{guild_id}/users/{user_id}/avatars/{member_hash}"
    if isinstance(user_hash, str) and _AVATAR_HASH.match(user_hash):
        return f"avatars/{user_id}/{user_hash}"
    return None


def picture_of(user: ResolvedUser | None, guild_id: str | int | None) -> str | None:
    """`avatar_path` of a resolved user (the asker's `me`, or a user named in an option)."""
    return None if user is None else avatar_path(user.id, user.avatar, guild_id, user.member_avatar)
