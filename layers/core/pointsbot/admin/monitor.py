"""Read-side lists of the admin site: the transactions monitor, the audit log, DM history.

Every list pages by keyset (`before` = the last id shown), so page 1,000 costs what page 1
does; each filter has an index in id order behind it (sql/020_admin_site.sql).
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg

from ..ledger.entries import _ENTRY_COLUMNS, KINDS, SOURCES, LedgerEntry
from ..platform.amounts import parse_whole_number
from ..platform.errors import InvalidInput
from ..platform.ids import format_snowflake, parse_snowflake

PAGE = 50
EXPORT_LIMIT = 50_000
# An entry's created_at is its transaction's start and its id is taken at insert, a few
# seconds later at most (statement timeouts; no ledger transaction waits on anything slow).
# So an entry begun an hour before T has a smaller id than every entry begun at or after T,
# and one begun an hour after T a larger id than every entry begun before T: id bounds for a
# date range that never cut off an entry inside it.
_ID_SLACK = timedelta(hours=1)
# The dates a filter is clamped to before any arithmetic: a date picker offers 0001-01-01 and
# 9999-12-31, where "an hour before" or "the day after" is past what a datetime holds (that was
# a 500). No entry is older than Discord itself (its ids count from 2015), and 9999-12-30 is as
# good as no end: the clamped filter selects exactly what the typed one means.
EARLIEST_DATE = date(2015, 1, 1)
LATEST_DATE = date(9999, 12, 30)


def _clamped(day: date) -> date:
    return min(max(day, EARLIEST_DATE), LATEST_DATE)


@dataclass(frozen=True)
class TransactionFilter:
    user_id: int | None = None
    actor_id: int | None = None
    actor_name: str = ""  # an actor without a Discord id: "local:alice", "achievement", "system"
    kind: str = ""
    source: str = ""
    date_from: date | None = None
    date_to: date | None = None  # inclusive
    min_amount: int | None = None
    max_amount: int | None = None

    @classmethod
    def from_form(cls, form: dict[str, str]) -> TransactionFilter:
        """Parse the filter form; every field optional, bad values a clear InvalidInput."""

        def opt_id(name: str, what: str) -> int | None:
            value = (form.get(name) or "").strip()
            return parse_snowflake(value, what) if value else None

        def opt_int(name: str, what: str) -> int | None:
            value = (form.get(name) or "").strip()
            return parse_whole_number(value, what) if value else None

        def opt_date(name: str, what: str) -> date | None:
            value = (form.get(name) or "").strip()
            if not value:
                return None
            try:
                return date.fromisoformat(value)
            except ValueError:
                raise InvalidInput(f"{what} must be a date (YYYY-MM-DD).") from None

        actor = (form.get("actor") or "").strip()
        by_name = bool(actor) and not actor.isdigit()
        kind = (form.get("kind") or "").strip()
        if kind and kind not in KINDS:
            raise InvalidInput(f"Unknown kind {kind!r}.")
        source = (form.get("source") or "").strip()
        if source and source not in SOURCES:
            raise InvalidInput(f"Unknown source {source!r}.")
        return cls(
            user_id=opt_id("member", "Member"),
            actor_id=None if by_name else opt_id("actor", "Actor"),
            actor_name=actor[:100] if by_name else "",
            kind=kind,
            source=source,
            date_from=opt_date("from", "From"),
            date_to=opt_date("to", "To"),
            min_amount=opt_int("min_amount", "Smallest amount"),
            max_amount=opt_int("max_amount", "Largest amount"),
        )

    def as_query(self) -> dict[str, str]:
        """The filter as query-string values (for paging and export links)."""
        values = {
            "member": format_snowflake(self.user_id),
            "actor": self.actor_name or format_snowflake(self.actor_id),
            "kind": self.kind,
            "source": self.source,
            "from": self.date_from.isoformat() if self.date_from else "",
            "to": self.date_to.isoformat() if self.date_to else "",
            "min_amount": "" if self.min_amount is None else str(self.min_amount),
            "max_amount": "" if self.max_amount is None else str(self.max_amount),
        }
        return {k: v for k, v in values.items() if v}

    def _where(self, guild_id: int) -> tuple[str, dict[str, Any]]:
        where = ["t.guild_id = %(g)s"]
        params: dict[str, Any] = {"g": guild_id}
        if self.user_id is not None:
            where.append("t.user_id = %(uid)s")
            params["uid"] = self.user_id
        if self.actor_id is not None:
            where.append("t.actor_id = %(aid)s")
            params["aid"] = self.actor_id
        if self.actor_name:
            where.append("t.actor_id IS NULL AND t.actor_name = %(aname)s")
            params["aname"] = self.actor_name
        if self.kind:
            where.append("t.kind = %(kind)s")
            params["kind"] = self.kind
        if self.source:
            where.append("t.source = %(source)s")
            params["source"] = self.source
        # A date range also bounds the ids, so the page walks the id index inside the range
        # instead of filtering the ledger from its newest entry (see _ID_SLACK).
        if self.date_from:
            where.append("t.created_at >= %(from)s")
            where.append(
                "t.id > coalesce((SELECT w.id FROM transactions w WHERE w.guild_id = %(g)s "
                "AND w.created_at < %(from_slack)s ORDER BY w.created_at DESC LIMIT 1), 0)"
            )
            params["from"] = datetime.combine(_clamped(self.date_from), time.min, UTC)
            params["from_slack"] = params["from"] - _ID_SLACK
        if self.date_to:
            where.append("t.created_at < %(to)s")
            where.append(
                "t.id < coalesce((SELECT v.id FROM transactions v WHERE v.guild_id = %(g)s "
                "AND v.created_at >= %(to_slack)s ORDER BY v.created_at LIMIT 1), 9223372036854775807)"
            )
            params["to"] = datetime.combine(_clamped(self.date_to) + timedelta(days=1), time.min, UTC)
            params["to_slack"] = params["to"] + _ID_SLACK
        if self.min_amount is not None:
            where.append("t.amount >= %(mina)s")
            params["mina"] = self.min_amount
        if self.max_amount is not None:
            where.append("t.amount <= %(maxa)s")
            params["maxa"] = self.max_amount
        return " AND ".join(where), params


@dataclass(frozen=True)
class MonitorRow:
    entry: LedgerEntry
    member_name: str | None


@dataclass(frozen=True)
class MonitorPage:
    rows: tuple[MonitorRow, ...]
    next_before: int | None  # the `before` of the next page, None on the last


_PREFIXED = ", ".join(f"t.{c.strip()}" for c in _ENTRY_COLUMNS.split(","))


def transactions_page(
    conn: psycopg.Connection,
    guild_id: int,
    flt: TransactionFilter,
    before: int | None = None,
    limit: int = PAGE,
) -> MonitorPage:
    where, params = flt._where(guild_id)
    if before is not None:
        where += " AND t.id < %(before)s"
        params["before"] = before
    params["limit"] = limit + 1
    rows = conn.execute(
        f"""
        SELECT {_PREFIXED}, coalesce(m.display_name, m.username)
        FROM transactions t
        LEFT JOIN members m ON m.guild_id = t.guild_id AND m.user_id = t.user_id
        WHERE {where}
        ORDER BY t.id DESC
        LIMIT %(limit)s
        """,
        params,
    ).fetchall()
    shown = [MonitorRow(LedgerEntry(*r[:-1]), r[-1]) for r in rows[:limit]]
    return MonitorPage(tuple(shown), shown[-1].entry.id if len(rows) > limit else None)


CSV_HEADER = ("id", "created_at", "user_id", "member", "amount", "balance_after", "kind", "reason",
              "actor_id", "source", "silent", "counterparty_id", "reverts_id", "actor")  # fmt: skip


_FORMULA_STARTS = frozenset("=+-@")


def _csv_safe(text: str | None) -> str:
    """Cells a spreadsheet would run as a formula get a leading quote (OWASP's CSV injection
    advice): one that starts with a tab, CR or LF, or whose first visible character is = + - @,
    also after leading whitespace or invisible format characters, and in their full-width and
    small forms (U+FF1D, U+FE66, ...), which NFKC folds to the ASCII ones."""
    value = text or ""
    if value[:1] in ("\t", "\r", "\n"):
        return "'" + value
    for char in value:
        if char.isspace() or unicodedata.category(char) in ("Cc", "Cf"):
            continue
        return "'" + value if unicodedata.normalize("NFKC", char)[:1] in _FORMULA_STARTS else value
    return value


def export_csv(conn: psycopg.Connection, guild_id: int, flt: TransactionFilter) -> Iterator[str]:
    """The filtered ledger as CSV lines (ids as text), newest first, at most EXPORT_LIMIT rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    before: int | None = None
    written = 0
    while written < EXPORT_LIMIT:
        page = transactions_page(conn, guild_id, flt, before, limit=min(5000, EXPORT_LIMIT - written))
        for row in page.rows:
            e = row.entry
            writer.writerow((
                e.id, e.created_at.isoformat(), format_snowflake(e.user_id), _csv_safe(row.member_name),
                e.amount, e.balance_after, e.kind, _csv_safe(e.reason), format_snowflake(e.actor_id) or "",
                e.source, "true" if e.silent else "false", format_snowflake(e.counterparty_id) or "",
                e.reverts_id or "", _csv_safe(e.actor),
            ))  # fmt: skip
        written += len(page.rows)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if page.next_before is None:
            break
        before = page.next_before


@dataclass(frozen=True)
class AuditRow:
    id: int
    actor_id: int | None
    actor_name: str
    action: str
    target: str
    before: Any
    after: Any
    created_at: datetime


def audit_actions(conn: psycopg.Connection, guild_id: int) -> list[str]:
    """The actions this guild's audit log holds, for the filter's list: a loose index scan of
    admin_audit_guild_action_idx (sql/057), one index probe per distinct action however many rows
    each has (checked by EXPLAIN in tests/integration/test_admin_audit.py)."""
    return [r[0] for r in conn.execute(AUDIT_ACTIONS, {"g": guild_id}).fetchall()]


AUDIT_ACTIONS = """
    WITH RECURSIVE found(action) AS (
        (SELECT action FROM admin_audit WHERE guild_id = %(g)s ORDER BY action LIMIT 1)
        UNION ALL
        SELECT (SELECT a.action FROM admin_audit a WHERE a.guild_id = %(g)s AND a.action > f.action
                ORDER BY a.action LIMIT 1)
        FROM found f WHERE f.action IS NOT NULL
    )
    SELECT action FROM found WHERE action IS NOT NULL
"""


def audit_page(
    conn: psycopg.Connection, guild_id: int, before: int | None = None, action: str = "", limit: int = PAGE
) -> tuple[list[AuditRow], int | None]:
    """A page of the guild's audit log, newest first, keyset-paged by id (`before`); with an
    action, a range of admin_audit_guild_action_idx (sql/057)."""
    where = "guild_id = %(g)s"
    params: dict[str, Any] = {"g": guild_id, "limit": limit + 1}
    if before is not None:
        where += " AND id < %(before)s"
        params["before"] = before
    if action:
        where += " AND action = %(action)s"
        params["action"] = action
    rows = conn.execute(
        f"SELECT id, actor_id, actor_name, action, target, before, after, created_at FROM admin_audit "
        f"WHERE {where} ORDER BY id DESC LIMIT %(limit)s",
        params,
    ).fetchall()
    shown = [AuditRow(*r) for r in rows[:limit]]
    return shown, (shown[-1].id if len(rows) > limit else None)


@dataclass(frozen=True)
class DmRow:
    id: int
    user_id: int
    member_name: str | None
    content: str
    reason: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    retried_as: int | None = None  # the DM queued when this failed one was retried


DM_STATUSES = ("queued", "sending", "sent", "failed")


def dm_page(
    conn: psycopg.Connection,
    guild_id: int,
    *,
    status: str = "",
    user_id: int | None = None,
    before: int | None = None,
    limit: int = PAGE,
) -> tuple[list[DmRow], int | None]:
    where = "d.guild_id = %(g)s"
    params: dict[str, Any] = {"g": guild_id, "limit": limit + 1}
    if status:
        if status not in DM_STATUSES:
            raise InvalidInput(f"Unknown DM status {status!r}.")
        where += " AND d.status = %(status)s"
        params["status"] = status
    if user_id is not None:
        where += " AND d.user_id = %(uid)s"
        params["uid"] = user_id
    if before is not None:
        where += " AND d.id < %(before)s"
        params["before"] = before
    rows = conn.execute(
        f"""
        SELECT d.id, d.user_id, coalesce(m.display_name, m.username), d.content, d.reason, d.status,
               d.attempts, d.last_error, d.created_at, d.sent_at,
               (SELECT r.id FROM direct_messages r WHERE r.guild_id = d.guild_id AND r.dedupe_key = 'retry:' || d.id)
        FROM direct_messages d
        LEFT JOIN members m ON m.guild_id = d.guild_id AND m.user_id = d.user_id
        WHERE {where} ORDER BY d.id DESC LIMIT %(limit)s
        """,
        params,
    ).fetchall()
    shown = [DmRow(*r) for r in rows[:limit]]
    return shown, (shown[-1].id if len(rows) > limit else None)


def member_names(conn: psycopg.Connection, guild_id: int, user_ids: list[int]) -> dict[int, str]:
    """Display names (or usernames) of some members, for lists that show ids."""
    if not user_ids:
        return {}
    rows = conn.execute(
        "SELECT user_id, coalesce(display_name, username) FROM members WHERE guild_id = %s AND user_id = ANY(%s)",
        (guild_id, list(user_ids)),
    ).fetchall()
    return {r[0]: r[1] for r in rows if r[1]}


def email_submissions_of(conn: psycopg.Connection, guild_id: int, user_id: int, limit: int = 20) -> list[Any]:
    from ..community.emails import _COLUMNS, _submission

    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM email_submissions WHERE guild_id = %s AND user_id = %s ORDER BY id DESC LIMIT %s",
        (guild_id, user_id, limit),
    ).fetchall()
    return [_submission(r) for r in rows]


def retry_failed_dms(
    conn: psycopg.Connection, guild_id: int, dm_ids: list[int] | None, *, created_by: int | None
) -> int:
    """Queue failed DMs again as new outbox rows (the failed ones stay, as history).

    Each retry is keyed on the failed DM's id, so retrying the same failure twice queues it
    once; the outbox applies its own rules (opt-out for automatic DMs, erased members).
    """
    from ..delivery import outbox

    params: dict[str, Any] = {"g": guild_id}
    where = "guild_id = %(g)s AND status = 'failed'"
    if dm_ids:
        where += " AND id = ANY(%(ids)s)"
        params["ids"] = dm_ids
    rows = conn.execute(
        f"SELECT id, user_id, content, reason FROM direct_messages WHERE {where} ORDER BY id LIMIT 1000",
        params,
    ).fetchall()
    queued = 0
    for dm_id, user_id, content, reason in rows:
        if outbox.enqueue_dm(conn, guild_id=guild_id, user_id=user_id, content=content, reason=reason,
                             dedupe_key=f"retry:{dm_id}", created_by=created_by) is not None:  # fmt: skip
            queued += 1
    return queued


def achievement_names(conn: psycopg.Connection, guild_id: int) -> list[tuple[int, str]]:
    """(id, name) of a guild's achievements, for a filter list (no holder counts: those cost)."""
    return [
        (r[0], r[1])
        for r in conn.execute(
            "SELECT id, name FROM achievements WHERE guild_id = %s ORDER BY lower(name), id", (guild_id,)
        ).fetchall()
    ]
