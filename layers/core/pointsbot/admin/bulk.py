"""Points changes from the admin site: one member at a time, or many in a bulk batch.

Every change goes through the ledger with source "admin_site" and an idempotency key built
from the form's token, so submitting the same form twice changes nothing the second time.
A bulk batch is parsed and checked row by row (a dry run shows the outcome), then applied in
chunks, each chunk its own transaction, with its progress stored so a page can show it.
"""

from __future__ import annotations

import csv
import io
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from .. import ledger
from ..community import audit, points
from ..ledger.guilds import GuildPolicy, guild_policy
from ..platform.amounts import MAX_BALANCE, OUT_OF_RANGE, check_in_range, parse_whole_number
from ..platform.config import Settings, get_settings
from ..platform.errors import DomainError, InvalidInput, NotFound
from ..platform.ids import parse_snowflake
from ..platform.storable import check_text
from .sessions import Identity

OPERATIONS = ("award", "deduct", "set")
NOTHING_TO_CHANGE = "Nothing to change: every row is at that balance already."
MAX_ROWS = 10_000
CHUNK = 100


def new_form_token() -> str:
    """The idempotency key base a form carries (made when the form is shown)."""
    return secrets.token_urlsafe(18)


def _check_token(token: str) -> str:
    if not token or len(token) > 64 or not all(c.isalnum() or c in "-_" for c in token):
        raise InvalidInput("This form is missing its token; reload the page and submit again.")
    return token


def _run_operation(
    conn: psycopg.Connection,
    *,
    operation: str,
    guild_id: int,
    user_id: int,
    amount: int,
    reason: str,
    actor_id: int | None,
    actor_name: str,
    silent: bool,
    key: str,
    settings: Settings,
) -> ledger.OperationResult:
    common = dict(guild_id=guild_id, user_id=user_id, reason=reason, actor_id=actor_id, actor_name=actor_name,
                  source="admin_site", idempotency_key=key, silent=silent, settings=settings)  # fmt: skip
    if operation == "award":
        return points.award(conn, amount=amount, **common)
    if operation == "deduct":
        return points.deduct(conn, amount=amount, **common)
    if operation == "set":
        return points.set_balance(conn, target=amount, **common)
    raise InvalidInput(f"Unknown operation {operation!r}.")


@dataclass(frozen=True)
class ChangeOutcome:
    result: ledger.OperationResult
    before: int
    policy: GuildPolicy

    @property
    def unchanged(self) -> bool:
        """A set to the balance the member had: nothing was written (also on a replay)."""
        return not self.result.changed


def change_points(
    conn: psycopg.Connection,
    identity: Identity,
    *,
    guild_id: int,
    user_id: int,
    operation: str,
    amount: int,
    reason: str,
    silent: bool,
    form_token: str,
    settings: Settings | None = None,
) -> ChangeOutcome:
    """Add, remove or set one member's points; audited unless it was a replay or changed nothing."""
    settings = settings or get_settings()
    key = f"admin:{_check_token(form_token)}"
    before = ledger.balance(conn, guild_id, user_id)
    result = _run_operation(
        conn, operation=operation, guild_id=guild_id, user_id=user_id, amount=amount, reason=reason,
        actor_id=identity.user_id, actor_name=identity.actor_name, silent=silent, key=key, settings=settings,
    )  # fmt: skip
    if not result.replayed and result.changed:
        audit.record(
            conn, guild_id=guild_id, actor_id=identity.user_id, actor_name=identity.actor_name,
            action=f"points.{operation}", target=f"member:{user_id}",
            before={"balance": before},
            after={"balance": result.balance, "entry_id": result.entry.id, "amount": result.entry.amount,
                   "reason": result.entry.reason, "silent": silent},
        )  # fmt: skip
    return ChangeOutcome(result, before, guild_policy(conn, settings, guild_id))


def revert_entry(
    conn: psycopg.Connection,
    identity: Identity,
    *,
    guild_id: int,
    entry_id: int,
    reason: str,
    silent: bool,
    form_token: str,
    settings: Settings | None = None,
) -> ledger.OperationResult:
    original = ledger.get_entry(conn, guild_id, entry_id)
    if original is None:
        raise NotFound(f"There is no entry #{entry_id} in this server.")
    result = points.revert(
        conn, guild_id=guild_id, entry_id=entry_id, reason=reason, actor_id=identity.user_id,
        actor_name=identity.actor_name, source="admin_site", idempotency_key=f"admin:{_check_token(form_token)}", silent=silent,
        settings=settings or get_settings(),
    )  # fmt: skip
    if not result.replayed:
        audit.record(
            conn, guild_id=guild_id, actor_id=identity.user_id, actor_name=identity.actor_name,
            action="points.revert", target=f"entry:{entry_id}",
            before={"entry_id": entry_id, "amount": original.amount, "user_id": str(original.user_id)},
            after={"entries": [{"id": e.id, "user_id": str(e.user_id), "amount": e.amount,
                                "balance_after": e.balance_after} for e in result.entries]},
        )  # fmt: skip
    return result


# -- bulk ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BulkRow:
    line: int
    user_id: str
    amount: str
    reason: str


def parse_csv(text: str) -> list[BulkRow]:
    """`user_id,amount,reason` lines (a header line is allowed; reason may be empty)."""
    if text is None or not text.strip():
        raise InvalidInput("There are no rows: paste or upload lines of user_id,amount,reason.")
    rows: list[BulkRow] = []
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    for number, cells in enumerate(reader, start=1):
        if not cells or all(not c.strip() for c in cells):
            continue
        if not rows and number == 1 and cells[0].strip().lower() in ("user_id", "user", "id", "member"):
            continue  # header
        cells = [*cells, "", "", ""]
        rows.append(BulkRow(number, cells[0].strip(), cells[1].strip(), ",".join(cells[2:]).strip(", ")))
        if len(rows) > MAX_ROWS:
            raise InvalidInput(f"A batch holds at most {MAX_ROWS:,} rows; split the file.")
    if not rows:
        raise InvalidInput("There are no rows: paste or upload lines of user_id,amount,reason.")
    return rows


def rows_for_members(user_ids: list[str], amount: str, reason: str) -> list[BulkRow]:
    """A batch from members picked in a search: the same amount and reason for each."""
    if not user_ids:
        raise InvalidInput("Pick at least one member.")
    if len(user_ids) > MAX_ROWS:
        raise InvalidInput(f"A batch holds at most {MAX_ROWS:,} rows.")
    return [BulkRow(i, uid.strip(), amount.strip(), reason) for i, uid in enumerate(user_ids, start=1)]


@dataclass(frozen=True)
class RowCheck:
    line: int
    user_id: int | None
    user_text: str
    amount: int | None
    reason: str
    error: str | None
    balance_before: int | None = None
    balance_after: int | None = None
    new_member: bool = False
    name: str | None = None
    unchanged: bool = False  # a set to the balance the member has: applying it writes nothing

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class BulkPreview:
    operation: str
    silent: bool
    rows: tuple[RowCheck, ...]

    @property
    def valid(self) -> list[RowCheck]:
        return [r for r in self.rows if r.ok]

    @property
    def invalid(self) -> list[RowCheck]:
        return [r for r in self.rows if not r.ok]

    @property
    def unchanged(self) -> list[RowCheck]:
        return [r for r in self.valid if r.unchanged]

    @property
    def to_apply(self) -> list[RowCheck]:
        """The rows a batch applies: valid ones that change something."""
        return [r for r in self.valid if not r.unchanged]

    @property
    def net_change(self) -> int:
        return sum((r.balance_after or 0) - (r.balance_before or 0) for r in self.valid)


def check_rows(
    conn: psycopg.Connection,
    guild_id: int,
    operation: str,
    rows: list[BulkRow],
    *,
    default_reason: str = "",
    silent: bool = False,
    settings: Settings | None = None,
) -> BulkPreview:
    """The dry run: what each row would do, or why it would be refused. Writes nothing."""
    if operation not in OPERATIONS:
        raise InvalidInput(f"Unknown operation {operation!r}.")
    policy = guild_policy(conn, settings or get_settings(), guild_id)
    parsed: list[tuple[BulkRow, int | None, int | None, str, str | None]] = []
    seen: set[int] = set()
    for row in rows:
        error = None
        user_id = amount = None
        reason = (row.reason or default_reason).strip()
        try:
            user_id = parse_snowflake(row.user_id, "user_id")
            amount = check_in_range(parse_whole_number(row.amount or "", f"the amount {row.amount!r}"))
            if operation in ("award", "deduct") and amount <= 0:
                raise InvalidInput("amount must be above zero")
            if operation == "set" and amount < 0 and not policy.allow_negative:
                raise InvalidInput("balances cannot be set below zero here")
            if not reason:
                raise InvalidInput("a reason is required")
            if len(reason) > ledger.MAX_REASON:
                raise InvalidInput(f"the reason is longer than {ledger.MAX_REASON} characters")
            check_text(reason, "the reason")
            if user_id in seen:
                raise InvalidInput("this member is already in the batch")
            seen.add(user_id)
        except DomainError as exc:
            error = exc.message
        parsed.append((row, user_id, amount, reason, error))
    ids = [p[1] for p in parsed if p[1] is not None and p[4] is None]
    known = {
        r[0]: (r[1], r[2])
        for r in conn.execute(
            "SELECT m.user_id, coalesce(p.balance, 0), coalesce(m.display_name, m.username) FROM members m "
            "LEFT JOIN points p USING (guild_id, user_id) WHERE m.guild_id = %s AND m.user_id = ANY(%s)",
            (guild_id, ids),
        ).fetchall()
    }
    checks = []
    for row, user_id, amount, reason, error in parsed:
        if error is not None:
            checks.append(RowCheck(row.line, user_id, row.user_id, amount, reason, error))
            continue
        before, name = known.get(user_id, (0, None))
        after = {"award": before + amount, "deduct": before - amount, "set": amount}[operation]
        change = after - before
        if abs(after) > MAX_BALANCE:
            error = OUT_OF_RANGE
        elif abs(change) > policy.max_change and abs(before) <= MAX_BALANCE:
            error = f"the change of {change:,} is more than the largest allowed ({policy.max_change:,})"
        elif operation == "deduct" and after < 0 and not policy.allow_negative:
            error = f"not enough points (balance {before:,})"
        checks.append(
            RowCheck(row.line, user_id, row.user_id, amount, reason, error, before, after,
                     new_member=user_id not in known, name=name, unchanged=error is None and change == 0)
        )  # fmt: skip
    return BulkPreview(operation, silent, tuple(checks))


@dataclass
class BatchStatus:
    id: int
    operation: str
    silent: bool
    total: int
    done: int
    failed: int
    errors: list[dict[str, Any]] = field(default_factory=list)
    status: str = "running"

    @property
    def finished(self) -> bool:
        return self.status == "done"

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(100 * (self.done + self.failed) / self.total)


def _status(row: tuple) -> BatchStatus:
    return BatchStatus(*row)


_BATCH_COLUMNS = "id, operation, silent, total, done, failed, errors, status"


def start_batch(
    conn: psycopg.Connection,
    identity: Identity,
    guild_id: int,
    preview: BulkPreview,
    form_token: str,
) -> BatchStatus:
    """Store the rows that change something under the form token; the same token again returns
    the same batch. A row that would set a balance to what it is is left out (it writes nothing)."""
    token = _check_token(form_token)
    rows = [
        {"line": r.line, "user_id": str(r.user_id), "amount": r.amount, "reason": r.reason}
        for r in preview.to_apply
    ]
    if not rows and preview.unchanged and not preview.invalid:
        raise InvalidInput(NOTHING_TO_CHANGE)
    if not rows:
        raise InvalidInput("No row of this batch can be applied; fix the rows and check again.")
    inserted = conn.execute(
        f"INSERT INTO admin_bulk_batches (guild_id, form_token, operation, silent, rows, total, actor_id, actor_name) "
        f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (guild_id, form_token) DO NOTHING "
        f"RETURNING {_BATCH_COLUMNS}",
        (guild_id, token, preview.operation, preview.silent, Jsonb(rows), len(rows), identity.user_id,
         identity.actor_name),
    ).fetchone()  # fmt: skip
    if inserted is None:
        return get_batch(conn, guild_id, token_or_id=token)
    audit.record(
        conn, guild_id=guild_id, actor_id=identity.user_id, actor_name=identity.actor_name,
        action=f"bulk.{preview.operation}", target=f"batch:{inserted[0]}", before=None,
        after={"rows": len(rows), "silent": preview.silent, "net_change": preview.net_change,
               "skipped_invalid": len(preview.invalid), "skipped_unchanged": len(preview.unchanged)},
    )  # fmt: skip
    return _status(inserted)


def get_batch(conn: psycopg.Connection, guild_id: int, *, token_or_id: str | int) -> BatchStatus:
    column = "id" if isinstance(token_or_id, int) else "form_token"
    row = conn.execute(
        f"SELECT {_BATCH_COLUMNS} FROM admin_bulk_batches WHERE guild_id = %s AND {column} = %s",
        (guild_id, token_or_id),
    ).fetchone()
    if row is None:
        raise NotFound("There is no such bulk batch in this server.")
    return _status(row)


def _apply_chunk(
    conn: psycopg.Connection, guild_id: int, batch_id: int, chunk: int, settings: Settings
) -> BatchStatus:
    # The row lock makes two continuations of one batch take turns instead of racing.
    row = conn.execute(
        f"SELECT {_BATCH_COLUMNS}, rows, form_token, actor_id, actor_name FROM admin_bulk_batches "
        "WHERE guild_id = %s AND id = %s FOR UPDATE",
        (guild_id, batch_id),
    ).fetchone()
    if row is None:
        raise NotFound("There is no such bulk batch in this server.")
    status = _status(row[:8])
    rows, token, actor_id, actor_name = row[8], row[9], row[10], row[11]
    start = status.done + status.failed
    if status.finished:
        return status
    errors = []
    applied = 0
    for index in range(start, min(start + chunk, status.total)):
        item = rows[index]
        try:
            with conn.transaction():  # a savepoint: one refused row leaves the others alone
                _run_operation(
                    conn, operation=status.operation, guild_id=guild_id, user_id=int(item["user_id"]),
                    amount=int(item["amount"]), reason=item["reason"], actor_id=actor_id, actor_name=actor_name,
                    silent=status.silent, key=f"admin-bulk:{token}:{index}", settings=settings,
                )  # fmt: skip
            applied += 1
        except DomainError as exc:
            errors.append({"line": item["line"], "user_id": item["user_id"], "error": exc.message})
    finished = start + chunk >= status.total
    updated = conn.execute(
        f"UPDATE admin_bulk_batches SET done = done + %s, failed = failed + %s, errors = errors || %s, "
        f"status = CASE WHEN %s THEN 'done' ELSE status END, "
        f"finished_at = CASE WHEN %s THEN now() ELSE finished_at END "
        f"WHERE id = %s RETURNING {_BATCH_COLUMNS}",
        (applied, len(errors), Jsonb(errors), finished, finished, batch_id),
    ).fetchone()
    return _status(updated)


def continue_batch(
    run: Callable[..., Any],
    guild_id: int,
    batch_id: int,
    *,
    budget_s: float = 8.0,
    chunk: int = CHUNK,
    settings: Settings | None = None,
) -> BatchStatus:
    """Apply chunks (each its own transaction, through `run` = Database.run) for up to
    `budget_s` seconds; the caller shows progress and asks again until it is finished."""
    settings = settings or get_settings()
    deadline = time.monotonic() + budget_s
    while True:
        status = run(_apply_chunk, guild_id, batch_id, chunk, settings)
        if status.finished or time.monotonic() >= deadline:
            return status
