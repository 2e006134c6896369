"""A member's points change as the bot makes it: the ledger operation, then what follows it.

`award`, `deduct`, `set_balance`, `transfer` and `revert` take the ledger's arguments and run
the ledger's operation (pointsbot.ledger), then `after_change` in the same transaction: the
points DM into the outbox and the achievement checks the change can make true. Every caller
that changes a member's points on a member's or an admin's behalf goes through here; the
ledger itself imports nothing above it. An achievement's bonus is paid by the bare ledger
(achievements.grant), as `after_change` would only skip it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec

import psycopg

from .. import ledger
from ..delivery import outbox
from ..ledger import LedgerEntry, OperationResult, ensure_member
from ..ledger.guilds import GuildPolicy, guild_policy
from ..platform.config import get_settings
from ..platform.i18n import translator
from . import achievements, role_rewards

__all__ = [  # the ledger's result types and first contact come along, so callers need this module alone
    "LedgerEntry",
    "OperationResult",
    "after_change",
    "award",
    "deduct",
    "ensure_member",
    "points_dm_text",
    "revert",
    "set_balance",
    "transfer",
]

_Request = ParamSpec("_Request")
_Operation = Callable[Concatenate[psycopg.Connection, _Request], OperationResult]


def _followed(operation: _Operation[_Request]) -> _Operation[_Request]:
    """The ledger's `operation`, then `after_change` under the same guild policy: the one the
    caller passed (`policy=`, read earlier in the same transaction) or the one the operation
    read with its claim, so the guild row is read once."""

    @functools.wraps(operation)
    def change(conn: psycopg.Connection, *args: _Request.args, **request: _Request.kwargs) -> OperationResult:
        result = operation(conn, *args, **request)
        if result.replayed or not result.entries:
            return result
        policy = result.policy or guild_policy(
            conn, request.get("settings") or get_settings(), request["guild_id"]
        )  # type: ignore[arg-type]
        after_change(conn, result, policy)
        return result

    return change


award = _followed(ledger.award)
deduct = _followed(ledger.deduct)
set_balance = _followed(ledger.set_balance)
transfer = _followed(ledger.transfer)
revert = _followed(ledger.revert)


def after_change(conn: psycopg.Connection, result: OperationResult, policy: GuildPolicy) -> None:
    """Runs after every applied (not replayed) ledger operation, before COMMIT.

    Queues the points DM for each member whose balance changed (unless the change was silent,
    the guild turned DMs off, the member made the change themselves or opted out), asks for the
    role changes of balance thresholds crossed (role_rewards), then checks the achievements that
    change can make true. The caller requests delivery after COMMIT (outbox.request_delivery(),
    whose task makes due role changes too).
    """
    if result.replayed or not result.entries:
        return
    role_rewards.after_balance_change(conn, policy, result.entries)
    if policy.dm_notifications:
        guild_name: str | None = None
        for entry in result.entries:
            if entry.silent or entry.amount == 0 or entry.actor_id == entry.user_id:
                continue
            if guild_name is None:
                guild_name = policy.guild_name
            if guild_name is None:  # a policy made without the guild row's name
                guild_name = _guild_name(conn, entry.guild_id)
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
    if policy.active_achievements == 0:  # sql/037's count, read with the policy: nothing to earn
        return
    for user_id in sorted({entry.user_id for entry in result.entries}):
        achievements.check_member(conn, result.entries[0].guild_id, user_id, policy=policy)


def _guild_name(conn: psycopg.Connection, guild_id: int) -> str:
    row = conn.execute("SELECT name FROM guilds WHERE guild_id = %s", (guild_id,)).fetchone()
    return row[0] if row else ""


def points_dm_text(entry: LedgerEntry, guild_name: str, policy: GuildPolicy) -> str:
    """The DM a member gets when their balance changes, in the server's language (named when
    its name is known; the DM's card names it too)."""
    tr = translator(policy.locale)

    def amount_of(n: int) -> str:
        return tr.points(n, policy.currency_name, policy.currency_one)

    values = {"amount": amount_of(abs(entry.amount)), "server": guild_name, "balance": amount_of(entry.balance_after),
              "giver": entry.counterparty_id}  # fmt: skip
    named = bool(guild_name)
    if entry.kind == "transfer_in" and entry.counterparty_id is not None:
        text = (tr._("<@{giver}> gave you **{amount}** in **{server}**.", **values) if named
                else tr._("<@{giver}> gave you **{amount}**.", **values))  # fmt: skip
    elif entry.kind == "set":
        text = (tr._("Your balance in **{server}** was set to **{balance}**.", **values) if named
                else tr._("Your balance was set to **{balance}**.", **values))  # fmt: skip
    elif entry.kind == "revert" and entry.amount > 0:
        text = (tr._("An earlier change was undone: **{amount}** added back to your balance in **{server}**.",
                     **values) if named
                else tr._("An earlier change was undone: **{amount}** added back to your balance.", **values))  # fmt: skip
    elif entry.kind == "revert":
        text = (tr._("An earlier change was undone: **{amount}** taken back from your balance in **{server}**.",
                     **values) if named
                else tr._("An earlier change was undone: **{amount}** taken back from your balance.", **values))  # fmt: skip
    elif entry.amount > 0:
        text = (tr._("You received **{amount}** in **{server}**.", **values) if named
                else tr._("You received **{amount}**.", **values))  # fmt: skip
    elif named:
        text = tr.ngettext("**{amount}** was taken from your balance in **{server}**.",
                           "**{amount}** were taken from your balance in **{server}**.", entry.amount, **values)  # fmt: skip
    else:
        text = tr.ngettext("**{amount}** was taken from your balance.", "**{amount}** were taken from your balance.",
                           entry.amount, **values)  # fmt: skip
    if entry.reason:
        text += "\n" + tr._("Reason: {reason}", reason=entry.reason)
    if entry.kind != "set":
        text += "\n" + tr._("Your balance is now **{balance}**.", **values)
    return text
