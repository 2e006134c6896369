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
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from ..platform.amounts import MAX_BALANCE, OUT_OF_RANGE, check_in_range
from ..platform.config import Settings, get_settings
from ..platform.errors import (
    AlreadyReverted,
    IdempotencyConflict,
    InvalidInput,
    LimitExceeded,
    NotFound,
    OutOfRange,
    ReasonRequired,
    TransfersDisabled,
)
from ..platform.storable import check_text
from .entries import _ENTRY_COLUMNS, SOURCES, LedgerEntry, OperationResult, _entry
from .guilds import GUILD_ROW, GuildPolicy, guild_policy, policy_from
from .statement import apply_ctes, apply_entry, apply_params, check_applied, daily_cap_of, ensure_member

MAX_REASON = 500


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


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not key or len(key) > 200:
        raise InvalidInput("An idempotency key (1 to 200 characters) is required.")
    return key


# The guild row and the claim of the key in one statement (one round trip, not two): the row
# holds the policy the caller checks the request against. No guild row (first contact with a
# guild): no row back and nothing claimed. A key used before: op_id is NULL.
CLAIM = f"""
WITH g AS ({GUILD_ROW}), op AS (
    INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind)
    SELECT %(guild_id)s, %(key)s, %(fingerprint)s, %(kind)s WHERE EXISTS (SELECT 1 FROM g)
    ON CONFLICT (guild_id, idempotency_key) DO NOTHING RETURNING id
)
SELECT g.settings, g.name, g.active_achievements, (SELECT id FROM op) AS op_id FROM g
"""


def _claim(
    conn: psycopg.Connection,
    guild_id: int,
    key: str,
    kind: str,
    fingerprint: str,
    policy: GuildPolicy | None,
    settings: Settings | None,
) -> tuple[GuildPolicy, int | None]:
    """The guild's policy (`policy` when given) and the claimed operation id, None when the key
    was used before (`_replay` answers then).

    The key is claimed before the caller checks the request against the policy: a refusal
    raises, and the caller's transaction (or savepoint) rolls the claim back with the rest, as
    every ledger error does. A concurrent holder of the same key makes the INSERT wait until it
    commits or rolls back, so exactly one of them applies the change.
    """
    _check_key(key)
    if policy is None:
        params = {"guild_id": guild_id, "key": key, "fingerprint": fingerprint, "kind": kind}
        row = conn.execute(CLAIM, params).fetchone()
        if row is not None:
            return policy_from(settings or get_settings(), row[0], row[1], row[2]), row[3]
        policy = guild_policy(conn, settings or get_settings(), guild_id)  # creates the guild row
    begun = _begin(conn, guild_id, key, kind, fingerprint)
    return policy, (begun if isinstance(begun, int) else None)


# The guild row, the claim of the key and the change of one member in one statement: one round
# trip where CLAIM and then APPLY took two. The balance moves only if this statement claimed the
# key. The row back: the guild row (no row: first contact with the guild, nothing written), the
# operation id (NULL: a key used before, nothing moved), the member's credits of the day after
# the change, and the entry (NULLs: the member is new, or a guard passed in refused).
CLAIM_APPLY = f"""
WITH g AS ({GUILD_ROW}), op AS (
    INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind)
    SELECT %(guild_id)s, %(key)s, %(fingerprint)s, %(kind)s WHERE EXISTS (SELECT 1 FROM g)
    ON CONFLICT (guild_id, idempotency_key) DO NOTHING RETURNING id
), {apply_ctes("(SELECT id FROM op)", "EXISTS (SELECT 1 FROM op)")}
SELECT g.settings, g.name, g.active_achievements, (SELECT id FROM op), (SELECT daily_credited FROM upd), entry.*
FROM g LEFT JOIN entry ON true
"""


def _change_one(
    conn: psycopg.Connection,
    *,
    guild_id: int,
    user_id: int,
    amount: int,
    kind: str,
    key: str,
    fingerprint: str,
    policy: GuildPolicy | None,
    settings: Settings | None,
    floor_of: Callable[[GuildPolicy], int | None],
    limited: bool,
    **entry: Any,
) -> OperationResult:
    """Claim `key` and move one member's balance by `amount` as an entry of `kind`, in one
    statement (`CLAIM_APPLY`) where it can, as `_claim` and `apply_entry` would in two.

    The guards that depend on the guild's policy (the daily cap, the floor) go into the
    statement when the caller passed the policy; otherwise the statement reads the policy with
    the claim, applies under the balance range alone, and the entry is held to those guards
    right after (`check_applied`), while the UPDATE still locks the member's row: a refusal
    raises and the caller's transaction rolls the entry back with its claim. So does the single
    change limit (`limited`), checked before a replay as `_claim`'s callers check it.
    """
    _check_key(key)
    params = apply_params(
        policy, operation_id=0, guild_id=guild_id, user_id=user_id, amount=amount, kind=kind,
        floor=None if policy is None else floor_of(policy), **entry,
    )  # fmt: skip
    params.update(key=key, fingerprint=fingerprint)
    try:
        row = conn.execute(CLAIM_APPLY, params).fetchone()
    except (pg_errors.NumericValueOutOfRange, pg_errors.CheckViolation) as exc:
        raise OutOfRange(OUT_OF_RANGE) from exc  # past the range (sql/003): nothing is written
    if row is None:  # first contact with the guild: the long way, as before CLAIM_APPLY
        policy, begun = _claim(conn, guild_id, key, kind, fingerprint, policy, settings)
        op_id, credited, applied = begun, None, None
    else:
        policy = policy or policy_from(settings or get_settings(), row[0], row[1], row[2])
        op_id, credited, applied = row[3], row[4], (None if row[5] is None else _entry(row[5:]))
    if limited:
        _check_limit(policy, amount)
    if op_id is None:
        return _replay(conn, guild_id, key, fingerprint)
    floor = floor_of(policy)
    if applied is None:  # a new member, or a guard refused: apply_entry makes the member or says which
        applied = apply_entry(conn, policy, operation_id=op_id, guild_id=guild_id, user_id=user_id,
                              amount=amount, kind=kind, floor=floor, **entry)  # fmt: skip
    else:
        check_applied(policy, applied, credited_today=credited or 0, floor=floor,
                      cap=daily_cap_of(policy, kind, amount))  # fmt: skip
    return OperationResult(op_id, (applied,), replayed=False, policy=policy)


def _replay(conn: psycopg.Connection, guild_id: int, key: str, fingerprint: str) -> OperationResult:
    """The earlier result of a key used before; a different request under it is a conflict."""
    op_id, stored = conn.execute(
        "SELECT id, fingerprint FROM operations WHERE guild_id = %s AND idempotency_key = %s",
        (guild_id, key),
    ).fetchone()
    if stored != fingerprint:
        raise IdempotencyConflict("This request was already made with different details.")
    return OperationResult(op_id, _entries_of(conn, op_id), replayed=True)


def _begin(
    conn: psycopg.Connection, guild_id: int, key: str, kind: str, fingerprint: str
) -> int | OperationResult:
    """Claim the idempotency key: a new operation id, or the earlier result to replay.

    A concurrent holder of the same key makes the INSERT wait until it commits or rolls back,
    so exactly one of them applies the change.
    """
    _check_key(key)
    row = conn.execute(
        "INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (guild_id, idempotency_key) DO NOTHING RETURNING id",
        (guild_id, key, fingerprint, kind),
    ).fetchone()
    if row is not None:
        return row[0]
    return _replay(conn, guild_id, key, fingerprint)


def _admin_floor(policy: GuildPolicy) -> int | None:
    return None if policy.allow_negative else 0


def _no_floor(policy: GuildPolicy) -> None:
    return None


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
    policy: GuildPolicy | None = None,
) -> OperationResult:
    """Credit a member. `kind` may name a bonus ('achievement', 'email_bonus')."""
    if kind not in ("award", "achievement", "email_bonus"):
        raise InvalidInput(f"award cannot write kind {kind!r}")
    amount = _check_amount(amount)
    actor_name = _check_actor(actor_id, actor_name, source)
    reason = _check_reason(reason, required=source in ("slash", "admin_site"))
    return _change_one(
        conn, guild_id=guild_id, user_id=user_id, amount=amount, kind=kind, key=idempotency_key,
        fingerprint=_fingerprint(op=kind, user=user_id, amount=amount), policy=policy, settings=settings,
        floor_of=_no_floor, limited=kind == "award", reason=reason, actor_id=actor_id,
        source=_check_source(source), silent=silent, actor_name=actor_name,
    )  # fmt: skip


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
    policy: GuildPolicy | None = None,
) -> OperationResult:
    """Debit a member; below zero only where the guild allows negative balances."""
    amount = _check_amount(amount)
    actor_name = _check_actor(actor_id, actor_name, source)
    reason = _check_reason(reason, required=source in ("slash", "admin_site"))
    return _change_one(
        conn, guild_id=guild_id, user_id=user_id, amount=-amount, kind="deduct", key=idempotency_key,
        fingerprint=_fingerprint(op="deduct", user=user_id, amount=amount), policy=policy, settings=settings,
        floor_of=_admin_floor, limited=True, reason=reason, actor_id=actor_id,
        source=_check_source(source), silent=silent, actor_name=actor_name,
    )  # fmt: skip


def _locked_balance(conn: psycopg.Connection, guild_id: int, user_id: int) -> int | None:
    row = conn.execute(
        "SELECT balance FROM points WHERE guild_id = %s AND user_id = %s FOR UPDATE", (guild_id, user_id)
    ).fetchone()
    return None if row is None else row[0]


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
    policy: GuildPolicy | None = None,
) -> OperationResult:
    """Make a balance exactly `target`; the entry records the difference.

    A set to the balance the member has is no change: no entry is written (an entry counts as a
    transaction, for the member's counts and achievements), only the idempotency record, so a
    replay answers the same. The result then has no entries (`changed` is False).
    """
    target = _check_amount(target, positive=False)
    actor_name = _check_actor(actor_id, actor_name, source)
    reason = _check_reason(reason, required=source in ("slash", "admin_site"))
    fingerprint = _fingerprint(op="set", user=user_id, target=target)
    policy, begun = _claim(conn, guild_id, idempotency_key, "set", fingerprint, policy, settings)
    if target < 0 and not policy.allow_negative:
        raise InvalidInput("Balances cannot be set below zero here.")
    if begun is None:
        return _replay(conn, guild_id, idempotency_key, fingerprint)
    # Lock the row so the difference is computed from the balance this entry lands on.
    current = _locked_balance(conn, guild_id, user_id)
    if current == target or (current is None and target == 0):
        return OperationResult(begun, (), replayed=False, policy=policy)
    if current is None:
        ensure_member(conn, guild_id, user_id)
        current = _locked_balance(conn, guild_id, user_id) or 0
    if abs(current) <= MAX_BALANCE:
        _check_limit(policy, target - current)
    # else: a balance stored before the range existed; setting it back into the range is
    # the way to repair it, however large that change is.
    entry = apply_entry(
        conn, policy, operation_id=begun, guild_id=guild_id, user_id=user_id, amount=target - current,
        kind="set", reason=reason, actor_id=actor_id, source=_check_source(source), silent=silent, floor=None,
        actor_name=actor_name,
    )  # fmt: skip
    return OperationResult(begun, (entry,), replayed=False, policy=policy)


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
    policy: GuildPolicy | None = None,
) -> OperationResult:
    """One member gives points to another (the giver is the actor). The giver never goes below zero."""
    amount = _check_amount(amount)
    reason_text = _check_reason(reason, required=False)
    if from_user_id == to_user_id:
        raise InvalidInput("You cannot give points to yourself.")
    fingerprint = _fingerprint(op="transfer", src=from_user_id, dst=to_user_id, amount=amount)
    policy, begun = _claim(conn, guild_id, idempotency_key, "transfer", fingerprint, policy, settings)
    if not policy.transfers_enabled:
        raise TransfersDisabled("Giving points to other members is switched off in this server.")
    _check_limit(policy, amount)
    if begun is None:
        return _replay(conn, guild_id, idempotency_key, fingerprint)
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
            apply_entry(conn, policy, operation_id=begun, guild_id=guild_id, reason=reason_text,
                   actor_id=from_user_id, actor_name=_check_actor(from_user_id, actor_name, source),
                   source=_check_source(source), silent=False, **legs[user_id])
        )  # fmt: skip
    entries.sort(key=lambda e: e.id)
    return OperationResult(begun, tuple(entries), replayed=False, policy=policy)


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
    policy: GuildPolicy | None = None,
) -> OperationResult:
    """Reverse an earlier entry with a new one (both legs of a transfer)."""
    reason = _check_reason(reason, required=source in ("slash", "admin_site"))
    actor_name = _check_actor(actor_id, actor_name, source)
    fingerprint = _fingerprint(op="revert", entry=entry_id)
    policy, begun = _claim(conn, guild_id, idempotency_key, "revert", fingerprint, policy, settings)
    if begun is None:
        return _replay(conn, guild_id, idempotency_key, fingerprint)
    original = conn.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM transactions WHERE guild_id = %s AND id = %s",
        (guild_id, entry_id),
    ).fetchone()
    if original is None:
        raise NotFound(f"There is no entry #{entry_id} in this server.")
    original = _entry(original)
    if original.kind == "revert":
        raise InvalidInput(f"Entry #{entry_id} is itself a revert; make a new change instead.")
    if original.kind in ("purchase", "purchase_refund"):
        raise InvalidInput(
            f"Entry #{entry_id} is a reward purchase or its refund; refund the purchase instead "
            "(/redemptions refund or the admin site's Redemptions)."
        )
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
                apply_entry(conn, policy, operation_id=begun, guild_id=guild_id, user_id=target.user_id,
                       amount=-target.amount, kind="revert", reason=reason, actor_id=actor_id, actor_name=actor_name,
                       source=_check_source(source), silent=silent,
                       floor=_admin_floor(policy) if target.amount > 0 else None,
                       counterparty_id=target.counterparty_id, reverts_id=target.id)
            )  # fmt: skip
        except pg_errors.UniqueViolation as exc:  # a concurrent revert of the same entry won
            raise AlreadyReverted(f"Entry #{target.id} has already been reverted.") from exc
    entries.sort(key=lambda e: e.id)
    return OperationResult(begun, tuple(entries), replayed=False, policy=policy)


# -- the reward store's entries ----------------------------------------------------------------
def purchase_debit(
    conn: psycopg.Connection,
    *,
    guild_id: int,
    user_id: int,
    price: int,
    reason: str,
    idempotency_key: str,
    actor_name: str = "",
    policy: GuildPolicy,
) -> OperationResult:
    """A member pays for a reward: a `purchase` entry, never below zero (whatever the guild
    allows for admin changes: spending needs the points). The store (community/store.py) takes
    the stock and records the purchase in the same transaction; a replay of the key returns the
    first result. No single-change limit: the price is the admin's, checked when it was set."""
    price = _check_amount(price)
    reason = _check_reason(reason, required=False)
    begun = _begin(conn, guild_id, idempotency_key, "purchase",
                   _fingerprint(op="purchase", user=user_id, amount=price))  # fmt: skip
    if isinstance(begun, OperationResult):
        return begun
    entry = apply_entry(
        conn, policy, operation_id=begun, guild_id=guild_id, user_id=user_id, amount=-price, kind="purchase",
        reason=reason, actor_id=user_id, source="purchase", silent=True, floor=0,
        actor_name=_check_actor(user_id, actor_name, "purchase"),
    )  # fmt: skip
    return OperationResult(begun, (entry,), replayed=False, policy=policy)


def purchase_refund(
    conn: psycopg.Connection,
    *,
    guild_id: int,
    purchase_entry_id: int,
    reason: str,
    idempotency_key: str,
    actor_id: int | None,
    actor_name: str,
    policy: GuildPolicy,
) -> OperationResult:
    """Give a purchase's points back: a `purchase_refund` entry linked to the purchase entry
    (reverts_id, unique: one refund per purchase, ever). `actor_name` names who refunded it
    (an admin, or "store" when Discord refused a role)."""
    reason = _check_reason(reason, required=False)
    begun = _begin(conn, guild_id, idempotency_key, "purchase_refund",
                   _fingerprint(op="purchase_refund", entry=purchase_entry_id))  # fmt: skip
    if isinstance(begun, OperationResult):
        return begun
    original = conn.execute(
        f"SELECT {_ENTRY_COLUMNS} FROM transactions WHERE guild_id = %s AND id = %s AND kind = 'purchase'",
        (guild_id, purchase_entry_id),
    ).fetchone()
    if original is None:
        raise NotFound(f"There is no purchase entry #{purchase_entry_id} in this server.")
    original = _entry(original)
    try:
        entry = apply_entry(
            conn, policy, operation_id=begun, guild_id=guild_id, user_id=original.user_id,
            amount=-original.amount, kind="purchase_refund", reason=reason, actor_id=actor_id,
            actor_name=_check_actor(actor_id, actor_name or "store", "purchase_refund"),
            source="purchase_refund", silent=True, floor=None, reverts_id=original.id,
        )  # fmt: skip
    except pg_errors.UniqueViolation as exc:  # a concurrent refund of the same purchase won
        raise AlreadyReverted(f"Purchase entry #{original.id} has already been refunded.") from exc
    return OperationResult(begun, (entry,), replayed=False, policy=policy)
