"""The ledger's read side: balances, one member's history, the leaderboard, ranks, totals.

Ranks are competition ranks: 1 + how many have strictly more, so ties share a rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from ..platform.errors import InvalidInput
from ..platform.paging import page_number
from .entries import _ENTRY_COLUMNS, LedgerEntry, _entry


# -- read side --------------------------------------------------------------------------------
@dataclass(frozen=True)
class HistoryPage:
    entries: tuple[LedgerEntry, ...]
    page: int
    page_size: int
    total: int

    @property
    def pages(self) -> int:
        return page_count(self.total, self.page_size)


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    user_id: int
    balance: int
    display_name: str | None


@dataclass(frozen=True)
class LeaderboardPage:
    rows: tuple[LeaderboardRow, ...]
    page: int
    page_size: int
    total_members: int

    @property
    def pages(self) -> int:
        return page_count(self.total_members, self.page_size)


@dataclass(frozen=True)
class RankInfo:
    rank: int
    balance: int
    total_members: int


@dataclass(frozen=True)
class GuildTotals:
    members: int
    points_in_circulation: int
    transactions: int
    transactions_today: int


def balance(conn: psycopg.Connection, guild_id: int, user_id: int) -> int:
    row = conn.execute(
        "SELECT balance FROM points WHERE guild_id = %s AND user_id = %s", (guild_id, user_id)
    ).fetchone()
    return row[0] if row else 0


def get_entry(conn: psycopg.Connection, guild_id: int, entry_id: int) -> LedgerEntry | None:
    row = conn.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM transactions WHERE guild_id = %s AND id = %s",
        (guild_id, entry_id),
    ).fetchone()
    return _entry(row) if row else None


def page_count(total: int, page_size: int) -> int:
    """How many pages `total` rows fill (at least one, so an empty list is "page 1 of 1")."""
    return max(1, -(-total // page_size))


def _page_args(page: int, page_size: int) -> tuple[int, int]:
    page = page_number(page)
    if not 1 <= page_size <= 100:
        raise InvalidInput("A page holds 1 to 100 rows.")
    return page, page_size


def history_page(
    conn: psycopg.Connection, guild_id: int, user_id: int, page: int = 1, page_size: int = 10
) -> HistoryPage:
    """A member's entries, newest first."""
    page, page_size = _page_args(page, page_size)
    rows = conn.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM transactions WHERE guild_id = %s AND user_id = %s "
        "ORDER BY id DESC LIMIT %s OFFSET %s",
        (guild_id, user_id, page_size, (page - 1) * page_size),
    ).fetchall()
    total = conn.execute(
        "SELECT transaction_count FROM user_stats WHERE guild_id = %s AND user_id = %s",
        (guild_id, user_id),
    ).fetchone()
    return HistoryPage(tuple(_entry(r) for r in rows), page, page_size, total[0] if total else 0)


# Ranks and pages are found through balance_counts (sql/036): how many members of the guild hold
# a balance in each bucket (the sum of the bucket's rows), kept by trigger in the transaction that moves the balance. The
# members strictly above a balance b are the counts of the classes above b's class, of the fine
# buckets above b's inside its class, and the members above b inside b's own fine bucket (a
# range of points_leaderboard_idx). Nothing here counts the members above one by one, so the
# cost does not grow with the guild (tests/integration/test_ledger_ranking.py checks the plans).
_ABOVE_EXPR = """
       coalesce((SELECT sum(members) FROM balance_counts
                  WHERE guild_id = %(g)s AND tier = 1 AND bucket > balance_class({b})), 0)
     + coalesce((SELECT sum(members) FROM balance_counts
                  WHERE guild_id = %(g)s AND tier = 0 AND bucket > balance_bucket({b})
                    AND bucket < balance_class_end({b})), 0)
     + (SELECT count(*) FROM points
         WHERE guild_id = %(g)s AND balance > {b} AND balance < balance_bucket_end({b}))
"""
_MEMBER_COUNT = "coalesce((SELECT member_count FROM guilds WHERE guild_id = %(g)s), 0)"
# For each of a page's balances: the members above it, and the guild's member count.
_ABOVE = f"""
SELECT b.balance, {_ABOVE_EXPR.format(b="b.balance")}, {_MEMBER_COUNT}
FROM unnest(%(balances)s::bigint[]) AS b(balance)
"""
# rank_of in one round trip: the member's balance (zero if never seen), the members above it.
# `me` is materialized so the balance is read once (pulled up, each of its five uses read it
# again by primary key).
_RANK = f"""
WITH me AS MATERIALIZED (
    SELECT coalesce((SELECT balance FROM points WHERE guild_id = %(g)s AND user_id = %(u)s), 0) AS balance
)
SELECT me.balance, {_ABOVE_EXPR.format(b="me.balance")}, {_MEMBER_COUNT}
FROM me
"""

# The member at 1-based position %(p)s of the leaderboard: the class, then the fine bucket,
# where the running count reaches p, then inside that one fine bucket: when it is one balance
# whose tie has blocks (sql/039), the block where the tie's running count reaches p and an
# offset inside that block; otherwise an offset inside the fine bucket.
_AT_POSITION = """
WITH class AS (
    SELECT bucket, cum - members AS before
    FROM (SELECT bucket, sum(members) AS members, sum(sum(members)) OVER (ORDER BY bucket DESC) AS cum
          FROM balance_counts WHERE guild_id = %(g)s AND tier = 1 GROUP BY bucket) c
    WHERE cum >= %(p)s ORDER BY bucket DESC LIMIT 1
), fine AS (
    SELECT f.bucket, class.before + f.cum - f.members AS before
    FROM class, LATERAL (
        SELECT bucket, sum(members) AS members, sum(sum(members)) OVER (ORDER BY bucket DESC) AS cum
        FROM balance_counts
        WHERE guild_id = %(g)s AND tier = 0
          AND bucket >= class.bucket AND bucket < balance_class_end(class.bucket)
        GROUP BY bucket) f
    WHERE f.cum >= %(p)s - class.before ORDER BY f.bucket DESC LIMIT 1
), block AS (
    SELECT b.lo, b.hi, fine.bucket AS balance, fine.before + b.cum - b.members AS before
    FROM fine, LATERAL (
        SELECT lo, hi, members, sum(members) OVER (ORDER BY lo) AS cum
        FROM balance_tie_blocks
        WHERE guild_id = %(g)s AND balance = fine.bucket
          AND balance_bucket_end(fine.bucket) = fine.bucket + 1) b
    WHERE b.cum >= %(p)s - fine.before ORDER BY b.lo LIMIT 1
)
(SELECT s.balance, s.user_id
 FROM block, LATERAL (
    SELECT balance, user_id FROM points
    WHERE guild_id = %(g)s AND balance = block.balance
      AND user_id >= block.lo AND user_id <= coalesce(block.hi - 1, 9223372036854775807)
    ORDER BY user_id
    OFFSET %(p)s - block.before - 1 LIMIT 1) s)
UNION ALL
(SELECT s.balance, s.user_id
 FROM fine, LATERAL (
    SELECT balance, user_id FROM points
    WHERE guild_id = %(g)s AND balance >= fine.bucket AND balance < balance_bucket_end(fine.bucket)
    ORDER BY balance DESC, user_id
    OFFSET %(p)s - fine.before - 1 LIMIT 1) s
 WHERE NOT EXISTS (SELECT 1 FROM block))
LIMIT 1
"""

# Keyset: the rows from a (balance, user id) on, in leaderboard order (Next), or the rows
# before it, nearest first (Previous). Two ranges of points_leaderboard_idx each: the rest of
# the key's tie, then the balances past it.
_FROM_KEY = """
SELECT k.user_id, k.balance, m.display_name
FROM ((SELECT user_id, balance FROM points
        WHERE guild_id = %(g)s AND balance = %(b)s AND user_id >= %(u)s ORDER BY user_id LIMIT %(n)s)
      UNION ALL
      (SELECT user_id, balance FROM points
        WHERE guild_id = %(g)s AND balance < %(b)s ORDER BY balance DESC, user_id LIMIT %(n)s)
      LIMIT %(n)s) k
JOIN members m ON m.guild_id = %(g)s AND m.user_id = k.user_id
ORDER BY k.balance DESC, k.user_id
"""
_BEFORE_KEY = """
SELECT k.user_id, k.balance, m.display_name
FROM ((SELECT user_id, balance FROM points
        WHERE guild_id = %(g)s AND balance = %(b)s AND user_id < %(u)s ORDER BY user_id DESC LIMIT %(n)s)
      UNION ALL
      (SELECT user_id, balance FROM points
        WHERE guild_id = %(g)s AND balance > %(b)s ORDER BY balance, user_id DESC LIMIT %(n)s)
      LIMIT %(n)s) k
JOIN members m ON m.guild_id = %(g)s AND m.user_id = k.user_id
ORDER BY k.balance DESC, k.user_id
"""


def _member_count(conn: psycopg.Connection, guild_id: int) -> int:
    """The guild's trigger-kept member_count (sql/002)."""
    return conn.execute(f"SELECT {_MEMBER_COUNT}", {"g": guild_id}).fetchone()[0]


LeaderboardKey = tuple[int, int]
"""A place on the leaderboard: (balance, user id), the order the board is listed in."""


def leaderboard_page(
    conn: psycopg.Connection,
    guild_id: int,
    page: int = 1,
    page_size: int = 10,
    *,
    after: LeaderboardKey | None = None,
    before: LeaderboardKey | None = None,
    keyset_only: bool = False,
) -> LeaderboardPage:
    """Members by balance, highest first; ties share a rank and are listed by user id.

    Page N is found through the bucket counts (its first member by position, never OFFSET over
    the board); `after` / `before` (Next / Previous) continue from the last / first member of
    the page shown, by keyset, and are labelled `page`. When the board has moved so much that
    the keyset page is not full, the page is found by position instead. Every rank is exact:
    1 + the members strictly above its balance, from the bucket counts.
    """
    page, page_size = _page_args(page, page_size)
    params = {"g": guild_id, "n": page_size}
    rows: list[tuple[int, int, str | None]] = []
    if after is not None:
        rows = conn.execute(_FROM_KEY, {**params, "b": after[0], "u": after[1] + 1}).fetchall()
    elif before is not None:
        rows = conn.execute(_BEFORE_KEY, {**params, "b": before[0], "u": before[1]}).fetchall()
    # keyset_only (the API's cursor): a short page is the end of the board, not a moved board.
    if len(rows) < page_size and not (keyset_only and (after is not None or before is not None)):
        start = conn.execute(_AT_POSITION, {"g": guild_id, "p": (page - 1) * page_size + 1}).fetchone()
        rows = conn.execute(_FROM_KEY, {**params, "b": start[0], "u": start[1]}).fetchall() if start else []
    if not rows:
        return LeaderboardPage((), page, page_size, _member_count(conn, guild_id))
    counted = conn.execute(
        _ABOVE, {"g": guild_id, "balances": sorted({bal for _, bal, _ in rows})}
    ).fetchall()
    above = {bal: int(n) for bal, n, _ in counted}
    ranked = tuple(LeaderboardRow(above[bal] + 1, user_id, bal, name) for user_id, bal, name in rows)
    return LeaderboardPage(ranked, page, page_size, counted[0][2])


# The board's first rows: one range from the top of points_leaderboard_idx, stopped by the LIMIT.
_TOP = """
SELECT k.user_id, k.balance, m.display_name, {member_count}
FROM (SELECT user_id, balance FROM points WHERE guild_id = %(g)s ORDER BY balance DESC, user_id LIMIT %(n)s) k
JOIN members m ON m.guild_id = %(g)s AND m.user_id = k.user_id
ORDER BY k.balance DESC, k.user_id
"""


def leaderboard_top(conn: psycopg.Connection, guild_id: int, limit: int = 10) -> LeaderboardPage:
    """Page one of the board (what leaderboard_page(conn, guild_id, 1, limit) answers), read as
    the first `limit` rows of points_leaderboard_idx and nothing else: no bucket counts, no
    position. The ranks are exact from the rows alone: every member with more than a row's
    balance is listed before it, so its rank (1 + the members strictly above) is 1 + the
    position of the first listed row with its balance; a tie shares that rank. The cost does
    not grow with the guild (EXPLAIN-tested in tests/integration/test_ledger_ranking.py)."""
    _, limit = _page_args(1, limit)
    rows = conn.execute(_TOP.format(member_count=_MEMBER_COUNT), {"g": guild_id, "n": limit}).fetchall()
    if not rows:
        return LeaderboardPage((), 1, limit, _member_count(conn, guild_id))
    ranked: list[LeaderboardRow] = []
    for i, (user_id, bal, name, _) in enumerate(rows):
        rank = ranked[-1].rank if ranked and ranked[-1].balance == bal else i + 1
        ranked.append(LeaderboardRow(rank, user_id, bal, name))
    return LeaderboardPage(tuple(ranked), 1, limit, rows[0][3])


def rank_of(conn: psycopg.Connection, guild_id: int, user_id: int) -> RankInfo:
    """A member's place: 1 + how many members of the guild have strictly more.

    A member never seen ranks as a balance of zero. The members above are summed from the
    bucket counts (sql/036) plus one short range of the leaderboard index inside the balance's
    own bucket: the cost does not grow with the members above.
    """
    bal, above, total = conn.execute(_RANK, {"g": guild_id, "u": user_id}).fetchone()
    return RankInfo(rank=int(above) + 1, balance=bal, total_members=total)


@dataclass(frozen=True)
class TrailPoint:
    at: datetime
    balance: int  # the member's balance after the entry made at `at`


TRAIL_ENTRIES = 120  # the member page's sparkline: the balance after each of the latest this many entries

_TRAIL = """
SELECT created_at, balance_after, amount FROM transactions
WHERE guild_id = %(g)s AND user_id = %(u)s ORDER BY id DESC LIMIT %(n)s
"""


def balance_trail(
    conn: psycopg.Connection, guild_id: int, user_id: int, limit: int = TRAIL_ENTRIES
) -> tuple[TrailPoint, ...]:
    """A member's balance over time, oldest first: the balance after each of their latest `limit`
    entries, led by the balance before the first of them (at the same time). One range of
    transactions_member_idx (guild, user, id DESC) in its own order, stopped by the LIMIT: the
    cost does not grow with the ledger nor with the member's history (EXPLAIN-tested in
    tests/integration/test_member_view.py)."""
    if not 0 < limit <= 1000:
        raise ValueError(f"a trail of {limit} entries")
    rows = conn.execute(_TRAIL, {"g": guild_id, "u": user_id, "n": limit}).fetchall()
    if not rows:
        return ()
    rows.reverse()
    first_at, first_after, first_amount = rows[0]
    before = TrailPoint(first_at, first_after - first_amount)
    return (before, *(TrailPoint(at, after) for at, after, _ in rows))


def guild_totals(conn: psycopg.Connection, guild_id: int) -> GuildTotals:
    row = conn.execute(
        """
        SELECT coalesce((SELECT member_count FROM guilds WHERE guild_id = %(g)s), 0),
               (SELECT coalesce(sum(balance), 0) FROM points WHERE guild_id = %(g)s),
               (SELECT coalesce(sum(transaction_count), 0) FROM user_stats WHERE guild_id = %(g)s),
               (SELECT count(*) FROM transactions
                 WHERE guild_id = %(g)s AND created_at >= date_trunc('day', now() AT TIME ZONE 'UTC')
                       AT TIME ZONE 'UTC')
        """,
        {"g": guild_id},
    ).fetchone()
    return GuildTotals(int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def entries_after(
    conn: psycopg.Connection, guild_id: int, after_id: int, limit: int, *, user_id: int | None = None
) -> tuple[LedgerEntry, ...]:
    """The guild's (or one member's) entries with an id above `after_id`, oldest first: a
    cursor for syncing the ledger elsewhere (entry ids only grow). At most `limit` (1-1000)."""
    if not 1 <= limit <= 1000:  # callers check it against their schema first: a bug, not input
        raise ValueError(f"limit {limit} outside 1-1000")
    if user_id is None:
        rows = conn.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM transactions WHERE guild_id = %s AND id > %s ORDER BY id LIMIT %s",
            (guild_id, after_id, limit),
        ).fetchall()
    else:
        rows = conn.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM transactions WHERE guild_id = %s AND user_id = %s AND id > %s "
            "ORDER BY id LIMIT %s",
            (guild_id, user_id, after_id, limit),
        ).fetchall()
    return tuple(_entry(r) for r in rows)
