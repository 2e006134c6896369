"""The points ledger: balances and their entries, exact and append-only.

entries.py holds the records; operations.py the writes (each checked, keyed for idempotency,
and run through statement.py's one guarded statement); queries.py the reads; guilds.py a
server's row and its policy (the limits).
This face hands on the public names, so callers say `ledger.award`, `ledger.rank_of`.

The writes here are the bare ledger. A member's change as the bot makes it, with the DM and
the achievement checks that follow it in the same transaction, is `community.points`: the
ledger never calls up into the features built on it.
"""

from .entries import KINDS, SOURCES, LedgerEntry, OperationResult, entry_json
from .operations import (
    MAX_REASON,
    award,
    deduct,
    purchase_debit,
    purchase_refund,
    revert,
    set_balance,
    transfer,
)
from .queries import (
    GuildTotals,
    HistoryPage,
    LeaderboardKey,
    LeaderboardPage,
    LeaderboardRow,
    RankInfo,
    TrailPoint,
    balance,
    balance_trail,
    entries_after,
    get_entry,
    guild_totals,
    history_page,
    leaderboard_page,
    leaderboard_top,
    page_count,
    rank_of,
)
from .statement import ensure_member

__all__ = [
    "KINDS",
    "MAX_REASON",
    "SOURCES",
    "GuildTotals",
    "HistoryPage",
    "LeaderboardKey",
    "LeaderboardPage",
    "LeaderboardRow",
    "LedgerEntry",
    "OperationResult",
    "RankInfo",
    "TrailPoint",
    "award",
    "balance",
    "balance_trail",
    "deduct",
    "ensure_member",
    "entries_after",
    "entry_json",
    "get_entry",
    "guild_totals",
    "history_page",
    "leaderboard_page",
    "leaderboard_top",
    "page_count",
    "purchase_debit",
    "purchase_refund",
    "rank_of",
    "revert",
    "set_balance",
    "transfer",
]
