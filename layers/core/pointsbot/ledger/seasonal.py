"""The ledger's season writes: a prize (one entry per winner), and a balance reset of a whole
guild as entries of their own kind, in batches, revertible as one batch (issue 15).

A reset is one operation (idempotency key "season_reset:<season id>") whose entries are written
a batch of members at a time, each batch in the caller's transaction with the cursor it
advances (community.seasons keeps the cursor in the season's row), so a killed run resumes
after the last batch committed and no member is reset twice. Every reset entry is kind and
source `season_reset`, amount = -balance, balance_after = 0 (or, for a member the caller says
keeps points, down to those: see reset_batch's `keep`): nothing is deleted, and
balance == sum(entries) holds after every batch. The revert is one operation too
("season_reset_revert:<season id>"): for each reset entry not yet reverted, a `revert` entry
(reverts_id = the reset entry, unique: one revert each, ever) of source `season_reset`.
Both go around the per-entry write path (one statement per batch instead of one per member):
at 1M members that path would take many minutes.
"""

from __future__ import annotations

import psycopg

from ..platform.amounts import COUNTER_CEILING, MAX_BALANCE
from .entries import OperationResult
from .guilds import GuildPolicy
from .operations import _begin, _fingerprint
from .statement import apply_entry


def season_prize(
    conn: psycopg.Connection, *, guild_id: int, user_id: int, amount: int, season_id: int, place: int,
    season_name: str, policy: GuildPolicy,
) -> OperationResult:  # fmt: skip
    """A winner's prize: one `season_prize` entry; a replay (the end run twice) returns the first."""
    begun = _begin(conn, guild_id, f"season_prize:{season_id}:{user_id}", "season_prize",
                   _fingerprint(op="season_prize", season=season_id, user=user_id, amount=amount))  # fmt: skip
    if isinstance(begun, OperationResult):
        return begun
    entry = apply_entry(
        conn, policy, operation_id=begun, guild_id=guild_id, user_id=user_id, amount=amount, kind="season_prize",
        reason=f"Season {season_name}: place {place}"[:500], actor_id=None, source="season_prize", silent=True,
        floor=None, actor_name="season",
    )  # fmt: skip
    return OperationResult(begun, (entry,), replayed=False)


def _operation(conn: psycopg.Connection, guild_id: int, key: str, kind: str) -> int:
    row = conn.execute(
        "INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (guild_id, idempotency_key) DO NOTHING RETURNING id",
        (guild_id, key, _fingerprint(op=kind, key=key), kind),
    ).fetchone()
    if row is not None:
        return row[0]
    return conn.execute(
        "SELECT id FROM operations WHERE guild_id = %s AND idempotency_key = %s", (guild_id, key)
    ).fetchone()[0]


def reset_operation(conn: psycopg.Connection, guild_id: int, season_id: int) -> int:
    """The one operation every reset entry of the season belongs to (made once)."""
    return _operation(conn, guild_id, f"season_reset:{season_id}", "season_reset")


def revert_operation(conn: psycopg.Connection, guild_id: int, season_id: int) -> int:
    return _operation(conn, guild_id, f"season_reset_revert:{season_id}", "revert")


# Only the non-zero balances of the key range are locked and written (a balance already at
# zero has nothing to reset, and most members of a large guild hold none). One that a concurrent
# change moves is re-read under its lock (READ COMMITTED): the reset takes what it holds then; a
# zero that becomes non-zero while the batch runs is a change after the reset, kept.
_RESET_BATCH = """
WITH keep AS (
    SELECT k.user_id, k.amount FROM unnest(%(keep_users)s::bigint[], %(keep_amounts)s::bigint[]) AS k (user_id, amount)
), batch AS (
    SELECT p.user_id, p.balance, GREATEST(LEAST(p.balance, coalesce(k.amount, 0)), 0) AS target
    FROM points p LEFT JOIN keep k ON k.user_id = p.user_id
    WHERE p.guild_id = %(g)s AND p.user_id > %(after)s AND p.user_id <= %(upto)s AND p.balance <> 0
    ORDER BY p.user_id
    FOR UPDATE OF p
), upd AS (
    UPDATE points p SET balance = b.target, updated_at = now()
    FROM batch b
    WHERE p.guild_id = %(g)s AND p.user_id > %(after)s AND p.user_id <= %(upto)s
      AND p.user_id = b.user_id AND b.balance <> b.target
    RETURNING p.user_id, b.balance - b.target AS taken, b.target
), ent AS (
    INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, reason,
                              actor_id, source, silent, actor_name)
    SELECT %(op)s, %(g)s, user_id, -taken, target, 'season_reset', %(reason)s, NULL, 'season_reset', TRUE, 'season'
    FROM upd
    RETURNING user_id
), st AS (
    UPDATE user_stats s SET
        transaction_count = s.transaction_count + 1,
        total_earned = LEAST(s.total_earned, %(ceiling)s::bigint - GREATEST(-u.taken, 0)) + GREATEST(-u.taken, 0),
        total_spent = LEAST(s.total_spent, %(ceiling)s::bigint - GREATEST(u.taken, 0)) + GREATEST(u.taken, 0),
        last_transaction_at = now()
    FROM upd u
    WHERE s.guild_id = %(g)s AND s.user_id > %(after)s AND s.user_id <= %(upto)s AND s.user_id = u.user_id
)
SELECT count(*) FROM ent
"""


def _batch_end(
    conn: psycopg.Connection, guild_id: int, after_user: int, limit: int, upto_user: int | None = None
) -> int | None:
    """The last user id of the next batch (by the primary key), none past `upto_user`: the
    batch is then a key range, which the UPDATE reads as one (a join to a list of ids can scan
    the guild's every member)."""
    row = conn.execute(
        "SELECT max(user_id) FROM (SELECT user_id FROM points WHERE guild_id = %s AND user_id > %s "
        "AND user_id <= coalesce(%s::bigint, 9223372036854775807) ORDER BY user_id LIMIT %s) b",
        (guild_id, after_user, upto_user, limit),
    ).fetchone()
    return row[0]


def split_point(conn: psycopg.Connection, guild_id: int, after_user: int, min_members: int) -> int | None:
    """The user id cutting the guild's members after `after_user` into two halves (the last of
    the first), or None when there are at most `min_members` of them."""
    (n,) = conn.execute(
        "SELECT count(*) FROM points WHERE guild_id = %s AND user_id > %s", (guild_id, after_user)
    ).fetchone()
    if n <= min_members:
        return None
    return conn.execute(
        "SELECT user_id FROM points WHERE guild_id = %s AND user_id > %s ORDER BY user_id OFFSET %s LIMIT 1",
        (guild_id, after_user, n // 2 - 1),
    ).fetchone()[0]


def reset_batch(
    conn: psycopg.Connection,
    *,
    guild_id: int,
    operation_id: int,
    after_user: int,
    limit: int,
    reason: str,
    keep: dict[int, int] | None = None,
    upto_user: int | None = None,
) -> tuple[int | None, int]:
    """Reset the balances of the next `limit` members after `after_user` (by user id, none past
    `upto_user`) to zero,
    one `season_reset` entry each (none for a zero balance, which is neither locked nor
    written). `keep` (user id -> points) is what the reset leaves a member: it takes a balance
    down to that, never below zero nor up to it (an end begun before prizes came after the
    reset had paid them already; community.seasons passes them). Returns (the last user id of
    the batch's key range, None when there was nobody left; how many entries were written)."""
    upto = _batch_end(conn, guild_id, after_user, limit, upto_user)
    if upto is None:
        return None, 0
    kept = {user: amount for user, amount in (keep or {}).items() if after_user < user <= upto}
    (written,) = conn.execute(
        _RESET_BATCH,
        {"g": guild_id, "after": after_user, "upto": upto, "op": operation_id, "reason": reason[:500],
         "ceiling": COUNTER_CEILING, "keep_users": list(kept), "keep_amounts": list(kept.values())},
    ).fetchone()  # fmt: skip
    return upto, int(written)


_REVERT_BATCH = """
WITH batch AS (
    SELECT user_id FROM points
    WHERE guild_id = %(g)s AND user_id > %(after)s AND user_id <= %(upto)s
    FOR UPDATE
), todo AS (
    SELECT r.id, r.user_id, r.amount
    FROM batch b, LATERAL (
        SELECT t.id, t.user_id, t.amount FROM transactions t
        WHERE t.guild_id = %(g)s AND t.user_id = b.user_id AND t.id >= %(first)s AND t.operation_id = %(reset_op)s
        ORDER BY t.id DESC LIMIT 1) r
    WHERE NOT EXISTS (SELECT 1 FROM transactions x WHERE x.reverts_id = r.id)
), upd AS (
    UPDATE points p SET balance = p.balance - td.amount, updated_at = now()
    FROM todo td
    WHERE p.guild_id = %(g)s AND p.user_id > %(after)s AND p.user_id <= %(upto)s AND p.user_id = td.user_id
      AND p.balance - td.amount BETWEEN -%(bound)s::bigint AND %(bound)s::bigint
    RETURNING p.user_id, p.balance, td.id, td.amount
), ent AS (
    INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, reason,
                              actor_id, source, silent, reverts_id, actor_name)
    SELECT %(op)s, %(g)s, user_id, -amount, balance, 'revert', %(reason)s, %(actor_id)s, 'season_reset', TRUE,
           id, %(actor_name)s
    FROM upd
    RETURNING user_id
), st AS (
    UPDATE user_stats s SET
        transaction_count = s.transaction_count + 1,
        total_earned = s.total_earned + LEAST(-u.amount, 0),
        total_spent = s.total_spent - GREATEST(-u.amount, 0),
        last_transaction_at = now()
    FROM upd u
    WHERE s.guild_id = %(g)s AND s.user_id > %(after)s AND s.user_id <= %(upto)s AND s.user_id = u.user_id
)
SELECT (SELECT max(user_id) FROM batch), (SELECT count(*) FROM ent), (SELECT count(*) FROM todo)
"""


def first_reset_entry(conn: psycopg.Connection, reset_operation_id: int) -> int | None:
    return conn.execute(
        "SELECT min(id) FROM transactions WHERE operation_id = %s", (reset_operation_id,)
    ).fetchone()[0]


def revert_reset_batch(
    conn: psycopg.Connection, *, guild_id: int, reset_operation_id: int, first_entry_id: int, operation_id: int,
    after_user: int, limit: int, reason: str, actor_id: int | None, actor_name: str,
) -> tuple[int | None, int, int]:  # fmt: skip
    """Revert the reset entries of the next `limit` members after `after_user`. Returns (the
    last user id looked at or None, entries written, reset entries found unreverted: more than
    written when a balance would leave the range)."""
    upto = _batch_end(conn, guild_id, after_user, limit)
    if upto is None:
        return None, 0, 0
    last, written, found = conn.execute(
        _REVERT_BATCH,
        {"g": guild_id, "after": after_user, "upto": upto, "first": first_entry_id, "reset_op": reset_operation_id,
         "op": operation_id, "reason": reason[:500], "actor_id": actor_id, "actor_name": actor_name[:100] or "season",
         "bound": MAX_BALANCE},
    ).fetchone()  # fmt: skip
    return upto if last is None else last, int(written), int(found)
