"""The DM outbox: every direct message is a `direct_messages` row first, delivered later.

`enqueue_dm` writes the row inside the caller's transaction; after COMMIT the caller calls
`request_delivery()`, which asks the worker (task "deliver_dms") to deliver what is due.
"""

from __future__ import annotations

import psycopg

from .errors import InvalidInput
from .observability import logger

REASONS = ("admin", "points", "email", "achievement")
# Discord refuses message content over 2000 characters.
MAX_CONTENT = 2000
DELIVER_TASK_KIND = "deliver_dms"


def _check_content(content: object) -> str:
    if not isinstance(content, str) or not content.strip():
        raise InvalidInput("The message is empty.")
    text = content.strip()
    if len(text) > MAX_CONTENT:
        raise InvalidInput(f"The message is too long (at most {MAX_CONTENT} characters).")
    return text


def enqueue_dm(
    conn: psycopg.Connection,
    *,
    guild_id: int,
    user_id: int,
    content: str,
    reason: str,
    dedupe_key: str | None = None,
    created_by: int | None = None,
) -> int | None:
    """Queue a DM in the caller's transaction; returns its id.

    None when nothing was queued: the member opted out of automatic DMs (every reason but
    'admin'), the member is erased or unknown, or `dedupe_key` was queued before.
    The caller calls `request_delivery()` after its transaction commits.
    """
    if reason not in REASONS:
        raise InvalidInput(f"unknown DM reason {reason!r}")
    text = _check_content(content)
    if dedupe_key is not None and (not dedupe_key or len(dedupe_key) > 200):
        raise InvalidInput("A DM dedupe key is 1 to 200 characters.")
    row = conn.execute(
        """
        INSERT INTO direct_messages (guild_id, user_id, content, reason, dedupe_key, created_by)
        SELECT m.guild_id, m.user_id, %(content)s, %(reason)s, %(dedupe_key)s, %(created_by)s
        FROM members m
        WHERE m.guild_id = %(guild_id)s AND m.user_id = %(user_id)s
          AND m.erased_at IS NULL
          AND (%(reason)s = 'admin' OR NOT m.dm_opt_out)
        ON CONFLICT (guild_id, dedupe_key) DO NOTHING
        RETURNING id
        """,
        {
            "guild_id": guild_id,
            "user_id": user_id,
            "content": text,
            "reason": reason,
            "dedupe_key": dedupe_key,
            "created_by": created_by,
        },
    ).fetchone()
    return None if row is None else row[0]


def request_delivery(delay_seconds: int = 0) -> bool:
    """Ask the worker to deliver due DMs (a "deliver_dms" task). Call after COMMIT.

    Never raises: the DM rows are safe in the database whatever happens here, and the
    keep-alive schedule asks again for anything left due. Returns whether the task was sent.
    """
    from .tasks import Task, get_task_queue

    try:
        get_task_queue().send(Task(DELIVER_TASK_KIND, {}), delay_seconds=delay_seconds)
    except Exception:  # the caller's change is committed; delivery is asked for again later
        logger.warning("could not request DM delivery; the keep-alive will ask again", exc_info=True)
        return False
    return True
