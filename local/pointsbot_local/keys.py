"""The local Ed25519 key pair that stands in for a Discord application's keys."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from nacl.signing import SigningKey


@dataclass(frozen=True)
class KeyPair:
    private_hex: str
    public_hex: str

    def sign(self, timestamp: str, body: bytes) -> str:
        return SigningKey(bytes.fromhex(self.private_hex)).sign(timestamp.encode() + body).signature.hex()


def load_or_create(path: Path) -> KeyPair:
    """Made once and kept, so a simulator in another shell signs with the same key."""
    if path.exists():
        data = json.loads(path.read_text())
        return KeyPair(data["private_key"], data["public_key"])
    key = SigningKey.generate()
    pair = KeyPair(key.encode().hex(), key.verify_key.encode().hex())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"private_key": pair.private_hex, "public_key": pair.public_hex}))
    path.chmod(0o600)
    return pair
