"""Discord's interactions protocol: signature checks, parsing, and the shapes of answers.

No database and no command logic here: this is what the interactions function needs to answer
PING and to turn a signed HTTP body into an `Interaction` (and a `Reply` back into JSON).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from discord_interactions import InteractionResponseFlags, InteractionResponseType, InteractionType
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from .permissions import ADMINISTRATOR, parse_permissions
from .permissions import MANAGE_GUILD as MANAGE_GUILD  # the bit commands check, re-exported

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

# Discord signs `timestamp + body`; a replayed request outside this window is refused.
MAX_AGE_S = 300
MAX_AHEAD_S = 60
# Discord's interaction payloads are a few KB; this keeps a deferred one within an SQS message.
MAX_BODY_BYTES = 128 * 1024
# Discord's deepest payload (a message with nested components, inside an interaction) is about
# a dozen levels of objects and arrays; anything far deeper is not from Discord. A fixed limit
# keeps what is accepted independent of how deep the interpreter's stack happens to be.
MAX_JSON_DEPTH = 64

DISCORD_EPOCH_MS = 1_420_070_400_000


class RequestRejected(Exception):
    """The HTTP request cannot be processed; `status` is what to answer (400, 401, 413)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# -- verification --------------------------------------------------------------------------
class Verifier:
    """Checks Discord's Ed25519 signature; the key is parsed once and kept."""

    def __init__(self, public_key_hex: str) -> None:
        try:
            self._key = VerifyKey(bytes.fromhex(public_key_hex))
        except ValueError as exc:
            raise ValueError("DISCORD_PUBLIC_KEY must be 64 hex characters") from exc
        self.public_key_hex = public_key_hex

    def verify(self, headers: dict[str, str], body: bytes, now: float | None = None) -> None:
        """Raise RequestRejected(401) unless the signature is valid and the timestamp fresh.

        `headers` must have lower-case names (API Gateway payload 2.0 gives them so).
        """
        signature = headers.get("x-signature-ed25519", "")
        timestamp = headers.get("x-signature-timestamp", "")
        if not signature or not timestamp:
            raise RequestRejected(401, "missing signature headers")
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise RequestRejected(401, "bad signature timestamp")
        now = time.time() if now is None else now
        age = now - int(timestamp)
        if age > MAX_AGE_S or age < -MAX_AHEAD_S:
            raise RequestRejected(401, "stale or future signature timestamp")
        try:
            raw_signature = bytes.fromhex(signature)
        except ValueError:
            raise RequestRejected(401, "invalid request signature") from None
        if len(raw_signature) != 64:
            raise RequestRejected(401, "invalid request signature")
        try:
            self._key.verify(timestamp.encode() + body, raw_signature)
        except BadSignatureError:
            raise RequestRejected(401, "invalid request signature") from None


_verifier: Verifier | None = None


def verifier_for(public_key_hex: str) -> Verifier:
    """The container's verifier (rebuilt only if the configured key changes, as in tests)."""
    global _verifier
    if _verifier is None or _verifier.public_key_hex != public_key_hex:
        _verifier = Verifier(public_key_hex)
    return _verifier


def body_of(event: dict[str, Any]) -> bytes:
    """The raw request body of an API Gateway HTTP API (payload 2.0) event."""
    import base64
    import binascii

    raw = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise RequestRejected(400, "body is not valid base64") from None
    return raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)


def read_request(event: dict[str, Any], verifier: Verifier, now: float | None = None) -> dict[str, Any]:
    """Verify and parse one event; raises RequestRejected with the status to answer."""
    body = body_of(event)
    if len(body) > MAX_BODY_BYTES:
        raise RequestRejected(413, "request body too large")
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    verifier.verify(headers, body, now)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RequestRejected(400, "malformed JSON") from None
    except RecursionError:  # the parser recurses per level: 1,000 "[" in a row are enough
        raise RequestRejected(400, "JSON nested too deeply") from None
    if _nested_deeper_than(payload, MAX_JSON_DEPTH):
        raise RequestRejected(400, "JSON nested too deeply")
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), int):
        raise RequestRejected(400, "an interaction is a JSON object with an integer type")
    return payload


def _nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than `limit` levels (walked without recursion)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


# -- parsed interactions ---------------------------------------------------------------------
@dataclass(frozen=True)
class ResolvedUser:
    id: str
    username: str | None
    display_name: str | None


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
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_component(self) -> bool:
        return self.type == MESSAGE_COMPONENT

    @property
    def created_at(self) -> float:
        """Unix seconds, from the interaction id (a snowflake)."""
        return ((int(self.id) >> 22) + DISCORD_EPOCH_MS) / 1000

    def has_permission(self, bit: int) -> bool:
        return bool(self.permissions & ADMINISTRATOR) or bool(self.permissions & bit)


def _flatten_options(options: list[dict[str, Any]] | None) -> tuple[list[str], dict[str, Any]]:
    """Sub-command (group) names and the leaf options of an application command."""
    path: list[str] = []
    values: dict[str, Any] = {}
    while options:
        first = options[0]
        if first.get("type") in (1, 2):  # SUB_COMMAND, SUB_COMMAND_GROUP
            path.append(str(first.get("name", "")))
            options = first.get("options") or []
            continue
        for option in options:
            if "name" in option and "value" in option:
                values[str(option["name"])] = option["value"]
        break
    return path, values


def _display(user: dict[str, Any], member: dict[str, Any] | None) -> str | None:
    return (member or {}).get("nick") or user.get("global_name") or user.get("username")


def parse(payload: dict[str, Any]) -> Interaction:
    """Turn a verified payload into an Interaction; raises RequestRejected(400) if it is not one."""
    try:
        member = payload.get("member") or None
        user = (member or {}).get("user") or payload.get("user") or {}
        data = payload.get("data") or {}
        path, options = _flatten_options(data.get("options"))
        resolved = data.get("resolved") or {}
        resolved_members = resolved.get("members") or {}
        users = {
            str(uid): ResolvedUser(str(uid), u.get("username"), _display(u, resolved_members.get(uid)))
            for uid, u in (resolved.get("users") or {}).items()
        }
        permissions = parse_permissions((member or {}).get("permissions"))
        command = " ".join([str(data["name"]), *path]) if payload["type"] == APPLICATION_COMMAND else ""
        return Interaction(
            id=str(payload["id"]),
            application_id=str(payload["application_id"]),
            type=int(payload["type"]),
            token=str(payload["token"]),
            guild_id=str(payload["guild_id"]) if payload.get("guild_id") else None,
            channel_id=str(payload.get("channel_id") or (payload.get("channel") or {}).get("id") or "")
            or None,
            user_id=str(user["id"]),
            username=user.get("username"),
            display_name=_display(user, member),
            permissions=permissions,
            roles=tuple(str(r) for r in (member or {}).get("roles") or ()),
            command=command,
            options=options,
            custom_id=str(data["custom_id"]) if payload["type"] == MESSAGE_COMPONENT else None,
            users=users,
            raw=payload,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RequestRejected(
            400, f"not an interaction Discord would send ({exc.__class__.__name__})"
        ) from exc


# -- answers -----------------------------------------------------------------------------------
NO_MENTIONS = {"parse": []}


@dataclass(frozen=True)
class Reply:
    """What a command answers: text, whether only the asker sees it, buttons.

    `update` means "edit the message the button was on" (UPDATE_MESSAGE) rather than a new one.
    """

    content: str
    ephemeral: bool = False
    components: tuple[dict[str, Any], ...] = ()
    update: bool = False

    def message_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"content": self.content[:2000], "allowed_mentions": NO_MENTIONS}
        if self.components or self.update:
            data["components"] = list(self.components)
        if self.ephemeral and not self.update:
            data["flags"] = EPHEMERAL
        return data

    def as_response(self) -> dict[str, Any]:
        kind = UPDATE_MESSAGE if self.update else CHANNEL_MESSAGE_WITH_SOURCE
        return {"type": kind, "data": self.message_data()}

    def as_edit(self) -> dict[str, Any]:
        """The body of PATCH .../messages/@original (flags cannot change on an edit)."""
        data = self.message_data()
        data.pop("flags", None)
        return data

    def to_json(self) -> dict[str, Any]:
        return {"content": self.content, "ephemeral": self.ephemeral,
                "components": list(self.components), "update": self.update}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        return cls(
            str(data["content"]),
            bool(data.get("ephemeral")),
            tuple(data.get("components") or ()),
            bool(data.get("update")),
        )


def pong() -> dict[str, Any]:
    return {"type": PONG}


def deferred(interaction: Interaction, ephemeral: bool) -> dict[str, Any]:
    """ "Thinking..." for a command, or a silent acknowledgement for a button."""
    if interaction.is_component:
        return {"type": DEFERRED_UPDATE_MESSAGE}
    answer: dict[str, Any] = {"type": DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE}
    if ephemeral:
        answer["data"] = {"flags": EPHEMERAL}
    return answer


def ephemeral(content: str) -> dict[str, Any]:
    return Reply(content, ephemeral=True).as_response()
