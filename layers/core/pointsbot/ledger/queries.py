"""The ledger's read side: balances, one member's history, the leaderboard, ranks, totals.

Ranks are competition ranks: 1 + how many have strictly more, so ties share a rank.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def leaderboard_page(
    conn: psycopg.Connection, guild_id: int, page: int = 1, page_size: int = 10
) -> LeaderboardPage:
    """Members by balance, highest first; ties share a rank and are listed by user id."""
    page, page_size = _page_args(page, page_size)
    rows = conn.execute(
        """
        SELECT p.user_id, p.balance, m.display_name
        FROM points p JOIN members m USING (guild_id, user_id)
        WHERE p.guild_id = %s
        ORDER BY p.balance DESC, p.user_id
        LIMIT %s OFFSET %s
        """,
        (guild_id, page_size, (page - 1) * page_size),
    ).fetchall()
    # Competition ranking: 1 + how many have strictly more.
    above, total = _count_above(conn, guild_id, rows[0][1] if rows else None)
    ranked: list[LeaderboardRow] = []
    if rows:
        first_rank = 1 + above
        offset = (page - 1) * page_size
        rank = first_rank
        for index, (user_id, bal, name) in enumerate(rows):
            if index and bal != rows[index - 1][1]:
                rank = offset + index + 1  # everyone listed before it has strictly more
            ranked.append(LeaderboardRow(rank, user_id, bal, name))
    return LeaderboardPage(tuple(ranked), page, page_size, total)


def _count_above(conn: psycopg.Connection, guild_id: int, balance: int | None) -> tuple[int, int]:
    """(members with a balance above `balance`, all members) of the guild.

    The total is the guild's trigger-kept member_count (sql/002); the count above walks the
    leaderboard index only as far as `balance`, so the top of the board costs next to nothing.
    """
    above, total = conn.execute(
        """
        SELECT CASE WHEN %(b)s::bigint IS NULL THEN 0 ELSE
                   (SELECT count(*) FROM points WHERE guild_id = %(g)s AND balance > %(b)s::bigint) END,
               coalesce((SELECT member_count FROM guilds WHERE guild_id = %(g)s), 0)
        """,
        {"b": balance, "g": guild_id},
    ).fetchone()
    return above, total


def rank_of(conn: psycopg.Connection, guild_id: int, user_id: int) -> RankInfo:
    """A member's place: 1 + how many members of the guild have strictly more.

    A member never seen ranks as a balance of zero. The balance is read first and passed as a
    value, so the count is a range of the leaderboard index (O(members above)).
    """
    row = conn.execute(
        "SELECT balance FROM points WHERE guild_id = %s AND user_id = %s", (guild_id, user_id)
    ).fetchone()
    bal = row[0] if row else 0
    above, total = _count_above(conn, guild_id, bal)
    return RankInfo(rank=above + 1, balance=bal, total_members=total)


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
