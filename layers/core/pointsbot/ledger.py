"""The points ledger: every change of a balance is an entry, written with the balance.

Write operations (award, deduct, set_balance, transfer, revert) take an open connection and
run inside the caller's transaction, so a bonus, a DM or an email approval can share it:
call them through `Database.run`. Each carries an idempotency key: the second arrival of a
key replays the first result and changes nothing; the same key with a different request is
an IdempotencyConflict. The invariant, always: balance == sum(amounts) for every member.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from .amounts import COUNTER_CEILING, MAX_BALANCE, OUT_OF_RANGE, check_in_range
from .config import Settings, get_settings
from .errors import (
    AlreadyReverted,
    DailyCapReached,
    IdempotencyConflict,
    InsufficientBalance,
    InvalidInput,
    LimitExceeded,
    NotFound,
    OutOfRange,
    ReasonRequired,
    TransfersDisabled,
)
from .guilds import GuildPolicy, guild_policy
from .paging import page_number
from .storable import check_text

SOURCES = ("slash", "admin_site", "achievement", "system")
KINDS = (
    "award",
    "deduct",
    "set",
    "transfer_in",
    "transfer_out",
    "revert",
    "achievement",
    "email_bonus",
)
# Credits that count against the daily cap. Set, revert and bonuses are deliberate acts.
_CAPPED_KINDS = ("award", "transfer_in")
MAX_REASON = 500


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


@dataclass(frozen=True)
class OperationResult:
    operation_id: int
    entries: tuple[LedgerEntry, ...]
    replayed: bool

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


# -- validation ----------------------------------------------------------------------------
def _check_amount(amount: object, *, positive: bool = True) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidInput("The amount must be a whole number.")
    if positive and amount <= 0:
        raise InvalidInput("The amount must be above zero.")
    return check_in_range(amount)


def _check_reason(reason: str | None, required: bool) -> str:
    text = (reason or "").strip()
    if required and not text:
        raise ReasonRequired("A reason is required for this change.")
    if len(text) > MAX_REASON:
        raise InvalidInput(f"The reason is too long (at most {MAX_REASON} characters).")
    return check_text(text, "The reason")


def _check_source(source: str) -> str:
    if source not in SOURCES:
        raise InvalidInput(f"unknown source {source!r}")
    return source


MAX_ACTOR_NAME = 100


def _check_actor(actor_id: int | None, actor_name: str | None, source: str) -> str:
    """The actor name an entry records; every entry names who made it.

    A person (slash command, admin site) is named by a Discord id or, for a local admin
    account, which has none, by its name; bonuses and jobs are named by their source.
    """
    name = str(actor_name or "").strip()[:MAX_ACTOR_NAME]
    if not name and actor_id is None:
        if source in ("achievement", "system"):
            return source
        raise InvalidInput("This change does not say who made it; sign in again and retry.")
    return name


def _check_limit(policy: GuildPolicy, change: int) -> None:
    if abs(change) > policy.max_change:
        raise LimitExceeded(
            f"That is more than the largest single change allowed here ({policy.points(policy.max_change)})."
        )


# -- the operation record (idempotency) ----------------------------------------------------
def _fingerprint(**request: Any) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


def _entries_of(conn: psycopg.Connection, operation_id: int) -> tuple[LedgerEntry, ...]:
    rows = conn.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM transactions WHERE operation_id = %s ORDER BY id",
        (operation_id,),
    ).fetchall()
    return tuple(_entry(r) for r in rows)


def _begin(
    conn: psycopg.Connection, guild_id: int, key: str, kind: str, fingerprint: str
) -> int | OperationResult:
    """Claim the idempotency key: a new operation id, or the earlier result to replay.

    A concurrent holder of the same key makes the INSERT wait until it commits or rolls back,
    so exactly one of them applies the change.
    """
    if not isinstance(key, str) or not key or len(key) > 200:
        raise InvalidInput("An idempotency key (1 to 200 characters) is required.")
    row = conn.execute(
        "INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (guild_id, idempotency_key) DO NOTHING RETURNING id",
        (guild_id, key, fingerprint, kind),
    ).fetchone()
    if row is not None:
        return row[0]
    op_id, stored = conn.execute(
        "SELECT id, fingerprint FROM operations WHERE guild_id = %s AND idempotency_key = %s",
        (guild_id, key),
    ).fetchone()
    if stored != fingerprint:
        raise IdempotencyConflict("This request was already made with different details.")
    return OperationResult(op_id, _entries_of(conn, op_id), replayed=True)


# -- applying one entry -------------------------------------------------------------------
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
_APPLY = f"""
WITH upd AS (
    UPDATE points SET
        balance = balance + %(amount)s,
        daily_credited = CASE WHEN %(capped)s
            THEN LEAST(CASE WHEN daily_date = (now() AT TIME ZONE 'UTC')::date THEN daily_credited ELSE 0 END,
                       %(ceiling)s::bigint - %(amount)s) + %(amount)s
            ELSE daily_credited END,
        daily_date = CASE WHEN %(capped)s THEN (now() AT TIME ZONE 'UTC')::date ELSE daily_date END,
        updated_at = now()
    WHERE guild_id = %(guild_id)s AND user_id = %(user_id)s
      AND balance + %(amount)s BETWEEN -%(bound)s::bigint AND %(bound)s::bigint
      AND (%(floor)s::bigint IS NULL OR balance + %(amount)s >= %(floor)s::bigint)
      AND (NOT %(capped)s OR %(cap)s::bigint IS NULL
           OR (CASE WHEN daily_date = (now() AT TIME ZONE 'UTC')::date THEN daily_credited ELSE 0 END)
              + %(amount)s <= %(cap)s::bigint)
    RETURNING balance
), entry AS (
    INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, reason,
                              actor_id, source, silent, counterparty_id, reverts_id, actor_name)
    SELECT %(operation_id)s, %(guild_id)s, %(user_id)s, %(amount)s, upd.balance, %(kind)s, %(reason)s,
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
)
SELECT * FROM entry
"""


def _apply(
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
    # Credits of the capped kinds are always counted, so a cap switched on during the day
    # (a guild override) still sees what was credited earlier that day.
    capped = kind in _CAPPED_KINDS and amount > 0
    cap = policy.daily_cap if capped and policy.daily_cap > 0 else None
    if kind == "revert":
        # Undoing a credit takes it back out of "earned"; undoing a debit out of "spent".
        earned, spent = (amount, 0) if amount < 0 else (0, -amount)
    else:
        earned, spent = max(amount, 0), max(-amount, 0)
    params = {
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
    try:
        row = conn.execute(_APPLY, params).fetchone()
        if row is None:
            # Either a guard refused or the member is new. Creating the member is a no-op when
            # it exists (or when a concurrent first contact has just created it), so always
            # create, then run the same statement once more: only a guard can refuse it now.
            ensure_member(conn, guild_id, user_id)
            row = conn.execute(_APPLY, params).fetchone()
    except (pg_errors.NumericValueOutOfRange, pg_errors.CheckViolation) as exc:
        # Past bigint or past sql/003's CHECK: only a balance stored before the range existed
        # gets here. The transaction is aborted, so nothing of it is written.
        raise OutOfRange(OUT_OF_RANGE) from exc
    if row is None:
        balance, credited_today = _points_state(conn, guild_id, user_id)
        # Say which guard refused from which guards were in play, not from a second read of
        # the balance: a concurrent credit may have committed since the guarded UPDATE ran.
        # The capped kinds are credits (no floor): the cap or the range refused. The day's
        # credited counter only grows, so if it leaves room now it left room then. A debit
        # with a floor: the floor (the range's lower end is below every floor), unless the
        # balance was above the range before the range existed. Anything else: the range.
        if cap is not None and credited_today + amount > policy.daily_cap:
            left = max(policy.daily_cap - credited_today, 0)
            raise DailyCapReached(
                f"That would pass the daily limit of {policy.points(policy.daily_cap)} "
                f"for this member ({left:,} left today)."
            )
        if floor is not None and amount < 0 and balance + amount <= MAX_BALANCE:
            raise InsufficientBalance(
                f"Not enough {policy.currency_name}: the balance is {balance:,} and this would take it "
                f"below {floor:,}."
            )
        raise OutOfRange(OUT_OF_RANGE)
    return _entry(row)


def _points_state(conn: psycopg.Connection, guild_id: int, user_id: int) -> tuple[int, int] | None:
    """(balance, credited today) or None for a member never seen."""
    return conn.execute(
        "SELECT balance, CASE WHEN daily_date = (now() AT TIME ZONE 'UTC')::date "
        "THEN daily_credited ELSE 0 END FROM points WHERE guild_id = %s AND user_id = %s",
        (guild_id, user_id),
    ).fetchone()


def _admin_floor(policy: GuildPolicy) -> int | None:
    return None if policy.allow_negative else 0


def _finish(conn: psycopg.Connection, result: OperationResult, policy: GuildPolicy) -> OperationResult:
    """What follows a change in the same transaction (achievements, DMs)."""
    from . import effects  # late: effects builds on the ledger

    effects.after_change(conn, result, policy)
    return result


# -- write operations ------------------------------------------------------------------------
def award(
    conn: psycopg.Connection,
    *,
    guild_id: int,
    user_id: int,
    amount: int,
    reason: str,
    actor_id: int | None,
    source: str,
    idempotency_key: str,
    silent: bool = False,
    kind: str = "award",
    settings: Settings | None = None,
    actor_name: str = "",
) -> OperationResult:
    """Credit a member. `kind` may name a bonus ('achievement', 'email_bonus')."""
    if kind not in ("award", "achievement", "email_bonus"):
        raise InvalidInput(f"award cannot write kind {kind!r}")
    amount = _check_amount(amount)
    actor_name = _check_actor(actor_id, actor_name, source)
    reason = _check_reason(reason, required=source in ("slash", "admin_site"))
    policy = guild_policy(conn, settings or get_settings(), guild_id)
    if kind == "award":
        _check_limit(policy, amount)
    begun = _begin(conn, guild_id, idempotency_key, kind, _fingerprint(op=kind, user=user_id, amount=amount))
    if isinstance(begun, OperationResult):
        return begun
    entry = _apply(
        conn, policy, operation_id=begun, guild_id=guild_id, user_id=user_id, amount=amount, kind=kind,
        reason=reason, actor_id=actor_id, source=_check_source(source), silent=silent, floor=None,
        actor_name=actor_name,
    )  # fmt: skip
    return _finish(conn, OperationResult(begun, (entry,), replayed=False), policy)


def deduct(
    conn: psycopg.Connection,
    *,
    guild_id: int,
    user_id: int,
    amount: int,
    reason: str,
    actor_id: int | None,
    source: str,
    idempotency_key: str,
    silent: bool = False,
    settings: Settings | None = None,
    actor_name: str = "",
) -> OperationResult:
    """Debit a member; below zero only where the guild allows negative balances."""
    amount = _check_amount(amount)
    actor_name = _check_actor(actor_id, actor_name, source)
    reason = _check_reason(reason, required=source in ("slash", "admin_site"))
    policy = guild_policy(conn, settings or get_settings(), guild_id)
    _check_limit(policy, amount)
    begun = _begin(
        conn,
        guild_id,
        idempotency_key,
        "deduct",
        _fingerprint(op="deduct", user=user_id, amount=amount),
    )
    if isinstance(begun, OperationResult):
        return begun
    entry = _apply(
        conn, policy, operation_id=begun, guild_id=guild_id, user_id=user_id, amount=-amount, kind="deduct",
        reason=reason, actor_id=actor_id, source=_check_source(source), silent=silent,
        floor=_admin_floor(policy), actor_name=actor_name,
    )  # fmt: skip
    return _finish(conn, OperationResult(begun, (entry,), replayed=False), policy)


def set_balance(
    conn: psycopg.Connection,
    *,
    guild_id: int,
    user_id: int,
    target: int,
    reason: str,
    actor_id: int | None,
    source: str,
    idempotency_key: str,
    silent: bool = False,
    settings: Settings | None = None,
    actor_name: str = "",
) -> OperationResult:
    """Make a balance exactly `target`; the entry records the difference."""
    target = _check_amount(target, positive=False)
    actor_name = _check_actor(actor_id, actor_name, source)
    reason = _check_reason(reason, required=source in ("slash", "admin_site"))
    policy = guild_policy(conn, settings or get_settings(), guild_id)
    if target < 0 and not policy.allow_negative:
        raise InvalidInput("Balances cannot be set below zero here.")
    begun = _begin(
        conn, guild_id, idempotency_key, "set", _fingerprint(op="set", user=user_id, target=target)
    )
    if isinstance(begun, OperationResult):
        return begun
    ensure_member(conn, guild_id, user_id)
    # Lock the row so the difference is computed from the balance this entry lands on.
    current = conn.execute(
        "SELECT balance FROM points WHERE guild_id = %s AND user_id = %s FOR UPDATE",
        (guild_id, user_id),
    ).fetchone()[0]
    if abs(current) <= MAX_BALANCE:
        _check_limit(policy, target - current)
    # else: a balance stored before the range existed; setting it back into the range is
    # the way to repair it, however large that change is.
    entry = _apply(
        conn, policy, operation_id=begun, guild_id=guild_id, user_id=user_id, amount=target - current,
        kind="set", reason=reason, actor_id=actor_id, source=_check_source(source), silent=silent, floor=None,
        actor_name=actor_name,
    )  # fmt: skip
    return _finish(conn, OperationResult(begun, (entry,), replayed=False), policy)


def transfer(
    conn: psycopg.Connection,
    *,
    guild_id: int,
    from_user_id: int,
    to_user_id: int,
    amount: int,
    reason: str | None,
    idempotency_key: str,
    source: str = "slash",
    settings: Settings | None = None,
    actor_name: str = "",
) -> OperationResult:
    """One member gives points to another (the giver is the actor). The giver never goes below zero."""
    amount = _check_amount(amount)
    reason_text = _check_reason(reason, required=False)
    if from_user_id == to_user_id:
        raise InvalidInput("You cannot give points to yourself.")
    policy = guild_policy(conn, settings or get_settings(), guild_id)
    if not policy.transfers_enabled:
        raise TransfersDisabled("Giving points to other members is switched off in this server.")
    _check_limit(policy, amount)
    begun = _begin(
        conn, guild_id, idempotency_key, "transfer",
        _fingerprint(op="transfer", src=from_user_id, dst=to_user_id, amount=amount),
    )  # fmt: skip
    if isinstance(begun, OperationResult):
        return begun
    legs = {
        from_user_id: dict(user_id=from_user_id, amount=-amount, kind="transfer_out", floor=0,
                           counterparty_id=to_user_id),
        to_user_id: dict(user_id=to_user_id, amount=amount, kind="transfer_in", floor=None,
                         counterparty_id=from_user_id),
    }  # fmt: skip
    entries = []
    # Rows are always locked in user id order, so two opposite transfers cannot deadlock.
    for user_id in sorted(legs):
        entries.append(
            _apply(conn, policy, operation_id=begun, guild_id=guild_id, reason=reason_text,
                   actor_id=from_user_id, actor_name=_check_actor(from_user_id, actor_name, source),
                   source=_check_source(source), silent=False, **legs[user_id])
        )  # fmt: skip
    entries.sort(key=lambda e: e.id)
    return _finish(conn, OperationResult(begun, tuple(entries), replayed=False), policy)


def revert(
    conn: psycopg.Connection,
    *,
    guild_id: int,
    entry_id: int,
    reason: str,
    actor_id: int | None,
    source: str,
    idempotency_key: str,
    silent: bool = False,
    settings: Settings | None = None,
    actor_name: str = "",
) -> OperationResult:
    """Reverse an earlier entry with a new one (both legs of a transfer)."""
    reason = _check_reason(reason, required=source in ("slash", "admin_site"))
    actor_name = _check_actor(actor_id, actor_name, source)
    policy = guild_policy(conn, settings or get_settings(), guild_id)
    begun = _begin(conn, guild_id, idempotency_key, "revert", _fingerprint(op="revert", entry=entry_id))
    if isinstance(begun, OperationResult):
        return begun
    original = conn.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM transactions WHERE guild_id = %s AND id = %s",
        (guild_id, entry_id),
    ).fetchone()
    if original is None:
        raise NotFound(f"There is no entry #{entry_id} in this server.")
    original = _entry(original)
    if original.kind == "revert":
        raise InvalidInput(f"Entry #{entry_id} is itself a revert; make a new change instead.")
    targets = (
        _entries_of(conn, original.operation_id)
        if original.kind in ("transfer_in", "transfer_out")
        else (original,)
    )
    already = conn.execute(
        "SELECT reverts_id FROM transactions WHERE reverts_id = ANY(%s)", ([t.id for t in targets],)
    ).fetchone()
    if already is not None:
        raise AlreadyReverted(f"Entry #{already[0]} has already been reverted.")
    entries = []
    for target in sorted(targets, key=lambda t: t.user_id):
        try:
            entries.append(
                _apply(conn, policy, operation_id=begun, guild_id=guild_id, user_id=target.user_id,
                       amount=-target.amount, kind="revert", reason=reason, actor_id=actor_id, actor_name=actor_name,
                       source=_check_source(source), silent=silent,
                       floor=_admin_floor(policy) if target.amount > 0 else None,
                       counterparty_id=target.counterparty_id, reverts_id=target.id)
            )  # fmt: skip
        except pg_errors.UniqueViolation as exc:  # a concurrent revert of the same entry won
            raise AlreadyReverted(f"Entry #{target.id} has already been reverted.") from exc
    entries.sort(key=lambda e: e.id)
    return _finish(conn, OperationResult(begun, tuple(entries), replayed=False), policy)


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
