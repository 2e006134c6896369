"""The admin audit log: who did what, when, with the state before and after."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb


def record(
    conn: psycopg.Connection,
    *,
    guild_id: int | None,
    actor_id: int | None,
    actor_name: str,
    action: str,
    target: str = "",
    before: Any = None,
    after: Any = None,
) -> int:
    """Write one audit row inside the caller's transaction, so it exists iff the change does."""
    row = conn.execute(
        "INSERT INTO admin_audit (guild_id, actor_id, actor_name, action, target, before, after) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            guild_id,
            actor_id,
            actor_name,
            action,
            target,
            None if before is None else Jsonb(before),
            None if after is None else Jsonb(after),
        ),
    ).fetchone()
    return row[0]
