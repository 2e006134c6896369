"""A cold start answering a PING (or refusing a forgery) does not wait for Secrets Manager."""

from __future__ import annotations

import json
import time

import pytest
from nacl.signing import SigningKey

from pointsbot.commands import endpoint
from pointsbot.platform import secrets
from pointsbot.platform.config import get_settings, reset_settings
from pointsbot_local.apigw import to_event
from pointsbot_local.keys import KeyPair

pytestmark = pytest.mark.unit

PING = {
    "id": "1300000000000000001",
    "application_id": "100000000000000001",
    "type": 1,
    "token": "t",
    "version": 1,
}


@pytest.fixture
def deployed_env(monkeypatch) -> tuple[KeyPair, list]:
    """Environment as in AWS: the public key in plain text, the database URL by reference."""
    key = SigningKey.generate()
    pair = KeyPair(key.encode().hex(), key.verify_key.encode().hex())
    monkeypatch.setenv("DISCORD_PUBLIC_KEY", pair.public_hex)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:000000000000:secret:db")
    reads: list = []

    def recording_with_secrets(environ):
        reads.append("secrets")
        return {**environ, "DATABASE_URL": "postgresql://from-the-secret/db"}

    monkeypatch.setattr(secrets, "with_secrets", recording_with_secrets)
    reset_settings()
    yield pair, reads
    reset_settings()


def _signed_event(pair: KeyPair, payload: dict, *, forge: bool = False) -> dict:
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()))
    signature = pair.sign(stamp, body)
    if forge:
        signature = ("0" if signature[0] != "0" else "1") + signature[1:]
    headers = {
        "content-type": "application/json",
        "x-signature-ed25519": signature,
        "x-signature-timestamp": stamp,
    }
    return to_event("POST", "/interactions", headers, body)


def test_ping_and_forgery_are_answered_without_reading_a_secret(deployed_env):
    pair, reads = deployed_env
    # When a PING and a forged request arrive on a cold container
    pong = endpoint.handle(_signed_event(pair, PING))
    forged = endpoint.handle(_signed_event(pair, PING, forge=True))
    # Then both are answered and no secret was read
    assert (pong.status, pong.body) == (200, {"type": 1})
    assert forged.status == 401
    assert reads == []
    # while the full settings, when a command needs them, do come from the secret
    assert get_settings().database_url == "postgresql://from-the-secret/db"
    assert reads == ["secrets"]
