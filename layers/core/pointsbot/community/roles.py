"""Discord role grants and removals, exactly once: a `role_changes` row first, written in the
caller's transaction (`request_role_change`), then made by the worker (task "apply_role_changes")
with PUT or DELETE /guilds/{guild}/members/{user}/roles/{role} and an X-Audit-Log-Reason.

The worker works as the DM outbox does (delivery/outbox.py): a change is claimed by a state
change under FOR UPDATE SKIP LOCKED with a lease (`claimed_at` is the claim's token, a result
is written only while it still holds), so two workers or a redelivered task never make one
change twice; 429s wait their retry_after without using up a try; 5xx and network errors are
tried again with backoff, then the change is `failed`. One member's changes of one role are
made in the order they were asked for: a change is claimed only when no earlier change of the
same member and role is unfinished (a threshold's add, then its remove).

When Discord refuses for good (50013 missing permissions, 10011 unknown role, 10007 unknown
member, 10013 unknown user, ...), or the retries run out, the change ends `refused` or
`failed` and, IN THE SAME TRANSACTION, the handler registered for its source is called (the
store refunds the purchase). The change stays flagged for admins until one acknowledges it.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Literal

import psycopg
from aws_lambda_powertools.metrics import MetricUnit

from ..delivery.outbox import retry_delay_s
from ..discord.pacing import SharedPacer
from ..discord.permissions import ADMINISTRATOR, MANAGE_ROLES, parse_permissions
from ..platform.errors import IdempotencyConflict, InvalidInput
from ..platform.ids import format_snowflake
from ..platform.observability import logger, metrics
from ..platform.storable import check_text

if TYPE_CHECKING:
    from ..delivery.tasks import Task
    from ..platform.config import Settings

APPLY_TASK_KIND = "apply_role_changes"
Action = Literal["add", "remove"]
ACTIONS: tuple[str, ...] = ("add", "remove")

# Every source of role changes, and the module that registers the source's refusal handler when
# it is imported (None: nothing to undo beyond the admin flag). The worker imports every module
# named here before it makes any change (`load_refusal_handlers`), so a refusal can never find
# its handler missing because nobody had imported the module yet; a module named here that
# does not register its handler stops the worker with an error instead of skipping the undo.
# A new source is one line here.
SOURCES: dict[str, str | None] = {
    "purchase": "pointsbot.community.store",  # the store: refunds a purchase whose role Discord refused
    "threshold": None,  # a balance threshold reached (or left, for a remove)
    "achievement": None,  # an achievement that grants a role
    "season_prize": None,  # seasons: source_ref "<season id>:<user id>"
    "expiry": None,  # a timed grant ended: source_ref is the grant's change id
    "admin": None,  # an admin's own grant or removal
}

# Discord's answers that will not change by asking again. Any other 400, 403 or 404 is
# taken as final too; 401 (a bad token) and 5xx are ours or passing, and are tried again.
_REFUSALS: dict[int, str] = {
    50013: "the bot lacks permission to manage this role (it needs Manage Roles, and its own "
    "highest role must be above this one)",
    50001: "the bot has no access to this server",
    10011: "the role no longer exists in the server",
    10007: "the member is no longer in the server",
    10013: "the Discord user does not exist",
    10004: "the bot is not in this server",
    50035: "Discord did not accept the request",
}
MAX_ATTEMPTS = 8  # with backoff from DM_RETRY_BASE_S doubling to 15 minutes: about an hour
_MAX_RETRY_DELAY_S = 900
_DEADLINE_MARGIN_S = 20.0


@dataclass(frozen=True)
class RoleChange:
    id: int
    guild_id: int
    user_id: int
    role_id: int
    action: str  # "add" | "remove"
    source: str
    source_ref: str
    reason: str
    state: str  # pending | sending | done | refused | failed
    attempts: int
    expires_at: datetime | None
    claimed_at: datetime | None  # the worker's claim token
    error_code: int | None = None
    last_error: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None


RefusalHandler = Callable[[psycopg.Connection, RoleChange, str], None]
_handlers: dict[str, RefusalHandler] = {}


def register_refusal_handler(source: str, handler: RefusalHandler) -> None:
    """Call `handler(conn, change, reason)` in the transaction that marks a change of `source`
    refused or failed (`change.state` says which; `reason` is a plain sentence). It must not
    commit, and it runs once per change; if it raises, the change is tried again later."""
    if source not in SOURCES:
        raise ValueError(f"unknown role change source {source!r}: add it to roles.SOURCES")
    _handlers[source] = handler


def load_refusal_handlers() -> dict[str, RefusalHandler]:
    """Import every module SOURCES names, so each registers its handler; raise if one did not."""
    for source, module in SOURCES.items():
        if module is None:
            continue
        importlib.import_module(module)
        if source not in _handlers:
            raise RuntimeError(f"{module} did not register a refusal handler for {source!r}")
    return dict(_handlers)


# -- asking for a change ------------------------------------------------------------------------
def _check_id(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise InvalidInput(f"{what} must be a Discord id.")
    return value


def request_role_change(
    conn: psycopg.Connection,
    *,
    guild_id: int,
    user_id: int,
    role_id: int,
    action: Action,
    source: str,
    source_ref: str,
    reason: str,
    expires_at: datetime | None = None,
) -> int:
    """Record a role change in the caller's transaction and return its id.

    Idempotent on (guild_id, source, source_ref, action): asking again returns the same id and
    records nothing new (a different member or role under the same key is IdempotencyConflict).
    The member must exist (ledger.ensure_member). After COMMIT the caller calls
    `request_role_delivery()`; the keep-alive schedule asks again for anything left due.
    `expires_at` (adds only) makes a timed grant: the role is removed once it has passed.
    """
    _check_id(guild_id, "The server")
    _check_id(user_id, "The member")
    _check_id(role_id, "The role")
    if action not in ACTIONS:
        raise InvalidInput(f"A role change is 'add' or 'remove', not {action!r}.")
    if source not in SOURCES:
        raise InvalidInput(f"unknown role change source {source!r}")
    if not isinstance(source_ref, str) or not 1 <= len(source_ref) <= 200:
        raise InvalidInput("A role change's source_ref is 1 to 200 characters.")
    if expires_at is not None:
        if action != "add":
            raise InvalidInput("Only a role that is added can have an end.")
        if expires_at.tzinfo is None:
            raise InvalidInput("A role's end needs a time zone.")
    text = check_text(" ".join(str(reason).split())[:512], "The reason")
    row = conn.execute(
        """
        INSERT INTO role_changes (guild_id, user_id, role_id, action, source, source_ref, reason, expires_at)
        VALUES (%(guild_id)s, %(user_id)s, %(role_id)s, %(action)s, %(source)s, %(source_ref)s, %(reason)s,
                %(expires_at)s)
        ON CONFLICT (guild_id, source, source_ref, action) DO NOTHING
        RETURNING id
        """,
        {
            "guild_id": guild_id,
            "user_id": user_id,
            "role_id": role_id,
            "action": action,
            "source": source,
            "source_ref": source_ref,
            "reason": text,
            "expires_at": expires_at,
        },
    ).fetchone()
    if row is not None:
        return row[0]
    change_id, known_user, known_role = conn.execute(
        "SELECT id, user_id, role_id FROM role_changes "
        "WHERE guild_id = %s AND source = %s AND source_ref = %s AND action = %s",
        (guild_id, source, source_ref, action),
    ).fetchone()
    if (known_user, known_role) != (user_id, role_id):
        raise IdempotencyConflict(
            f"The role change {source}:{source_ref} ({action}) was asked for another member or role."
        )
    return change_id


def request_role_delivery(delay_seconds: int = 0) -> bool:
    """Ask the worker to make due role changes (an "apply_role_changes" task). Call after COMMIT.

    Never raises: the changes are safe in the database, and the keep-alive asks again for
    anything left due. Returns whether the task was sent.
    """
    from ..delivery.tasks import Task, get_task_queue

    try:
        get_task_queue().send(Task(APPLY_TASK_KIND, {}), delay_seconds=delay_seconds)
    except Exception:  # the caller's change is committed; it is asked for again later
        logger.warning("could not request role changes; the keep-alive will ask again", exc_info=True)
        return False
    return True


# A grant of the role to the member that still stands: an add (other than the one excluded) not
# refused or failed, not ended, and not followed by a removal of the same role.
_OTHER_LIVE_GRANT = """
SELECT EXISTS (
    SELECT 1 FROM role_changes g
    WHERE g.guild_id = %(guild_id)s AND g.user_id = %(user_id)s AND g.role_id = %(role_id)s
      AND g.action = 'add' AND g.state IN ('pending', 'sending', 'done')
      AND NOT (g.source = %(source)s AND g.source_ref = %(source_ref)s)
      AND (g.expires_at IS NULL OR g.expires_at > now())
      AND NOT EXISTS (
          SELECT 1 FROM role_changes r
          WHERE r.guild_id = g.guild_id AND r.user_id = g.user_id AND r.role_id = g.role_id
            AND r.action = 'remove' AND r.id > g.id AND r.state IN ('pending', 'sending', 'done')))
"""


def other_live_grant(
    conn: psycopg.Connection, guild_id: int, user_id: int, role_id: int, *, source: str, source_ref: str
) -> bool:
    """Whether the member holds the role through another grant than (source, source_ref): a
    timed grant's end or a threshold left then takes nothing away that something else gave."""
    params = {"guild_id": guild_id, "user_id": user_id, "role_id": role_id, "source": source,
              "source_ref": source_ref}  # fmt: skip
    return bool(conn.execute(_OTHER_LIVE_GRANT, params).fetchone()[0])


def end_expired_grants(conn: psycopg.Connection, limit: int = 500) -> int:
    """Ask for the removal of timed grants whose end has passed (the keep-alive schedule calls
    this every 5 minutes); returns how many removals were asked for. A grant whose role the
    member also holds through another live grant is closed without a removal (removal_id =
    its own id). Concurrent runs take different grants (SKIP LOCKED)."""
    rows = conn.execute(
        "SELECT id, guild_id, user_id, role_id, source, source_ref, reason FROM role_changes "
        "WHERE expires_at IS NOT NULL AND removal_id IS NULL AND expires_at <= now() "
        "AND state IN ('pending', 'sending', 'done') ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (limit,),
    ).fetchall()
    asked = 0
    for change_id, guild_id, user_id, role_id, source, source_ref, reason in rows:
        removal_id = change_id
        if not other_live_grant(conn, guild_id, user_id, role_id, source=source, source_ref=source_ref):
            removal_id = request_role_change(
                conn, guild_id=guild_id, user_id=user_id, role_id=role_id, action="remove", source="expiry",
                source_ref=str(change_id), reason=f"Timed role ended ({reason})" if reason else "Timed role ended",
            )  # fmt: skip
            asked += 1
        conn.execute("UPDATE role_changes SET removal_id = %s WHERE id = %s", (removal_id, change_id))
    # Refused or failed timed grants need no removal: close them too, so they are not looked at again.
    conn.execute(
        "UPDATE role_changes SET removal_id = id WHERE expires_at IS NOT NULL AND removal_id IS NULL "
        "AND expires_at <= now() AND state IN ('refused', 'failed')"
    )
    return asked


# -- the worker -------------------------------------------------------------------------------------
@dataclass
class ApplyReport:
    claimed: int = 0
    done: int = 0
    refused: int = 0
    failed: int = 0
    retried: int = 0
    stopped: str = ""  # "done", "budget"


_COLUMNS = (
    "c.id, c.guild_id, c.user_id, c.role_id, c.action, c.source, c.source_ref, c.reason, c.state, "
    "c.attempts, c.expires_at, c.claimed_at, c.error_code, c.last_error, c.created_at, c.finished_at"
)

_CLAIM = f"""
UPDATE role_changes c
SET state = 'sending', attempts = c.attempts + 1, claimed_at = clock_timestamp(),
    next_attempt_at = clock_timestamp() + make_interval(secs => %(lease)s)
FROM (
    SELECT q.id FROM role_changes q
    WHERE q.state IN ('pending', 'sending') AND q.next_attempt_at <= now()
      AND NOT EXISTS (
          SELECT 1 FROM role_changes earlier
          WHERE earlier.guild_id = q.guild_id AND earlier.user_id = q.user_id
            AND earlier.role_id = q.role_id AND earlier.id < q.id
            AND earlier.state IN ('pending', 'sending'))
    ORDER BY q.next_attempt_at, q.id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) due
WHERE c.id = due.id
RETURNING {_COLUMNS}
"""


def claim_due(conn: psycopg.Connection, limit: int, lease_s: int) -> list[RoleChange]:
    """Claim up to `limit` due changes (pending, or sending with an expired lease)."""
    rows = conn.execute(_CLAIM, {"limit": limit, "lease": lease_s}).fetchall()
    return sorted((RoleChange(*r) for r in rows), key=lambda change: change.id)


_HOLDS = "WHERE id = %(id)s AND state = 'sending' AND claimed_at = %(token)s"


def _mark_done(database, change: RoleChange) -> bool:
    return database.run(
        lambda conn: (
            conn.execute(
                "UPDATE role_changes SET state = 'done', claimed_at = NULL, finished_at = now(), "
                f"error_code = NULL, last_error = NULL {_HOLDS}",
                {"id": change.id, "token": change.claimed_at},
            ).rowcount
            == 1
        )
    )


def _retry_later(database, change: RoleChange, delay_s: float, error: str, code: int | None,
                 *, count_attempt: bool = True) -> None:  # fmt: skip
    database.run(
        lambda conn: conn.execute(
            "UPDATE role_changes SET state = 'pending', claimed_at = NULL, last_error = %(error)s, "
            "error_code = %(code)s, attempts = attempts - %(uncount)s, "
            f"next_attempt_at = clock_timestamp() + make_interval(secs => %(delay)s) {_HOLDS}",
            {
                "id": change.id,
                "token": change.claimed_at,
                "error": error[:500],
                "code": code,
                "delay": float(delay_s),
                "uncount": 0 if count_attempt else 1,
            },
        )
    )


def _end(conn: psycopg.Connection, change: RoleChange, state: str, code: int | None, reason: str,
         *, call_handler: bool = True) -> bool:  # fmt: skip
    """Mark the change refused or failed and call its source's handler, in one transaction."""
    row = conn.execute(
        "UPDATE role_changes SET state = %(state)s, claimed_at = NULL, finished_at = now(), "
        f"error_code = %(code)s, last_error = %(error)s {_HOLDS} RETURNING id",
        {"id": change.id, "token": change.claimed_at, "state": state, "code": code, "error": reason[:500]},
    ).fetchone()
    if row is None:
        return False  # the claim lapsed and another worker owns the change now
    handler = _handlers.get(change.source)
    if handler is not None and call_handler:
        handler(conn, replace(change, state=state, error_code=code, last_error=reason[:500]), reason)
    return True


def refusal_reason(code: int, status: int, message: str) -> str:
    """A plain sentence for a permanent refusal."""
    known = _REFUSALS.get(code)
    if known is not None:
        return f"Discord refused the role change: {known} ({code})."
    return f"Discord refused the role change: {message or 'HTTP ' + str(status)} ({code or status})."


def _is_refusal(exc) -> bool:
    return exc.code in _REFUSALS or exc.status in (400, 403, 404)


def apply_one(database, client, change: RoleChange, settings: Settings) -> str:
    """Make one claimed change and record the outcome: "done", "refused", "failed" or "retry"."""
    from ..discord.rest import DiscordError, DiscordUnavailable, RateLimited

    try:
        call = client.add_member_role if change.action == "add" else client.remove_member_role
        call(format_snowflake(change.guild_id), format_snowflake(change.user_id),
             format_snowflake(change.role_id), change.reason)  # fmt: skip
    except RateLimited as exc:
        # Not the change's fault: it does not use up a try.
        _retry_later(database, change, max(exc.retry_after, 0.5), str(exc), 429, count_attempt=False)
        return "retry"
    except DiscordUnavailable as exc:
        return _after_transient(database, change, settings, str(exc), exc.status)
    except DiscordError as exc:
        if _is_refusal(exc):
            return _finish(database, change, "refused", exc.code or exc.status,
                           refusal_reason(exc.code, exc.status, exc.message))  # fmt: skip
        return _after_transient(database, change, settings, str(exc), exc.code or exc.status)
    except Exception as exc:  # a bug or an unforeseen answer: retried, then failed, never lost
        logger.exception("role change failed unexpectedly", extra={"role_change_id": change.id})
        return _after_transient(database, change, settings, f"{type(exc).__name__}: {exc}", None)
    _mark_done(database, change)
    return "done"


def _finish(database, change: RoleChange, state: str, code: int | None, reason: str) -> str:
    try:
        database.run(_end, change, state, code, reason)
    except Exception as exc:  # the handler failed: nothing was written; try the change again later
        logger.exception("role change refusal handler failed", extra={"role_change_id": change.id})
        error = f"the {change.source} refusal handler failed: {type(exc).__name__}: {exc}"
        if change.attempts >= MAX_ATTEMPTS:
            # Given up: flagged for an admin, the handler (which keeps failing) not called.
            database.run(_end, change, "failed", code, error, call_handler=False)
            return "failed"
        _retry_later(database, change, retry_delay_s(change.attempts, 5), error, code)
        return "retry"
    return state


def _after_transient(database, change: RoleChange, settings: Settings, error: str, code: int | None) -> str:
    if change.attempts >= MAX_ATTEMPTS:
        return _finish(database, change, "failed", code,
                       f"Discord could not make the role change after {change.attempts} tries: {error}")  # fmt: skip
    _retry_later(database, change, retry_delay_s(change.attempts, settings.dm_retry_base_s), error, code)
    return "retry"


def apply_due(
    database,
    client=None,
    *,
    settings: Settings | None = None,
    budget_s: float | None = None,
    batch_size: int = 10,
) -> ApplyReport:
    """Make due role changes in batches until none is due or the budget is spent; then, if some
    wait for a later try, ask for a task at that time."""
    from ..delivery.tasks import time_left_s
    from ..discord.rest import get_client
    from ..platform.config import get_settings

    load_refusal_handlers()
    settings = settings or get_settings()
    client = client or get_client()
    budget = settings.dm_deliver_budget_s if budget_s is None else budget_s
    left = time_left_s()
    if left is not None:
        budget = min(budget, left - _DEADLINE_MARGIN_S)
    if getattr(client, "pacer", None) is None:
        # Role changes use the bot token: they draw on the budget every bot call shares.
        client = client.with_pacer(SharedPacer(database, float(settings.dm_rate_per_second)))
    report = ApplyReport()
    started = time.monotonic()
    while True:
        if time.monotonic() - started >= budget:
            report.stopped = "budget"
            break
        claimed = database.run(claim_due, batch_size, settings.dm_lease_s)
        if not claimed:
            report.stopped = "done"
            break
        report.claimed += len(claimed)
        for index, change in enumerate(claimed):
            if time.monotonic() - started >= budget:
                database.run(_release, claimed[index:])
                break
            outcome = apply_one(database, client, change, settings)
            if outcome == "retry":
                report.retried += 1
            else:
                setattr(report, outcome, getattr(report, outcome) + 1)
    if report.stopped == "budget":
        request_role_delivery()
    elif report.claimed:
        wait = database.run(_seconds_to_next_due)
        if wait is not None:
            request_role_delivery(delay_seconds=min(_MAX_RETRY_DELAY_S, max(0, math.ceil(wait))))
    metrics.add_metric(name="RoleChangesDone", unit=MetricUnit.Count, value=report.done)
    metrics.add_metric(name="RoleChangesRefused", unit=MetricUnit.Count, value=report.refused + report.failed)
    logger.info("role changes", extra={"report": report.__dict__})
    return report


def _release(conn: psycopg.Connection, changes: list[RoleChange]) -> None:
    """Hand claimed changes back untried: due at once, the claim's try not counted."""
    for change in changes:
        conn.execute(
            "UPDATE role_changes SET state = 'pending', claimed_at = NULL, next_attempt_at = now(), "
            "attempts = attempts - 1 WHERE id = %s AND state = 'sending' AND claimed_at = %s",
            (change.id, change.claimed_at),
        )


def _seconds_to_next_due(conn: psycopg.Connection) -> float | None:
    row = conn.execute(
        "SELECT extract(epoch FROM min(next_attempt_at) - now())::float8 FROM role_changes "
        "WHERE state IN ('pending', 'sending')"
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def due_count(conn: psycopg.Connection) -> int:
    """Role changes due now (the keep-alive asks for them: a lost task, a dead worker)."""
    return conn.execute(
        "SELECT count(*) FROM role_changes WHERE state IN ('pending', 'sending') AND next_attempt_at <= now()"
    ).fetchone()[0]


def apply_task(task: Task) -> None:
    """The worker's "apply_role_changes" task. Idempotent: it only makes what is due and claimed."""
    from ..platform.runtime import get_database

    apply_due(get_database())


# -- what admins see ----------------------------------------------------------------------------------
def get_change(conn: psycopg.Connection, change_id: int) -> RoleChange | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM role_changes c WHERE c.id = %s", (change_id,)).fetchone()
    return None if row is None else RoleChange(*row)


def member_changes(
    conn: psycopg.Connection, guild_id: int, user_id: int, limit: int = 50
) -> list[RoleChange]:
    """A member's role changes, newest first (the member's page)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM role_changes c WHERE c.guild_id = %s AND c.user_id = %s "
        "ORDER BY c.id DESC LIMIT %s",
        (guild_id, user_id, limit),
    ).fetchall()
    return [RoleChange(*r) for r in rows]


def unseen_refusals(conn: psycopg.Connection, guild_id: int, limit: int = 50) -> list[RoleChange]:
    """Refused and failed changes no admin has acknowledged yet, newest first (the flag)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM role_changes c WHERE c.guild_id = %s AND c.state IN ('refused', 'failed') "
        "AND c.acknowledged_at IS NULL ORDER BY c.id DESC LIMIT %s",
        (guild_id, limit),
    ).fetchall()
    return [RoleChange(*r) for r in rows]


def unseen_refusal_count(conn: psycopg.Connection, guild_id: int) -> int:
    return conn.execute(
        "SELECT count(*) FROM role_changes WHERE guild_id = %s AND state IN ('refused', 'failed') "
        "AND acknowledged_at IS NULL",
        (guild_id,),
    ).fetchone()[0]


def acknowledge(conn: psycopg.Connection, guild_id: int, change_id: int, actor_id: int | None) -> bool:
    """An admin has seen a refused or failed change: it leaves the flag."""
    return (
        conn.execute(
            "UPDATE role_changes SET acknowledged_at = now(), acknowledged_by = %s "
            "WHERE guild_id = %s AND id = %s AND state IN ('refused', 'failed') AND acknowledged_at IS NULL",
            (actor_id, guild_id, change_id),
        ).rowcount
        == 1
    )


# -- can the bot grant this role? ----------------------------------------------------------------------
@dataclass(frozen=True)
class GrantCheck:
    ok: bool
    reason: str  # a plain sentence: why not, or what will happen
    role_name: str = ""


def grant_check_from(
    guild_id: int, role_id: int, roles: list[dict], bot_role_ids: list[str] | list[int]
) -> GrantCheck:
    """Whether a bot holding `bot_role_ids` can give `role_id`, by Discord's rules: Manage Roles
    (or Administrator) from its roles, the role strictly below its highest role, not managed by
    an integration, not @everyone. `roles` is GET /guilds/{guild}/roles."""
    by_id = {str(r.get("id")): r for r in roles if isinstance(r, dict)}
    role = by_id.get(str(role_id))
    if role is None:
        return GrantCheck(False, f"There is no role with id {role_id} in this server.")
    name = str(role.get("name") or role_id)
    if str(role_id) == str(guild_id):
        return GrantCheck(False, "@everyone belongs to every member; it cannot be granted.", name)
    if role.get("managed"):
        return GrantCheck(
            False, f"The role {name} is managed by an integration (a bot or a subscription); "
            "no bot can give it to members.", name,
        )  # fmt: skip
    held = [by_id[str(r)] for r in bot_role_ids if str(r) in by_id]
    everyone = by_id.get(str(guild_id))
    bits = parse_permissions(everyone.get("permissions")) if everyone else 0
    for held_role in held:
        bits |= parse_permissions(held_role.get("permissions"))
    if not bits & (MANAGE_ROLES | ADMINISTRATOR):
        return GrantCheck(
            False, "The bot does not have the Manage Roles permission in this server; give one of "
            "its roles that permission in Server Settings > Roles.", name,
        )  # fmt: skip
    top = max(held, key=lambda r: (int(r.get("position") or 0), -int(r.get("id") or 0)), default=None)
    top_position = int(top.get("position") or 0) if top else 0
    if int(role.get("position") or 0) >= top_position:
        top_name = str(top.get("name")) if top else "@everyone"
        return GrantCheck(
            False, f"The role {name} is at or above the bot's highest role ({top_name}); in Server "
            f"Settings > Roles, drag the bot's role above {name}.", name,
        )  # fmt: skip
    return GrantCheck(True, f"The bot can give the role {name}.", name)


def bot_can_grant(client, guild_id: int, role_id: int, bot_user_id: int | str | None = None) -> GrantCheck:
    """Ask Discord (the guild's roles and the bot's member) whether the bot can give `role_id`;
    never raises, the reason says what is wrong in plain words. The bot's user id defaults to
    the application id (the same for every bot made since 2020)."""
    from ..discord.rest import DiscordError, DiscordUnavailable, RateLimited
    from ..platform.config import get_settings

    if bot_user_id is None:
        bot_user_id = get_settings().discord_application_id
    try:
        role_id = _check_id(role_id, "The role")
    except InvalidInput:
        return GrantCheck(False, "A role id is a Discord id: digits only.")
    try:
        roles = client.guild_roles(format_snowflake(guild_id))
        member = client.guild_member(format_snowflake(guild_id), str(bot_user_id))
    except DiscordError as exc:
        if exc.code in (10004, 50001, 10007):
            return GrantCheck(False, "The bot is not in this server (invite it again, with Manage Roles).")
        return GrantCheck(False, f"Discord would not show this server's roles ({exc.code or exc.status}): "
                                 f"{exc.message}")  # fmt: skip
    except (DiscordUnavailable, RateLimited):
        return GrantCheck(False, "Discord could not be reached to check the role; try again in a minute.")
    return grant_check_from(guild_id, role_id, roles or [], list((member or {}).get("roles") or []))
