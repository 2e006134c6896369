"""Member profiles: who a member is in a guild (names, email, notes, DM opt-out)."""

from __future__ import annotations

import psycopg

from .guilds import ensure_guild
from .ledger import ensure_member


def remember(
    conn: psycopg.Connection,
    guild_id: int,
    user_id: int,
    username: str | None = None,
    display_name: str | None = None,
) -> None:
    """Record a member on contact, keeping the names Discord last showed us."""
    ensure_guild(conn, guild_id)
    ensure_member(conn, guild_id, user_id)
    if username is not None or display_name is not None:
        conn.execute(
            """
            UPDATE members SET username = coalesce(%s, username), display_name = coalesce(%s, display_name),
                   updated_at = now()
            WHERE guild_id = %s AND user_id = %s
              AND (username IS DISTINCT FROM coalesce(%s, username)
                   OR display_name IS DISTINCT FROM coalesce(%s, display_name))
              AND erased_at IS NULL
            """,
            (username, display_name, guild_id, user_id, username, display_name),
        )
