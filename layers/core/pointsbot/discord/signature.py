"""Is this request Discord's? The Ed25519 signature over timestamp + body, the timestamp's
window, the body's size and JSON nesting. PyNaCl checks the signature (see interactions.py for
why not discord-interactions' verify_key)."""

from __future__ import annotations

import json
import time
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

# Discord signs `timestamp + body`; a replayed request outside this window is refused.
MAX_AGE_S = 300
MAX_AHEAD_S = 60
# Discord's interaction payloads are a few KB; this keeps a deferred one within an SQS message.
MAX_BODY_BYTES = 128 * 1024
# Discord's deepest payload (a message with nested components, inside an interaction) is about
# a dozen levels of objects and arrays; anything far deeper is not from Discord. A fixed limit
# keeps what is accepted independent of how deep the interpreter's stack happens to be.
MAX_JSON_DEPTH = 64


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
    if not isinstance(payload, dict) or type(payload.get("type")) is not int:  # true is no type
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
