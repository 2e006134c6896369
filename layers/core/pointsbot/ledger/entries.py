"""The ledger's records: an entry (one change of one balance) and an operation's result.

The kinds and sources an entry may carry are listed here; `transactions` holds the entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .guilds import GuildPolicy

# The whole agreed union (sql/042 and /work/wt/INTERFACES.md): the reward store writes
# `purchase` / `purchase_refund`; seasons and the API their own.
SOURCES = (
    "slash",
    "admin_site",
    "achievement",
    "system",
    "purchase",
    "purchase_refund",
    "season_reset",
    "season_prize",
    "api",
)
KINDS = (
    "award",
    "deduct",
    "set",
    "transfer_in",
    "transfer_out",
    "revert",
    "achievement",
    "email_bonus",
    "purchase",
    "purchase_refund",
    "season_reset",
    "season_prize",
)


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    operation_id: int
    guild_id: int
    user_id: int
    amount: int
    balance_after: int
    kind: str
    reason: str
    actor_id: int | None
    source: str
    silent: bool
    counterparty_id: int | None
    reverts_id: int | None
    created_at: datetime
    # Who made it when there is no Discord id to name them by ("local:alice", "achievement",
    # "system"), and the name a Discord user had; sql/004. Empty on entries older than that.
    actor_name: str = ""

    @property
    def actor(self) -> str:
        """Who made the entry, for people: the name recorded, else the Discord id, else (an
        entry from before names were recorded) the source that made it."""
        if self.actor_name:
            return self.actor_name
        if self.actor_id is not None:
            return str(self.actor_id)
        return self.source


def entry_json(entry: LedgerEntry) -> dict:
    """An entry as the API answers it and webhooks send it (ids as strings)."""
    return {
        "id": str(entry.id),
        "user_id": str(entry.user_id),
        "amount": entry.amount,
        "balance_after": entry.balance_after,
        "kind": entry.kind,
        "reason": entry.reason,
        "source": entry.source,
        "actor": entry.actor,
        "reverts_id": None if entry.reverts_id is None else str(entry.reverts_id),
        "created_at": entry.created_at.isoformat(),
    }


@dataclass(frozen=True)
class OperationResult:
    operation_id: int
    entries: tuple[LedgerEntry, ...]  # none for a set to the balance the member had
    replayed: bool
    # The guild policy the operation ran under (read with the operation's claim), so what
    # follows the change in the same transaction need not read the guild row again.
    policy: GuildPolicy | None = field(default=None, compare=False, repr=False)

    @property
    def changed(self) -> bool:
        """False when the operation changed nothing and wrote no entry (a set to the balance
        the member had): there is no entry to show, and the answer says nothing changed."""
        return bool(self.entries)

    @property
    def entry(self) -> LedgerEntry:
        return self.entries[0]

    @property
    def balance(self) -> int:
        return self.entries[0].balance_after

    def entry_for(self, user_id: int) -> LedgerEntry:
        return next(e for e in self.entries if e.user_id == user_id)


_ENTRY_COLUMNS = (
    "id, operation_id, guild_id, user_id, amount, balance_after, kind, reason, actor_id, source, "
    "silent, counterparty_id, reverts_id, created_at, actor_name"
)


def _entry(row: tuple) -> LedgerEntry:
    return LedgerEntry(*row)
