"""API keys of a guild (issue 13): made on the admin site, shown once, kept only as a hash.

A key is "pbk_" + 43 URL-safe characters (32 random bytes). The table holds its SHA-256 (a key
that random needs no slow hash: there is nothing to guess from it), its first characters to tell
keys apart, its scopes (`read`, `write`), who made it, when it was last used and whether it is
revoked. Creating and revoking are audited in the caller's transaction (admin_audit actions
api_key.create, api_key.revoke); every use of a key is audited by the API (action api.*).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import psycopg

from ..platform.errors import InvalidInput, NotFound
from ..platform.storable import check_text
from . import audit

SCOPES = ("read", "write")
KEY_PREFIX = "pbk_"
MAX_NAME = 100
# last_used_at is written at most this often per key, so a busy key does not write its row on
# every request (the audit log has every use, exactly).
LAST_USED_RESOLUTION_S = 60


@dataclass(frozen=True)
class ApiKey:
    id: int
    guild_id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    secret: str  # the whole key: shown once, never stored


_COLUMNS = "id, guild_id, name, prefix, scopes, created_at, created_by, last_used_at, revoked_at, revoked_by"


def _key(row: tuple) -> ApiKey:
    return ApiKey(*row[:4], tuple(row[4]), *row[5:])


def hash_key(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def check_scopes(scopes: object) -> tuple[str, ...]:
    chosen = tuple(s for s in SCOPES if s in (scopes or ()))
    unknown = [s for s in (scopes or ()) if s not in SCOPES]
    if unknown or not chosen:
        raise InvalidInput("Choose what the key may do: read, write, or both.")
    return chosen


def create_key(
    conn: psycopg.Connection,
    guild_id: int,
    *,
    name: str,
    scopes: object,
    actor_id: int | None,
    actor_name: str,
) -> NewKey:
    """A new key; its secret is in the result and nowhere else."""
    text = check_text((name or "").strip(), "The key's name")
    if not text:
        raise InvalidInput("Give the key a name (what uses it, e.g. “website”).")
    if len(text) > MAX_NAME:
        raise InvalidInput(f"The key's name is too long (at most {MAX_NAME} characters).")
    chosen = check_scopes(scopes)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = conn.execute(
        f"INSERT INTO api_keys (guild_id, name, prefix, key_hash, scopes, created_by) VALUES (%s, %s, %s, %s, %s, %s) "
        f"RETURNING {_COLUMNS}",
        (guild_id, text, secret[: len(KEY_PREFIX) + 8], hash_key(secret), list(chosen), actor_name),
    ).fetchone()
    key = _key(row)
    audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name, action="api_key.create",
                 target=f"api_key:{key.id}", after={"name": key.name, "scopes": list(chosen), "prefix": key.prefix})  # fmt: skip
    return NewKey(key, secret)


def revoke_key(
    conn: psycopg.Connection, guild_id: int, key_id: int, *, actor_id: int | None, actor_name: str
) -> ApiKey:
    """Revoke a key of this guild; revoking a revoked key changes nothing."""
    row = conn.execute(
        f"UPDATE api_keys SET revoked_at = now(), revoked_by = %s WHERE guild_id = %s AND id = %s "
        f"AND revoked_at IS NULL RETURNING {_COLUMNS}",
        (actor_name, guild_id, key_id),
    ).fetchone()
    if row is None:
        existing = get_key(conn, guild_id, key_id)
        if existing is None:
            raise NotFound("There is no such API key in this server.")
        return existing
    key = _key(row)
    audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name, action="api_key.revoke",
                 target=f"api_key:{key.id}", before={"name": key.name, "prefix": key.prefix})  # fmt: skip
    return key


def get_key(conn: psycopg.Connection, guild_id: int, key_id: int) -> ApiKey | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM api_keys WHERE guild_id = %s AND id = %s", (guild_id, key_id)
    ).fetchone()
    return _key(row) if row else None


def list_keys(conn: psycopg.Connection, guild_id: int) -> list[ApiKey]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM api_keys WHERE guild_id = %s ORDER BY revoked_at IS NOT NULL, id DESC LIMIT 200",
        (guild_id,),
    ).fetchall()
    return [_key(r) for r in rows]


def find_by_secret(conn: psycopg.Connection, secret: str) -> ApiKey | None:
    """The key a request presents (revoked ones too: the caller says why it is refused)."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > 100:
        return None
    row = conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = %s", (hash_key(secret),)).fetchone()
    return _key(row) if row else None
