"""Member profiles: who a member is in a guild (names, email, notes, DM opt-out).

Recorded on contact (`remember`); searched, edited, created, exported and erased by the admin site.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psycopg

from ..ledger import ensure_member
from ..ledger.guilds import ensure_guild
from ..platform.amounts import check_in_range, parse_whole_number
from ..platform.errors import DomainError, InvalidInput, NotFound
from ..platform.ids import format_snowflake, parse_snowflake
from ..platform.paging import page_number
from ..platform.storable import check_one_line


def remember(
    conn: psycopg.Connection,
    guild_id: int,
    user_id: int,
    username: str | None = None,
    display_name: str | None = None,
    avatar: str | None = None,
) -> None:
    """Record a member on contact, keeping the names and picture (`avatar`, a CDN path, see
    community.profiles) Discord last showed us. One statement; see `remember_people`."""
    remember_people(conn, guild_id, [(user_id, username, display_name, avatar)])


Person = tuple[int, str | None, str | None, str | None]  # user id, username, display name, avatar


def remember_people(conn: psycopg.Connection, guild_id: int, people: Sequence[Person]) -> None:
    """Record the members of one interaction on contact (the caller, and the member a write
    names), each with the names and picture Discord last showed us.

    One statement (one round trip on every command, however many people): the guild row and the
    members' rows on first contact (as `ensure_guild` and `ensure_member` make them), the names
    of a new member with its row, and those of a known one by the UPDATE, which changes nothing
    when they are the same (the sub-statements see the same snapshot, so the UPDATE never sees a
    row the INSERT has just made). Rows are made in user id order, so two interactions meeting
    the same two new members cannot wait on each other crosswise. A person named twice counts
    once, with the names given last (or earlier ones where those are missing).
    """
    merged: dict[int, Person] = {}
    for user_id, username, display_name, avatar in people:
        seen = merged.get(user_id)
        if seen is not None:
            username, display_name, avatar = (username or seen[1], display_name or seen[2], avatar or seen[3])
        merged[user_id] = (user_id, username, display_name, avatar)
    rows = [merged[u] for u in sorted(merged)]
    if not rows:
        return
    conn.execute(
        """
        WITH i AS (
            SELECT * FROM unnest(%(u)s::bigint[], %(username)s::text[], %(display)s::text[], %(avatar)s::text[])
                AS i (u, username, display, avatar)
        ), g AS (
            INSERT INTO guilds (guild_id) VALUES (%(g)s) ON CONFLICT (guild_id) DO NOTHING
        ), m AS (
            INSERT INTO members (guild_id, user_id, username, display_name, avatar)
            SELECT %(g)s, u, username, display, avatar FROM i ORDER BY u ON CONFLICT DO NOTHING
        ), p AS (
            INSERT INTO points (guild_id, user_id) SELECT %(g)s, u FROM i ORDER BY u ON CONFLICT DO NOTHING
        ), s AS (
            INSERT INTO user_stats (guild_id, user_id) SELECT %(g)s, u FROM i ORDER BY u ON CONFLICT DO NOTHING
        )
        UPDATE members SET username = coalesce(i.username, members.username),
               display_name = coalesce(i.display, members.display_name),
               avatar = coalesce(i.avatar, members.avatar), updated_at = now()
        FROM i
        WHERE members.guild_id = %(g)s AND members.user_id = i.u
          AND (members.username IS DISTINCT FROM coalesce(i.username, members.username)
               OR members.display_name IS DISTINCT FROM coalesce(i.display, members.display_name)
               OR members.avatar IS DISTINCT FROM coalesce(i.avatar, members.avatar))
          AND members.erased_at IS NULL
        """,
        {
            "g": guild_id,
            "u": [r[0] for r in rows],
            "username": [r[1] for r in rows],
            "display": [r[2] for r in rows],
            "avatar": [r[3] for r in rows],
        },
    )


# -- the admin site's side: search, profile, edit, create, export, erase --------------------

EMAIL_STATUSES = ("pending", "approved", "rejected", "none")
SEARCH_PAGE = 50
MAX_SEARCH_PAGE = 1000
MAX_NAME = 100
MAX_NOTES = 4000


@dataclass(frozen=True)
class MemberQuery:
    """What the member search form asks for; every part is optional."""

    text: str = ""  # a Discord id, a name prefix, or an email prefix (contains @)
    min_balance: int | None = None
    max_balance: int | None = None
    achievement_id: int | None = None
    email_status: str = ""  # one of EMAIL_STATUSES or empty


@dataclass(frozen=True)
class MemberRow:
    user_id: int
    username: str | None
    display_name: str | None
    email: str | None
    balance: int
    erased: bool

    @property
    def label(self) -> str:
        return self.display_name or self.username or format_snowflake(self.user_id) or ""


@dataclass(frozen=True)
class SearchResult:
    rows: tuple[MemberRow, ...]
    page: int
    has_more: bool

    @property
    def next_after(self) -> str:
        """The keyset the Next link carries: "<balance>:<user id>" of the last row shown."""
        last = self.rows[-1] if self.rows else None
        return f"{last.balance}:{last.user_id}" if last else ""

    @property
    def previous_before(self) -> str:
        """The keyset the Previous link carries: the first row shown."""
        first = self.rows[0] if self.rows else None
        return f"{first.balance}:{first.user_id}" if first else ""


def parse_after(text: str | None) -> tuple[int, int] | None:
    """A Next or Previous link's keyset back into (balance, user id); nothing given is None."""
    if not text:
        return None
    balance, sep, user = text.partition(":")
    try:
        if not sep:
            raise InvalidInput("no separator")
        return check_in_range(parse_whole_number(balance, "balance")), parse_snowflake(user, "member id")
    except DomainError:
        raise InvalidInput("This page link is not one the site wrote; search again from the form.") from None


def _like_prefix(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _search_where(guild_id: int, query: MemberQuery) -> tuple[str, dict[str, Any], bool]:
    """The WHERE clause over points p (and members m), its parameters, and whether it reads a
    column of members (else it holds on points alone and members is joined for the page only)."""
    where = ["p.guild_id = %(g)s"]
    params: dict[str, Any] = {"g": guild_id}
    member_side = False
    text = query.text.strip()
    if text:
        id_like = text.isdigit() or (text.startswith("<@") and text.endswith(">"))
        if id_like:
            params["uid"] = parse_snowflake(text, "member id")
            where.append("p.user_id = %(uid)s")
        elif "@" in text:
            params["q"] = _like_prefix(text)
            where.append("lower(m.email) LIKE %(q)s")
            member_side = True
        else:
            params["q"] = _like_prefix(text)
            where.append("(lower(m.display_name) LIKE %(q)s OR lower(m.username) LIKE %(q)s)")
            member_side = True
    if query.min_balance is not None:
        params["minb"] = query.min_balance
        where.append("p.balance >= %(minb)s")
    if query.max_balance is not None:
        params["maxb"] = query.max_balance
        where.append("p.balance <= %(maxb)s")
    if query.achievement_id is not None:
        params["ach"] = query.achievement_id
        where.append(
            "EXISTS (SELECT 1 FROM member_achievements ma WHERE ma.guild_id = p.guild_id "
            "AND ma.user_id = p.user_id AND ma.achievement_id = %(ach)s)"
        )
    status = query.email_status
    if status:
        if status not in EMAIL_STATUSES:
            raise InvalidInput(f"Unknown email status {status!r}.")
        where.append(_EMAIL_STATUS_SQL[status])
        member_side = member_side or status != "pending"
    return " AND ".join(where), params, member_side


_EMAIL_STATUS_SQL = {
    # points.email_pending (kept by trigger, sql/044): the partial index points_email_pending_idx
    # lists exactly these members in leaderboard order, so a page is one short range of it.
    "pending": "p.email_pending",
    "approved": "m.email IS NOT NULL",
    "rejected": "m.email IS NULL AND EXISTS (SELECT 1 FROM email_submissions e WHERE e.guild_id = m.guild_id "
    "AND e.user_id = m.user_id AND e.status = 'rejected')",
    "none": "m.email IS NULL AND NOT EXISTS (SELECT 1 FROM email_submissions e "
    "WHERE e.guild_id = m.guild_id AND e.user_id = m.user_id)",
}


def _search_sql(
    guild_id: int,
    query: MemberQuery,
    page: int,
    after: tuple[int, int] | None,
    before: tuple[int, int] | None,
) -> tuple[str, dict[str, Any]]:
    """The statement `search` runs and its parameters (tests/integration/test_admin_search_and_figures.py
    reads its plans)."""
    where, params, member_side = _search_where(guild_id, query)
    params["limit"] = SEARCH_PAGE + 1
    source = "points p JOIN members m USING (guild_id, user_id)" if member_side else "points p"
    if before is not None:
        params["ab"], params["au"] = before
        found = f"""
            (SELECT p.user_id, p.balance FROM {source}
              WHERE {where} AND p.balance = %(ab)s AND p.user_id < %(au)s ORDER BY p.user_id DESC LIMIT %(limit)s)
            UNION ALL
            (SELECT p.user_id, p.balance FROM {source}
              WHERE {where} AND p.balance > %(ab)s ORDER BY p.balance, p.user_id DESC LIMIT %(limit)s)
            LIMIT %(short)s"""
        params["short"] = SEARCH_PAGE
    elif after is not None:
        params["ab"], params["au"] = after
        found = f"""
            (SELECT p.user_id, p.balance FROM {source}
              WHERE {where} AND p.balance = %(ab)s AND p.user_id > %(au)s ORDER BY p.user_id LIMIT %(limit)s)
            UNION ALL
            (SELECT p.user_id, p.balance FROM {source}
              WHERE {where} AND p.balance < %(ab)s ORDER BY p.balance DESC, p.user_id LIMIT %(limit)s)
            LIMIT %(limit)s"""
    else:
        params["offset"] = (page - 1) * SEARCH_PAGE
        found = f"""
            SELECT p.user_id, p.balance FROM {source} WHERE {where}
            ORDER BY p.balance DESC, p.user_id LIMIT %(limit)s OFFSET %(offset)s"""
    return (
        f"""
        SELECT m.user_id, m.username, m.display_name, m.email, k.balance, m.erased_at IS NOT NULL
        FROM ({found}) k
        JOIN members m ON m.guild_id = %(g)s AND m.user_id = k.user_id
        ORDER BY k.balance DESC, k.user_id
        """,
        params,
    )


def search(
    conn: psycopg.Connection,
    guild_id: int,
    query: MemberQuery,
    page: int = 1,
    after: tuple[int, int] | None = None,
    before: tuple[int, int] | None = None,
) -> SearchResult:
    """Members matching every given part of the query, highest balance first (ties by id).

    Names and emails match by prefix (an index range scan, fast at a million members). The
    page's rows are found on points first (with no filter or a balance range: a range of
    points_leaderboard_idx; "email pending": a range of points_email_pending_idx, which holds
    only the members with a submission waiting, so the page costs the same however few they
    are), and `members` is read for those rows only, unless a filter needs
    a member column (names, emails, approved/rejected/none). `after`
    (the balance and id of the last row of the page before, from the Next link) continues from
    there by keyset instead of skipping the rows before with OFFSET; it is labelled `page`.
    `before` (the first row of the page after, from the Previous link) is the page before it.
    A page number alone (a hand-written link) is found with OFFSET, over points_leaderboard_idx
    only when no filter reads a member column.
    """
    page = page_number(page, MAX_SEARCH_PAGE)  # deeper than this, narrow the search instead
    sql, params = _search_sql(guild_id, query, page, after, before)
    rows = conn.execute(sql, params).fetchall()
    if before is not None:  # the page before a row: there is more after it, that row
        return SearchResult(tuple(MemberRow(*r) for r in rows), page, True)
    found_rows = tuple(MemberRow(*r) for r in rows[:SEARCH_PAGE])
    return SearchResult(found_rows, page, len(rows) > SEARCH_PAGE)


MAX_AUDIENCE = 5000


def matching_ids(conn: psycopg.Connection, guild_id: int, query: MemberQuery) -> list[int]:
    """The ids of every (not erased) member matching `query`, for a DM to a filtered set."""
    where, params, _ = _search_where(guild_id, query)
    params["limit"] = MAX_AUDIENCE + 1
    rows = conn.execute(
        f"SELECT m.user_id FROM points p JOIN members m USING (guild_id, user_id) "
        f"WHERE {where} AND m.erased_at IS NULL ORDER BY m.user_id LIMIT %(limit)s",
        params,
    ).fetchall()
    if len(rows) > MAX_AUDIENCE:
        raise InvalidInput(f"More than {MAX_AUDIENCE:,} members match; narrow the filter.")
    return [r[0] for r in rows]


@dataclass(frozen=True)
class Member:
    guild_id: int
    user_id: int
    username: str | None
    display_name: str | None
    email: str | None
    notes: str
    dm_opt_out: bool
    joined_at: datetime
    updated_at: datetime
    erased_at: datetime | None

    @property
    def label(self) -> str:
        return self.display_name or self.username or format_snowflake(self.user_id) or ""

    def editable(self) -> dict[str, Any]:
        return {
            "display_name": self.display_name,
            "email": self.email,
            "notes": self.notes,
            "dm_opt_out": self.dm_opt_out,
        }


_MEMBER_COLUMNS = (
    "guild_id, user_id, username, display_name, email, notes, dm_opt_out, joined_at, updated_at, erased_at"
)


def get(conn: psycopg.Connection, guild_id: int, user_id: int, *, lock: bool = False) -> Member:
    row = conn.execute(
        f"SELECT {_MEMBER_COLUMNS} FROM members WHERE guild_id = %s AND user_id = %s"
        + (" FOR UPDATE" if lock else ""),
        (guild_id, user_id),
    ).fetchone()
    if row is None:
        raise NotFound(f"There is no member {user_id} in this server.")
    return Member(*row)


@dataclass(frozen=True)
class MemberStats:
    balance: int
    transaction_count: int
    total_earned: int
    total_spent: int
    last_transaction_at: datetime | None


def stats_of(conn: psycopg.Connection, guild_id: int, user_id: int) -> MemberStats:
    row = conn.execute(
        """
        SELECT coalesce(p.balance, 0), coalesce(s.transaction_count, 0), coalesce(s.total_earned, 0),
               coalesce(s.total_spent, 0), s.last_transaction_at
        FROM members m
        LEFT JOIN points p USING (guild_id, user_id)
        LEFT JOIN user_stats s USING (guild_id, user_id)
        WHERE m.guild_id = %s AND m.user_id = %s
        """,
        (guild_id, user_id),
    ).fetchone()
    return MemberStats(*row) if row else MemberStats(0, 0, 0, 0, None)


def _clean_email(value: str | None) -> str | None:
    text = (value or "").strip()
    if not text:
        return None
    local, _, domain = text.rpartition("@")
    if not local or "." not in domain or " " in text or len(text) > 254:
        raise InvalidInput(f"{text!r} does not look like an email address.")
    return text


def _clean_name(value: str | None) -> str | None:
    text = (value or "").strip()
    if len(text) > MAX_NAME:
        raise InvalidInput(f"A display name is at most {MAX_NAME} characters.")
    check_one_line(text, "The display name")
    return text or None


def update_profile(
    conn: psycopg.Connection, guild_id: int, user_id: int, changes: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Edit display name, email, notes and DM opt-out; returns (before, after) for the audit log."""
    member = get(conn, guild_id, user_id, lock=True)
    if member.erased_at is not None:
        raise InvalidInput("This member's personal data was erased; it cannot be edited.")
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "display_name":
            clean[key] = _clean_name(value)
        elif key == "email":
            clean[key] = _clean_email(value)
        elif key == "notes":
            text = (value or "").strip()
            if len(text) > MAX_NOTES:
                raise InvalidInput(f"Notes are at most {MAX_NOTES} characters.")
            clean[key] = text
        elif key == "dm_opt_out":
            clean[key] = bool(value)
        else:
            raise InvalidInput(f"{key!r} cannot be edited.")
    before = member.editable()
    after = {**before, **clean}
    if after != before:
        conn.execute(
            "UPDATE members SET display_name = %s, email = %s, notes = %s, dm_opt_out = %s, updated_at = now() "
            "WHERE guild_id = %s AND user_id = %s",
            (after["display_name"], after["email"], after["notes"], after["dm_opt_out"], guild_id, user_id),
        )
    return before, after


def create(conn: psycopg.Connection, guild_id: int, user_id: int, display_name: str | None = None) -> Member:
    """Add a member by Discord id before they have used any command."""
    ensure_guild(conn, guild_id)
    exists = conn.execute(
        "SELECT 1 FROM members WHERE guild_id = %s AND user_id = %s", (guild_id, user_id)
    ).fetchone()
    if exists:
        raise InvalidInput(f"Member {user_id} already exists in this server.")
    ensure_member(conn, guild_id, user_id)
    name = _clean_name(display_name)
    if name:
        conn.execute(
            "UPDATE members SET display_name = %s WHERE guild_id = %s AND user_id = %s",
            (name, guild_id, user_id),
        )
    return get(conn, guild_id, user_id)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def export(conn: psycopg.Connection, guild_id: int, user_id: int) -> dict[str, Any]:
    """Everything the bot holds about one member, as JSON-ready data (ids as strings)."""
    member = get(conn, guild_id, user_id)
    stats = stats_of(conn, guild_id, user_id)
    ids = ("guild_id", "user_id", "actor_id", "counterparty_id", "reviewed_by", "created_by", "role_id")

    def rows(sql: str) -> list[dict[str, Any]]:
        cur = conn.execute(sql, (guild_id, user_id))
        names = [d.name for d in cur.description]
        return [
            {n: (format_snowflake(v) if n in ids else _jsonable(v)) for n, v in zip(names, r, strict=True)}
            for r in cur.fetchall()
        ]

    profile = {k: (format_snowflake(v) if k in ids else _jsonable(v)) for k, v in asdict(member).items()}
    return {
        "member": profile,
        "balance": stats.balance,
        "stats": {k: _jsonable(v) for k, v in asdict(stats).items()},
        "transactions": rows(
            "SELECT id, amount, balance_after, kind, reason, actor_id, source, silent, counterparty_id, "
            "reverts_id, created_at FROM transactions WHERE guild_id = %s AND user_id = %s ORDER BY id"
        ),
        "achievements": rows(
            # The bonus paid (its entry), not the one defined: see achievements.earned_by.
            "SELECT a.name, a.description, coalesce(t.amount, 0) AS bonus_paid, ma.transaction_id, "
            "ma.earned_at FROM member_achievements ma JOIN achievements a ON a.id = ma.achievement_id "
            "LEFT JOIN transactions t ON t.id = ma.transaction_id "
            "WHERE ma.guild_id = %s AND ma.user_id = %s ORDER BY ma.earned_at"
        ),
        "email_submissions": rows(
            "SELECT id, email, status, note, submitted_at, reviewed_at, reviewed_by FROM email_submissions "
            "WHERE guild_id = %s AND user_id = %s ORDER BY id"
        ),
        "direct_messages": rows(
            "SELECT id, content, reason, status, last_error, created_at, sent_at FROM direct_messages "
            "WHERE guild_id = %s AND user_id = %s ORDER BY id"
        ),
        "purchases": rows(
            "SELECT p.id, p.reward_name, p.kind, p.price, p.state, p.note, p.expires_at, p.created_at, "
            "(SELECT c.code FROM reward_codes c WHERE c.purchase_id = p.id) AS code "
            "FROM purchases p WHERE p.guild_id = %s AND p.user_id = %s ORDER BY p.id"
        ),
        "role_changes": rows(
            "SELECT id, role_id, action, source, source_ref, reason, state, last_error, expires_at, created_at, "
            "finished_at FROM role_changes WHERE guild_id = %s AND user_id = %s ORDER BY id"
        ),
    }


ERASED = "[erased]"


def erase(conn: psycopg.Connection, guild_id: int, user_id: int) -> dict[str, Any]:
    """Remove a member's personal data; the ledger (amounts, balance) stays as it is.

    Names, email, notes, submitted addresses and DM texts go; the append-only ledger keeps
    its entries, since balances must still add up. Returns what was removed (for the audit
    log, which records that an erasure happened but not the data itself).
    """
    member = get(conn, guild_id, user_id, lock=True)
    if member.erased_at is not None:
        raise InvalidInput("This member's personal data was already erased.")
    conn.execute(
        "UPDATE members SET username = NULL, display_name = NULL, avatar = NULL, email = NULL, notes = '', "
        "dm_opt_out = TRUE, erased_at = now(), updated_at = now() WHERE guild_id = %s AND user_id = %s",
        (guild_id, user_id),
    )
    emails = conn.execute(
        "UPDATE email_submissions SET email = %s, note = '' WHERE guild_id = %s AND user_id = %s",
        (ERASED, guild_id, user_id),
    ).rowcount
    # Pending DMs are not sent any more; sent ones keep their status but lose their text.
    dms = conn.execute(
        "UPDATE direct_messages SET content = %s, status = CASE WHEN status IN ('queued', 'sending') "
        "THEN 'failed' ELSE status END, last_error = CASE WHEN status IN ('queued', 'sending') "
        "THEN 'member erased' ELSE last_error END WHERE guild_id = %s AND user_id = %s",
        (ERASED, guild_id, user_id),
    ).rowcount
    return {"profile_fields": 4, "email_submissions": emails, "direct_messages": dms}
