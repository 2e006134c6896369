"""The points ledger: balances and their entries, exact and append-only (see operations.py).

This face hands on the ledger's public names, so callers say `ledger.award`,
`ledger.leaderboard_page`. The write operations here are the bare ledger: a member's change as
the bot makes it (with its DM and achievement checks) goes through `community.points`.
"""

from .operations import (
    KINDS,
    MAX_REASON,
    SOURCES,
    GuildTotals,
    HistoryPage,
    LeaderboardPage,
    LeaderboardRow,
    LedgerEntry,
    OperationResult,
    RankInfo,
    award,
    balance,
    deduct,
    ensure_member,
    get_entry,
    guild_totals,
    history_page,
    leaderboard_page,
    page_count,
    rank_of,
    revert,
    set_balance,
    transfer,
)

__all__ = [
    "KINDS",
    "MAX_REASON",
    "SOURCES",
    "GuildTotals",
    "HistoryPage",
    "LeaderboardPage",
    "LeaderboardRow",
    "LedgerEntry",
    "OperationResult",
    "RankInfo",
    "award",
    "balance",
    "deduct",
    "ensure_member",
    "get_entry",
    "guild_totals",
    "history_page",
    "leaderboard_page",
    "page_count",
    "rank_of",
    "revert",
    "set_balance",
    "transfer",
]
