"""Admin-site sessions, kept in Postgres: the cookie holds a random token, the table its hash.

A session is anonymous (it carries the sign-in form's CSRF token and the OAuth state) until
someone signs in; signing in always issues a new session and ends the anonymous one, so a
token planted before sign-in is worth nothing after it. Sessions end after an idle timeout,
an absolute timeout, or sign-out (the row is deleted). A Discord session also keeps the
user's OAuth2 access token, sealed with a key only the cookie's token gives, so its admin
rights can be asked of Discord again (`auth.recheck_discord_rights`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox
from psycopg.types.json import Jsonb

# A busy admin clicks many times a minute; writing last_seen_at on every click buys nothing.
_TOUCH_EVERY = timedelta(seconds=60)
ANONYMOUS_LIFETIME = timedelta(minutes=30)


@dataclass(frozen=True)
class Identity:
    """Who is signed in: a Discord user or a local account, and the guilds they may manage."""

    kind: str  # "discord" or "local"
    name: str
    guild_ids: tuple[int, ...]
    user_id: int | None = None  # the Discord id; None for a local account

    @property
    def actor_name(self) -> str:
        return self.name if self.kind == "discord" else f"local:{self.name}"

    def may_manage(self, guild_id: int) -> bool:
        return guild_id in self.guild_ids

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "guild_ids": [str(g) for g in self.guild_ids],
            "user_id": None if self.user_id is None else str(self.user_id),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Identity:
        return cls(
            kind=data["kind"],
            name=data["name"],
            guild_ids=tuple(int(g) for g in data.get("guild_ids", ())),
            user_id=None if data.get("user_id") is None else int(data["user_id"]),
        )


@dataclass
class Session:
    token: str  # only ever in the cookie and in memory
    csrf_token: str
    identity: Identity | None
    oauth_state: str | None = None
    flashes: list[dict[str, str]] = field(default_factory=list)
    created_at: datetime | None = None
    sealed_discord_token: bytes | None = None
    rights_age_s: float | None = None  # seconds since Discord last confirmed the rights

    @property
    def discord_token(self) -> str | None:
        """The Discord OAuth2 access token of a Discord sign-in (None if absent or unreadable)."""
        if not self.sealed_discord_token:
            return None
        try:
            return _box(self.token).decrypt(self.sealed_discord_token).decode()
        except (CryptoError, UnicodeDecodeError):
            return None

    @property
    def signed_in(self) -> bool:
        return self.identity is not None

    def csrf_ok(self, submitted: str | None) -> bool:
        return tokens_match(self.csrf_token, submitted)

    def oauth_state_ok(self, returned: str | None) -> bool:
        """Whether Discord's callback carries the state this session asked for."""
        return tokens_match(self.oauth_state, returned)


def tokens_match(expected: str | None, submitted: str | None) -> bool:
    """Constant-time comparison of a secret token with what a browser sent.

    hmac.compare_digest refuses str with non-ASCII characters (a TypeError, once a 500), so
    both sides are compared as UTF-8 bytes; "surrogatepass" keeps even a lone surrogate
    comparable instead of raising. Empty never matches.
    """
    if not expected or not submitted or not isinstance(submitted, str):
        return False
    return hmac.compare_digest(
        expected.encode("utf-8", "surrogatepass"), submitted.encode("utf-8", "surrogatepass")
    )


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _box(token: str) -> SecretBox:
    # The key comes from the cookie's token, which only the browser holds; the table keeps a
    # SHA-256 of it, from which this HMAC cannot be had. No key to manage, none in the database.
    return SecretBox(hmac.digest(token.encode(), b"pointsbot admin session: discord token", "sha256"))


def create(
    conn: psycopg.Connection,
    *,
    identity: Identity | None,
    max_age: timedelta,
    oauth_state: str | None = None,
    flashes: list[dict[str, str]] | None = None,
    discord_token: str | None = None,
) -> Session:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    sealed = None if discord_token is None else bytes(_box(token).encrypt(discord_token.encode()))
    row = conn.execute(
        "INSERT INTO admin_sessions (token_hash, identity, csrf_token, oauth_state, flashes, expires_at, "
        "discord_token, rights_checked_at) "
        "VALUES (%s, %s, %s, %s, %s, now() + %s, %s, CASE WHEN %s THEN now() END) RETURNING created_at",
        (
            _hash(token),
            None if identity is None else Jsonb(identity.as_json()),
            csrf,
            oauth_state,
            Jsonb(flashes or []),
            max_age,
            sealed,
            sealed is not None,
        ),
    ).fetchone()
    return Session(token, csrf, identity, oauth_state, list(flashes or []), row[0], sealed,
                   None if sealed is None else 0.0)  # fmt: skip


def load(conn: psycopg.Connection, token: str | None, *, idle: timedelta) -> Session | None:
    """The live session for a cookie's token, or None (unknown, idle too long, or expired)."""
    if not token or len(token) > 100:
        return None
    row = conn.execute(
        """
        SELECT identity, csrf_token, oauth_state, flashes, created_at, last_seen_at < now() - %s,
               discord_token, extract(epoch FROM now() - rights_checked_at)::float8
        FROM admin_sessions
        WHERE token_hash = %s AND expires_at > now() AND last_seen_at > now() - %s
        """,
        (_TOUCH_EVERY, _hash(token), idle),
    ).fetchone()
    if row is None:
        return None
    identity, csrf, state, flashes, created_at, stale, sealed, rights_age_s = row
    if stale:
        conn.execute("UPDATE admin_sessions SET last_seen_at = now() WHERE token_hash = %s", (_hash(token),))
    return Session(
        token, csrf, None if identity is None else Identity.from_json(identity), state, flashes, created_at,
        None if sealed is None else bytes(sealed), rights_age_s,
    )  # fmt: skip


def confirm_rights(conn: psycopg.Connection, session: Session, identity: Identity) -> None:
    """Discord confirmed the rights just now: the session manages exactly `identity`'s guilds."""
    conn.execute(
        "UPDATE admin_sessions SET identity = %s, rights_checked_at = now() WHERE token_hash = %s",
        (Jsonb(identity.as_json()), _hash(session.token)),
    )
    session.identity, session.rights_age_s = identity, 0.0


def set_oauth_state(conn: psycopg.Connection, session: Session, state: str) -> None:
    conn.execute(
        "UPDATE admin_sessions SET oauth_state = %s WHERE token_hash = %s", (state, _hash(session.token))
    )
    session.oauth_state = state


def add_flash(conn: psycopg.Connection, session: Session, kind: str, message: str) -> None:
    """A message for the next page this session sees (after a redirect)."""
    item = {"kind": kind, "message": message}
    conn.execute(
        "UPDATE admin_sessions SET flashes = flashes || %s WHERE token_hash = %s",
        (Jsonb([item]), _hash(session.token)),
    )
    session.flashes.append(item)


def take_flashes(conn: psycopg.Connection, session: Session) -> list[dict[str, str]]:
    if not session.flashes:
        return []
    conn.execute(
        "UPDATE admin_sessions SET flashes = '[]'::jsonb WHERE token_hash = %s", (_hash(session.token),)
    )
    taken, session.flashes = session.flashes, []
    return taken


def end(conn: psycopg.Connection, token: str | None) -> None:
    """Sign-out: the session stops existing on the server, whatever the browser keeps."""
    if token:
        conn.execute("DELETE FROM admin_sessions WHERE token_hash = %s", (_hash(token),))


def sign_in(
    conn: psycopg.Connection,
    previous_token: str | None,
    identity: Identity,
    *,
    max_age: timedelta,
    discord_token: str | None = None,
) -> Session:
    """End the anonymous session and start a new one for `identity` (a new id at sign-in);
    a Discord sign-in keeps its access token for re-checking the rights."""
    end(conn, previous_token)
    purge_expired(conn)
    return create(conn, identity=identity, max_age=max_age, discord_token=discord_token)


def purge_expired(conn: psycopg.Connection, limit: int = 500) -> int:
    """Delete a bounded number of dead sessions (run at sign-in, so no schedule is needed)."""
    return conn.execute(
        "DELETE FROM admin_sessions WHERE token_hash IN "
        "(SELECT token_hash FROM admin_sessions WHERE expires_at < now() LIMIT %s)",
        (limit,),
    ).rowcount
