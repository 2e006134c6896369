"""POST /interactions: Discord's interactions endpoint (API Gateway HTTP API, payload 2.0)."""

from __future__ import annotations

import base64
import json

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from pointsbot.config import get_settings

_verify_key: VerifyKey | None = None


def _key() -> VerifyKey:
    global _verify_key
    if _verify_key is None:
        _verify_key = VerifyKey(bytes.fromhex(get_settings().discord_public_key))
    return _verify_key


def _answer(status: int, body: dict) -> dict:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }


def lambda_handler(event: dict, context: object) -> dict:
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    signature = headers.get("x-signature-ed25519", "")
    timestamp = headers.get("x-signature-timestamp", "")
    try:
        _key().verify(timestamp.encode() + body, bytes.fromhex(signature))
    except (BadSignatureError, ValueError):
        return _answer(401, {"error": "invalid request signature"})
    try:
        interaction = json.loads(body)
    except ValueError:
        return _answer(400, {"error": "malformed JSON"})
    if interaction.get("type") == 1:
        return _answer(200, {"type": 1})
    return _answer(200, {"type": 4, "data": {"content": "This command is not available yet.", "flags": 64}})
