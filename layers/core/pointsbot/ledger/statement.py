"""The one guarded statement every ledger write runs, and first contact with a member.

`apply_entry` moves a balance, appends its entry and bumps the member's counters in a single
statement whose WHERE clause holds the guards (the floor, the daily cap, the balance range); no
row back means a guard refused, and the error names the one that was in play.
"""

from __future__ import annotations

import psycopg
from psycopg import errors as pg_errors

from ..platform.amounts import COUNTER_CEILING, MAX_BALANCE, OUT_OF_RANGE
from ..platform.errors import DailyCapReached, InsufficientBalance, OutOfRange
from .entries import _ENTRY_COLUMNS, LedgerEntry, _entry
from .guilds import GuildPolicy

# Credits that count against the daily cap. Set, revert and bonuses are deliberate acts.
CAPPED_KINDS = ("award", "transfer_in")


def ensure_member(conn: psycopg.Connection, guild_id: int, user_id: int) -> None:
    """Create the member's rows on first contact (the guild row must exist)."""
    conn.execute(
        """
        WITH m AS (
            INSERT INTO members (guild_id, user_id) VALUES (%(g)s, %(u)s) ON CONFLICT DO NOTHING
        ), p AS (
            INSERT INTO points (guild_id, user_id) VALUES (%(g)s, %(u)s) ON CONFLICT DO NOTHING
        )
        INSERT INTO user_stats (guild_id, user_id) VALUES (%(g)s, %(u)s) ON CONFLICT DO NOTHING
        """,
        {"g": guild_id, "u": user_id},
    )


# One statement: move the balance (guarded), write the entry, keep the counters. If a guard
# fails, no row comes back and nothing was changed. The guards: the balance range (always),
# the floor, the daily cap. Counters that only grow stop at COUNTER_CEILING (written so the
# sum itself cannot overflow) instead of failing every later change of the member.
def apply_ctes(operation_id: str, claimed: str) -> str:
    """APPLY's three steps as WITH items (`upd`, `entry`, `stats`): `operation_id` is the SQL of
    the entry's operation, `claimed` a condition the balance moves under (the claim of
    ledger.operations.CLAIM_APPLY, which runs them in its own statement)."""
    return f"""
upd AS (
    UPDATE points SET
        balance = balance + %(amount)s,
        daily_credited = CASE WHEN %(capped)s
            THEN LEAST(CASE WHEN daily_date = (now() AT TIME ZONE 'UTC')::date THEN daily_credited ELSE 0 END,
                       %(ceiling)s::bigint - %(amount)s) + %(amount)s
            ELSE daily_credited END,
        daily_date = CASE WHEN %(capped)s THEN (now() AT TIME ZONE 'UTC')::date ELSE daily_date END,
        updated_at = now()
    WHERE guild_id = %(guild_id)s AND user_id = %(user_id)s AND {claimed}
      AND balance + %(amount)s BETWEEN -%(bound)s::bigint AND %(bound)s::bigint
      AND (%(floor)s::bigint IS NULL OR balance + %(amount)s >= %(floor)s::bigint)
      AND (NOT %(capped)s OR %(cap)s::bigint IS NULL
           OR (CASE WHEN daily_date = (now() AT TIME ZONE 'UTC')::date THEN daily_credited ELSE 0 END)
              + %(amount)s <= %(cap)s::bigint)
    RETURNING balance, daily_credited
), entry AS (
    INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, reason,
                              actor_id, source, silent, counterparty_id, reverts_id, actor_name)
    SELECT {operation_id}, %(guild_id)s, %(user_id)s, %(amount)s, upd.balance, %(kind)s, %(reason)s,
           %(actor_id)s, %(source)s, %(silent)s, %(counterparty_id)s, %(reverts_id)s, %(actor_name)s
    FROM upd
    RETURNING {_ENTRY_COLUMNS}
), stats AS (
    UPDATE user_stats SET
        transaction_count = transaction_count + 1,
        total_earned = LEAST(total_earned, %(ceiling)s::bigint - %(earned)s) + %(earned)s,
        total_spent = LEAST(total_spent, %(ceiling)s::bigint - %(spent)s) + %(spent)s,
        last_transaction_at = now()
    WHERE guild_id = %(guild_id)s AND user_id = %(user_id)s AND EXISTS (SELECT 1 FROM upd)
)"""


APPLY = f"WITH {apply_ctes('%(operation_id)s', 'TRUE')}\nSELECT * FROM entry\n"


def daily_cap_of(policy: GuildPolicy | None, kind: str, amount: int) -> int | None:
    """The daily cap a change of `kind` by `amount` is held to; None: none (or no policy known)."""
    return policy.daily_cap if policy is not None and _capped(kind, amount) and policy.daily_cap > 0 else None


def _capped(kind: str, amount: int) -> bool:
    """Whether a change counts against the day's credits (a credit of a capped kind)."""
    return kind in CAPPED_KINDS and amount > 0


def apply_params(
    policy: GuildPolicy | None,
    *,
    operation_id: int,
    guild_id: int,
    user_id: int,
    amount: int,
    kind: str,
    reason: str,
    actor_id: int | None,
    source: str,
    silent: bool,
    floor: int | None,
    actor_name: str,
    counterparty_id: int | None = None,
    reverts_id: int | None = None,
) -> dict:
    """APPLY's parameters for one entry (bench/ledger_ops.py renders pgbench's copy from them).
    No policy (CLAIM_APPLY before the guild row is read): no daily cap in the statement; the
    caller holds the entry to it afterwards (`check_applied`)."""
    # Credits of the capped kinds are always counted, so a cap switched on during the day
    # (a guild override) still sees what was credited earlier that day.
    capped = _capped(kind, amount)
    cap = daily_cap_of(policy, kind, amount)
    if kind in ("revert", "purchase_refund"):
        # Undoing a credit takes it back out of "earned"; undoing a debit (a purchase
        # refunded is one) out of "spent".
        earned, spent = (amount, 0) if amount < 0 else (0, -amount)
    else:
        earned, spent = max(amount, 0), max(-amount, 0)
    return {
        "operation_id": operation_id,
        "guild_id": guild_id,
        "user_id": user_id,
        "amount": amount,
        "kind": kind,
        "reason": reason,
        "actor_id": actor_id,
        "actor_name": actor_name,
        "source": source,
        "silent": silent,
        "counterparty_id": counterparty_id,
        "reverts_id": reverts_id,
        "floor": floor,
        "capped": capped,
        "cap": cap,
        "earned": earned,
        "spent": spent,
        "bound": MAX_BALANCE,
        "ceiling": COUNTER_CEILING,
    }


def apply_entry(
    conn: psycopg.Connection,
    policy: GuildPolicy,
    *,
    operation_id: int,
    guild_id: int,
    user_id: int,
    amount: int,
    kind: str,
    reason: str,
    actor_id: int | None,
    source: str,
    silent: bool,
    floor: int | None,
    actor_name: str,
    counterparty_id: int | None = None,
    reverts_id: int | None = None,
) -> LedgerEntry:
    params = apply_params(
        policy, operation_id=operation_id, guild_id=guild_id, user_id=user_id, amount=amount, kind=kind,
        reason=reason, actor_id=actor_id, source=source, silent=silent, floor=floor, actor_name=actor_name,
        counterparty_id=counterparty_id, reverts_id=reverts_id,
    )  # fmt: skip
    cap = params["cap"]
    try:
        row = conn.execute(APPLY, params).fetchone()
        if row is None:
            # Either a guard refused or the member is new. Creating the member is a no-op when
            # it exists (or when a concurrent first contact has just created it), so always
            # create, then run the same statement once more: only a guard can refuse it now.
            ensure_member(conn, guild_id, user_id)
            row = conn.execute(APPLY, params).fetchone()
    except (pg_errors.NumericValueOutOfRange, pg_errors.CheckViolation) as exc:
        # Past bigint or past sql/003's CHECK: only a balance stored before the range existed
        # gets here. The transaction is aborted, so nothing of it is written.
        raise OutOfRange(OUT_OF_RANGE) from exc
    if row is None:
        balance, credited_today = points_state(conn, guild_id, user_id)
        # Say which guard refused from which guards were in play, not from a second read of
        # the balance: a concurrent credit may have committed since the guarded UPDATE ran.
        # The capped kinds are credits (no floor): the cap or the range refused. The day's
        # credited counter only grows, so if it leaves room now it left room then. A debit
        # with a floor: the floor (the range's lower end is below every floor), unless the
        # balance was above the range before the range existed. Anything else: the range.
        if cap is not None and credited_today + amount > policy.daily_cap:
            raise _over_cap(policy, credited_today)
        if floor is not None and amount < 0 and balance + amount <= MAX_BALANCE:
            raise _below_floor(policy, balance, floor)
        raise OutOfRange(OUT_OF_RANGE)
    return _entry(row)


def _over_cap(policy: GuildPolicy, credited_today: int) -> DailyCapReached:
    left = max(policy.daily_cap - credited_today, 0)
    return DailyCapReached(
        f"That would pass the daily limit of {policy.points(policy.daily_cap)} "
        f"for this member ({left:,} left today)."
    )


def _below_floor(policy: GuildPolicy, balance: int, floor: int) -> InsufficientBalance:
    return InsufficientBalance(
        f"Not enough {policy.currency_name}: the balance is {balance:,} and this would take it below {floor:,}."
    )


def check_applied(
    policy: GuildPolicy, entry: LedgerEntry, *, credited_today: int, floor: int | None, cap: int | None
) -> None:
    """Hold an entry applied without the policy's guards (ledger.operations.CLAIM_APPLY, run
    before the policy was known) to them, from the state it left: the floor against the balance
    after it, the daily cap against the day's credits after it (`credited_today`, what the
    statement's UPDATE returned). The member's row is still locked by that UPDATE, so these are
    the very values the guards would have seen. Raises the guard's error; the caller's
    transaction then rolls the entry back with its claim, as for any ledger error."""
    if cap is not None and credited_today > cap:
        raise _over_cap(policy, credited_today - entry.amount)
    if floor is not None and entry.balance_after < floor:
        raise _below_floor(policy, entry.balance_after - entry.amount, floor)


def points_state(conn: psycopg.Connection, guild_id: int, user_id: int) -> tuple[int, int] | None:
    """(balance, credited today) or None for a member never seen."""
    return conn.execute(
        "SELECT balance, CASE WHEN daily_date = (now() AT TIME ZONE 'UTC')::date "
        "THEN daily_credited ELSE 0 END FROM points WHERE guild_id = %s AND user_id = %s",
        (guild_id, user_id),
    ).fetchone()
