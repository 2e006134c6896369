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


# The rows `pending(...)` made, written by a statement that has other work to do (a command's
# stored answer, `commands.dispatch`): one round trip fewer than a `record` each. Its rows exist
# iff that statement's transaction commits, as `record`'s do.
INSERT_PENDING = """
INSERT INTO admin_audit (guild_id, actor_id, actor_name, action, target, before, after)
SELECT guild_id, actor_id, actor_name, action, target, before, after
FROM jsonb_to_recordset(%(audit)s) AS x (guild_id bigint, actor_id bigint, actor_name text, action text,
                                          target text, before jsonb, after jsonb)
"""


def pending(
    *,
    guild_id: int | None,
    actor_id: int | None,
    actor_name: str,
    action: str,
    target: str = "",
    before: Any = None,
    after: Any = None,
) -> dict[str, Any]:
    """One audit row for `INSERT_PENDING` (the same columns as `record` writes)."""
    return {"guild_id": guild_id, "actor_id": actor_id, "actor_name": actor_name, "action": action,
            "target": target, "before": before, "after": after}  # fmt: skip


def pending_param(rows: list[dict[str, Any]]) -> Jsonb:
    """`INSERT_PENDING`'s parameter."""
    return Jsonb(rows)
