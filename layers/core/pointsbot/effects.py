"""What follows a ledger change inside the same database transaction.

Kept apart from the ledger so the ledger does not import the features built on it
(achievements, the DM outbox); each adds its step to `after_change`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

if TYPE_CHECKING:
    from .guilds import GuildPolicy
    from .ledger import LedgerEntry, OperationResult


def after_change(conn: psycopg.Connection, result: OperationResult, policy: GuildPolicy) -> None:
    """Runs after every applied (not replayed) ledger operation, before COMMIT.

    Queues the points DM for each member whose balance changed (unless the change was silent,
    the guild turned DMs off, the member made the change themselves or opted out), then checks
    the achievements that change can make true. The caller requests delivery after COMMIT
    (outbox.request_delivery()).
    """
    if result.replayed or not result.entries:
        return
    if policy.dm_notifications:
        guild_name: str | None = None
        for entry in result.entries:
            if entry.silent or entry.amount == 0 or entry.actor_id == entry.user_id:
                continue
            if guild_name is None:
                guild_name = _guild_name(conn, entry.guild_id)
            from . import outbox

            outbox.enqueue_dm(
                conn,
                guild_id=entry.guild_id,
                user_id=entry.user_id,
                content=points_dm_text(entry, guild_name, policy),
                reason="points",
                dedupe_key=f"points:{entry.id}",
            )
    # An achievement bonus is a change too, but the grant loop in check_member re-checks after
    # paying it; checking here as well would recurse.
    if all(entry.kind == "achievement" for entry in result.entries):
        return
    from . import achievements

    for user_id in sorted({entry.user_id for entry in result.entries}):
        achievements.check_member(conn, result.entries[0].guild_id, user_id, policy=policy)


def _guild_name(conn: psycopg.Connection, guild_id: int) -> str:
    row = conn.execute("SELECT name FROM guilds WHERE guild_id = %s", (guild_id,)).fetchone()
    return row[0] if row else ""


def points_dm_text(entry: LedgerEntry, guild_name: str, policy: GuildPolicy) -> str:
    """The DM a member gets when their balance changes."""
    where = f" in **{guild_name}**" if guild_name else ""
    amount = policy.points(abs(entry.amount))
    if entry.kind == "transfer_in" and entry.counterparty_id is not None:
        text = f"<@{entry.counterparty_id}> gave you **{amount}**{where}."
    elif entry.kind == "set":
        text = f"Your balance{where} was set to **{policy.points(entry.balance_after)}**."
    elif entry.kind == "revert":
        verb = "added back to" if entry.amount > 0 else "taken back from"
        text = f"An earlier change was undone: **{amount}** {verb} your balance{where}."
    elif entry.amount > 0:
        text = f"You received **{amount}**{where}."
    else:
        text = f"**{amount}** {'was' if abs(entry.amount) == 1 else 'were'} taken from your balance{where}."
    if entry.reason:
        text += f"\nReason: {entry.reason}"
    if entry.kind != "set":
        text += f"\nYour balance is now **{policy.points(entry.balance_after)}**."
    return text
