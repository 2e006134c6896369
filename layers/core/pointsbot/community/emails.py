"""Email submissions: a member submits an address, an admin approves or rejects it.

One pending submission per member (a partial unique index). Approving sets the member's email,
may pay a bonus through the ledger (kind 'email_bonus', key f"email-bonus:{id}") and queues a
DM; rejecting queues a DM. All inside the caller's transaction; the caller asks for DM delivery
after COMMIT (outbox.request_delivery).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import errors as pg_errors

from ..ledger import page_count
from ..platform.config import Settings
from ..platform.errors import DomainError, InvalidInput, NotFound
from ..platform.paging import page_number

MAX_ADDRESS = 254
MAX_NOTE = 500
# Deliberately plain: one @, a dot in the domain, no spaces or brackets. Real validation is
# the admin's review; this catches typos a member would want pointed out.
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")  # fmt: skip


class AlreadyPending(DomainError):
    code = "email_pending"


class AlreadyReviewed(DomainError):
    code = "email_reviewed"


@dataclass(frozen=True)
class EmailSubmission:
    id: int
    guild_id: int
    user_id: int
    email: str
    status: str
    note: str
    submitted_at: datetime
    reviewed_at: datetime | None
    reviewed_by: int | None
    bonus_transaction_id: int | None


@dataclass(frozen=True)
class EmailPage:
    submissions: tuple[EmailSubmission, ...]
    page: int
    page_size: int
    total: int

    @property
    def pages(self) -> int:
        return page_count(self.total, self.page_size)


@dataclass(frozen=True)
class ReviewResult:
    submission: EmailSubmission
    bonus_entry_id: int | None
    dm_id: int | None
    replayed: bool = False


_COLUMNS = (
    "id, guild_id, user_id, email, status, note, submitted_at, reviewed_at, reviewed_by, bonus_transaction_id"
)


def validate_address(address: object) -> str:
    """A tidy address (domain lower-cased) or InvalidInput saying what is wrong."""
    if not isinstance(address, str) or not address.strip():
        raise InvalidInput("Please give an email address.")
    text = address.strip()
    if len(text) > MAX_ADDRESS:
        raise InvalidInput(f"That email address is too long (at most {MAX_ADDRESS} characters).")
    if not text.isascii() or not _ADDRESS.match(text) or ".." in text:
        raise InvalidInput("That does not look like an email address (like name@example.com).")
    local, domain = text.rsplit("@", 1)
    if len(local) > 64:
        raise InvalidInput("The part before the @ is too long.")
    return f"{local}@{domain.lower()}"


def _submission(row: tuple) -> EmailSubmission:
    return EmailSubmission(*row)


def submit(conn: psycopg.Connection, guild_id: int, user_id: int, address: str) -> EmailSubmission:
    """Record a pending submission; AlreadyPending when the member has one waiting."""
    from ..ledger import ensure_member

    email = validate_address(address)
    ensure_member(conn, guild_id, user_id)
    try:
        with conn.transaction():  # a savepoint: a concurrent twin loses cleanly
            row = conn.execute(
                f"INSERT INTO email_submissions (guild_id, user_id, email) VALUES (%s, %s, %s) "
                f"RETURNING {_COLUMNS}",
                (guild_id, user_id, email),
            ).fetchone()
    except pg_errors.UniqueViolation:
        waiting = pending_for(conn, guild_id, user_id)
        shown = waiting.email if waiting else "an address"
        raise AlreadyPending(
            f"You already have {shown} waiting for review; you can submit another once it is reviewed."
        ) from None
    return _submission(row)


def pending_for(conn: psycopg.Connection, guild_id: int, user_id: int) -> EmailSubmission | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM email_submissions WHERE guild_id = %s AND user_id = %s AND status = 'pending'",
        (guild_id, user_id),
    ).fetchone()
    return _submission(row) if row else None


def latest_for(conn: psycopg.Connection, guild_id: int, user_id: int) -> EmailSubmission | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM email_submissions WHERE guild_id = %s AND user_id = %s ORDER BY id DESC LIMIT 1",
        (guild_id, user_id),
    ).fetchone()
    return _submission(row) if row else None


def get(conn: psycopg.Connection, guild_id: int, submission_id: int) -> EmailSubmission | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM email_submissions WHERE guild_id = %s AND id = %s", (guild_id, submission_id)
    ).fetchone()
    return _submission(row) if row else None


def pending(conn: psycopg.Connection, guild_id: int, page: int = 1, page_size: int = 10) -> EmailPage:
    """Pending submissions of a guild, oldest first (first come, first reviewed)."""
    page = page_number(page)
    if not 1 <= page_size <= 100:
        raise InvalidInput("A page holds 1 to 100 rows.")
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM email_submissions WHERE guild_id = %s AND status = 'pending' "
        "ORDER BY submitted_at, id LIMIT %s OFFSET %s",
        (guild_id, page_size, (page - 1) * page_size),
    ).fetchall()
    total = conn.execute(
        "SELECT count(*) FROM email_submissions WHERE guild_id = %s AND status = 'pending'", (guild_id,)
    ).fetchone()[0]
    return EmailPage(tuple(_submission(r) for r in rows), page, page_size, total)


def _target(
    conn: psycopg.Connection, guild_id: int, submission_id: int | None, user_id: int | None
) -> EmailSubmission:
    """The pending submission to review, locked so two reviewers cannot both decide it."""
    if submission_id is None and user_id is None:
        raise InvalidInput("Say which submission (or which member's) to review.")
    if submission_id is not None:
        where, args = "id = %s", (guild_id, submission_id)
    else:
        where, args = "user_id = %s AND status = 'pending'", (guild_id, user_id)
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM email_submissions WHERE guild_id = %s AND {where} "
        "ORDER BY id DESC LIMIT 1 FOR UPDATE",
        args,
    ).fetchone()
    if row is None:
        if submission_id is not None:
            raise NotFound(f"There is no email submission #{submission_id} in this server.")
        raise NotFound("That member has no email submission waiting for review.")
    found = _submission(row)
    if found.status != "pending":
        raise AlreadyReviewed(f"Submission #{found.id} was already {found.status}.")
    return found


def _replay(conn: psycopg.Connection, guild_id: int, key: str | None, status: str) -> ReviewResult | None:
    if key is None:
        return None
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM email_submissions WHERE guild_id = %s AND review_key = %s", (guild_id, key)
    ).fetchone()
    if row is None:
        return None
    done = _submission(row)
    if done.status != status:
        from ..platform.errors import IdempotencyConflict

        raise IdempotencyConflict("This request was already made with different details.")
    return ReviewResult(done, done.bonus_transaction_id, None, replayed=True)


def _check_note(note: str | None) -> str:
    text = (note or "").strip()
    if len(text) > MAX_NOTE:
        raise InvalidInput(f"The note is too long (at most {MAX_NOTE} characters).")
    return text


def _decide(
    conn: psycopg.Connection, target: EmailSubmission, status: str, reviewer_id: int | None, note: str,
    key: str | None, bonus_entry_id: int | None,
) -> EmailSubmission:  # fmt: skip
    row = conn.execute(
        f"""
        UPDATE email_submissions SET status = %s, note = %s, reviewed_at = now(), reviewed_by = %s,
               review_key = %s, bonus_transaction_id = %s
        WHERE id = %s AND status = 'pending'
        RETURNING {_COLUMNS}
        """,
        (status, note, reviewer_id, key, bonus_entry_id, target.id),
    ).fetchone()
    return _submission(row)


def _server_translator(conn: psycopg.Connection, guild_id: int):  # -> Translator
    from ..platform.i18n import translator

    row = conn.execute("SELECT settings ->> 'locale' FROM guilds WHERE guild_id = %s", (guild_id,)).fetchone()
    return translator(row[0] if row else None)


def _queue_dm(conn: psycopg.Connection, submission: EmailSubmission, content: str) -> int | None:
    from ..delivery import outbox

    return outbox.enqueue_dm(
        conn,
        guild_id=submission.guild_id,
        user_id=submission.user_id,
        content=content,
        reason="email",
        dedupe_key=f"email-review:{submission.id}",
        created_by=submission.reviewed_by,
    )


def approve(
    conn: psycopg.Connection,
    *,
    guild_id: int,
    submission_id: int | None = None,
    user_id: int | None = None,
    reviewer_id: int | None,
    note: str | None = "",
    bonus_points: int = 0,
    idempotency_key: str | None = None,
    source: str = "slash",
    settings: Settings | None = None,
    reviewer_name: str = "",
) -> ReviewResult:
    """Approve a pending submission: the member's email is set, an optional bonus paid, a DM queued."""
    from . import points

    replay = _replay(conn, guild_id, idempotency_key, "approved")
    if replay is not None:
        return replay
    if isinstance(bonus_points, bool) or not isinstance(bonus_points, int) or bonus_points < 0:
        raise InvalidInput("The bonus must be a whole number, zero or above.")
    text = _check_note(note)
    target = _target(conn, guild_id, submission_id, user_id)
    bonus_entry_id = None
    if bonus_points:
        result = points.award(
            conn, guild_id=guild_id, user_id=target.user_id, amount=bonus_points,
            reason=f"Email {target.email} approved", actor_id=reviewer_id, actor_name=reviewer_name, source=source,
            idempotency_key=f"email-bonus:{target.id}", kind="email_bonus", settings=settings,
            silent=True,  # the approval DM below names the bonus; one DM, not two
        )  # fmt: skip
        bonus_entry_id = result.entry.id
    decided = _decide(conn, target, "approved", reviewer_id, text, idempotency_key, bonus_entry_id)
    conn.execute(
        "UPDATE members SET email = %s, updated_at = now() WHERE guild_id = %s AND user_id = %s",
        (decided.email, guild_id, decided.user_id),
    )
    from . import achievements

    # An "email approved" achievement is paid now, not at the next sweep.
    achievements.check_member(conn, guild_id, decided.user_id, kinds=("email_approved",), settings=settings)
    from ..ledger.guilds import guild_policy
    from ..platform.config import get_settings
    from ..platform.i18n import translator

    policy = guild_policy(conn, settings or get_settings(), guild_id)
    tr = translator(policy.locale)
    message = tr._("Your email address {email} was approved.", email=decided.email)
    if bonus_points:
        received = tr.points(bonus_points, policy.currency_name, policy.currency_one)
        message += " " + tr._("You received {amount}.", amount=received)
    if text:
        message += "\n" + tr._("Note from the admins: {note}", note=text)
    return ReviewResult(decided, bonus_entry_id, _queue_dm(conn, decided, message))


def reject(
    conn: psycopg.Connection,
    *,
    guild_id: int,
    submission_id: int | None = None,
    user_id: int | None = None,
    reviewer_id: int | None,
    note: str | None = "",
    idempotency_key: str | None = None,
) -> ReviewResult:
    """Reject a pending submission and queue a DM saying so (with the note, if any)."""
    replay = _replay(conn, guild_id, idempotency_key, "rejected")
    if replay is not None:
        return replay
    text = _check_note(note)
    target = _target(conn, guild_id, submission_id, user_id)
    decided = _decide(conn, target, "rejected", reviewer_id, text, idempotency_key, None)
    tr = _server_translator(conn, guild_id)
    message = tr._("Your email address {email} was not approved.", email=decided.email)
    message += (
        ("\n" + tr._("Note from the admins: {note}", note=text))
        if text
        else " " + tr._("You may submit another one.")
    )
    return ReviewResult(decided, None, _queue_dm(conn, decided, message))
