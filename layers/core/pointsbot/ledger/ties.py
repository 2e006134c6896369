"""Blocks for large ties (sql/039): which ties have them, made and re-cut by the keep-alive.

A leaderboard page whose first member lies inside a tie of many members (everyone at zero) is
found through the tie's blocks (`queries._AT_POSITION`): the running count of the blocks, then
an offset of at most one block, instead of an offset of up to the whole tie. Ties of balances
below 128 in magnitude are each their own fine bucket of `balance_counts`, so their sizes are
known without counting; those of at least TIE_BLOCKS_FROM members get blocks of about
TIE_BLOCK_SIZE. Making or re-cutting blocks holds SHARE ROW EXCLUSIVE on `points` while the tie
is counted (writers wait for it): rare (a tie crossing the size, or blocks grown to four times
their size) and short (a tie of 2M members is counted in well under a second).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

TIE_BLOCK_SIZE = 4096
TIE_BLOCKS_FROM = 20_000


@dataclass(frozen=True)
class TieBlocksRefresh:
    built: int  # ties given blocks, or re-cut
    dropped: int  # ties whose blocks were dropped (shrunk below half the threshold)


def refresh_tie_blocks(
    conn: psycopg.Connection,
    guild_id: int | None = None,
    *,
    threshold: int = TIE_BLOCKS_FROM,
    size: int = TIE_BLOCK_SIZE,
) -> TieBlocksRefresh:
    """Give blocks to the large ties (of `guild_id`, or of every guild) that have none, re-cut
    those whose blocks have grown past 4 x `size` members or shrunk to under `size` / 4 on
    average, and drop the blocks of ties under `threshold` / 2. In the caller's transaction."""
    large = {
        (g, b): int(n)
        for g, b, n in conn.execute(
            "SELECT guild_id, bucket, sum(members) FROM balance_counts "
            "WHERE tier = 0 AND bucket BETWEEN -127 AND 127 AND (%(g)s::bigint IS NULL OR guild_id = %(g)s) "
            "GROUP BY 1, 2 HAVING sum(members) >= %(t)s / 2",
            {"g": guild_id, "t": threshold},
        ).fetchall()
    }
    blocked = {
        (g, b): (int(blocks), int(largest), int(total))
        for g, b, blocks, largest, total in conn.execute(
            "SELECT guild_id, balance, count(*), max(members), sum(members) FROM balance_tie_blocks "
            "WHERE %(g)s::bigint IS NULL OR guild_id = %(g)s GROUP BY 1, 2",
            {"g": guild_id},
        ).fetchall()
    }
    built = dropped = 0
    for key in sorted(set(large) | set(blocked)):
        members = large.get(key, 0)
        have = blocked.get(key)
        if have is None:
            due = members >= threshold
        elif members < threshold / 2:
            conn.execute("SELECT balance_tie_blocks_drop(%s, %s)", key)
            dropped += 1
            continue
        else:
            blocks, largest, total = have
            due = largest > 4 * size or (blocks > 1 and total < blocks * size / 4)
        if due:
            conn.execute("SELECT balance_tie_blocks_build(%s, %s, %s)", (*key, size))
            built += 1
    return TieBlocksRefresh(built, dropped)
