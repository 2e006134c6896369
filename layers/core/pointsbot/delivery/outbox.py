"""The DM outbox: every direct message is a `direct_messages` row first, delivered later.

`enqueue_dm` writes the row inside the caller's transaction; after COMMIT the caller calls
`request_delivery()`, which asks the worker (task "deliver_dms") to deliver what is due.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from aws_lambda_powertools.metrics import MetricUnit

from ..discord.pacing import SharedPacer, booked_ahead_s
from ..discord.pacing import reserve_slots as reserve_slots  # the bucket's own call, named here too
from ..platform.errors import InvalidInput
from ..platform.i18n import N_
from ..platform.ids import format_snowflake
from ..platform.observability import logger, metrics
from ..platform.storable import check_text

if TYPE_CHECKING:
    from ..platform.config import Settings
    from .tasks import Task

REASONS = ("admin", "points", "email", "achievement", "store", "season")
# Discord refuses message content over 2000 characters.
MAX_CONTENT = 2000
DELIVER_TASK_KIND = "deliver_dms"


def check_content(content: object) -> str:
    """A DM's text, stripped, or InvalidInput: empty, too long, or not storable."""
    if not isinstance(content, str) or not content.strip():
        raise InvalidInput("The message is empty.")
    text = content.strip()
    if len(text) > MAX_CONTENT:
        raise InvalidInput(f"The message is too long (at most {MAX_CONTENT} characters).")
    return check_text(text, "The message")


def enqueue_dm(
    conn: psycopg.Connection,
    *,
    guild_id: int,
    user_id: int,
    content: str,
    reason: str,
    dedupe_key: str | None = None,
    created_by: int | None = None,
) -> int | None:
    """Queue a DM in the caller's transaction; returns its id.

    None when nothing was queued: the member opted out of automatic DMs (every reason but
    'admin'), the member is erased or unknown, or `dedupe_key` was queued before.
    The caller calls `request_delivery()` after its transaction commits.
    """
    if reason not in REASONS:
        raise InvalidInput(f"unknown DM reason {reason!r}")
    text = check_content(content)
    if dedupe_key is not None and (not dedupe_key or len(dedupe_key) > 200):
        raise InvalidInput("A DM dedupe key is 1 to 200 characters.")
    row = conn.execute(
        """
        INSERT INTO direct_messages (guild_id, user_id, content, reason, dedupe_key, created_by)
        SELECT m.guild_id, m.user_id, %(content)s, %(reason)s, %(dedupe_key)s, %(created_by)s
        FROM members m
        WHERE m.guild_id = %(guild_id)s AND m.user_id = %(user_id)s
          AND m.erased_at IS NULL
          AND (%(reason)s = 'admin' OR NOT m.dm_opt_out)
        ON CONFLICT (guild_id, dedupe_key) DO NOTHING
        RETURNING id
        """,
        {
            "guild_id": guild_id,
            "user_id": user_id,
            "content": text,
            "reason": reason,
            "dedupe_key": dedupe_key,
            "created_by": created_by,
        },
    ).fetchone()
    return None if row is None else row[0]


def request_delivery(delay_seconds: int = 0) -> bool:
    """Ask the worker to deliver due DMs (a "deliver_dms" task). Call after COMMIT.

    Never raises: the DM rows are safe in the database whatever happens here, and the
    keep-alive schedule asks again for anything left due. Returns whether the task was sent.
    """
    from .tasks import Task, get_task_queue

    try:
        get_task_queue().send(Task(DELIVER_TASK_KIND, {}), delay_seconds=delay_seconds)
    except Exception:  # the caller's change is committed; delivery is asked for again later
        logger.warning("could not request DM delivery; the keep-alive will ask again", exc_info=True)
        return False
    return True


# -- delivery (the worker's "deliver_dms" task) ------------------------------------------------
# How it keeps within Discord's limits: before each request the REST client reserves a slot in one
# shared token bucket in the database (discord/pacing.py: dm_pacer, GCRA: a "theoretical arrival time" moved on by
# 1 / rate per slot), so any number of concurrent workers together make at most
# DM_RATE_PER_SECOND requests per second, evenly spaced; the REST client honours per-route
# buckets from the X-RateLimit-* headers and waits out a 429's retry_after. A row is claimed
# by a status change under FOR UPDATE SKIP LOCKED (two workers never take the same row) with a
# lease: a claimed row whose worker died becomes due again when the lease ends.
#
# A recipient's DMs belong to one worker at a time: a claim skips every recipient who has a DM
# in flight (status 'sending' with a lease still running), and claims take turns (a transaction
# advisory lock, held only for the claim's one statement), so two claims can never both see a
# recipient free. The worker that owns a recipient opens their DM channel at most once and
# remembers it in dm_channels before anyone else may claim their next DM; concurrent delivery
# tasks therefore open each channel once, and a recipient's DMs go out in order. A row
# locked under SKIP LOCKED alone could not give this: it locks rows, not recipients.

# A worker that finds the bucket booked this far ahead leaves the work to the one booking it.
_BUSY_AHEAD_S = 2.0
_MAX_RETRY_DELAY_S = 900
_DEADLINE_MARGIN_S = 20.0


@dataclass(frozen=True)
class ClaimedDM:
    id: int
    guild_id: int
    user_id: int
    content: str
    reason: str
    attempts: int
    claimed_at: datetime  # this claim's token: results are written only while it still holds
    channel_id: int | None  # the member's DM channel, if known
    blocked: str | None  # why it must not be sent any more (member erased or opted out)
    # The server it comes from, read with the claim: {"name", "icon", "accent", "locale"}
    guild: dict[str, Any] | None = None


@dataclass
class DeliveryReport:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    requests: int = 0
    stopped: str = ""  # "done", "busy", "budget"


# Any constant will do; every claimer of the outbox takes the same one (migrate.py has ...001).
_CLAIM_LOCK = 7_240_519_002

_CLAIM = """
UPDATE direct_messages d
SET status = 'sending', attempts = d.attempts + 1, claimed_at = clock_timestamp(),
    next_attempt_at = clock_timestamp() + make_interval(secs => %(lease)s)
FROM (
    SELECT q.id FROM direct_messages q
    WHERE q.status IN ('queued', 'sending') AND q.next_attempt_at <= now()
      AND NOT EXISTS (
          SELECT 1 FROM direct_messages busy
          WHERE busy.user_id = q.user_id AND busy.status = 'sending'
            AND busy.next_attempt_at > now())
    ORDER BY q.next_attempt_at, q.id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) due
WHERE d.id = due.id
RETURNING d.id, d.guild_id, d.user_id, d.content, d.reason, d.attempts, d.claimed_at,
    (SELECT c.channel_id FROM dm_channels c WHERE c.user_id = d.user_id),
    (SELECT CASE WHEN m.erased_at IS NOT NULL THEN 'member erased'
                 WHEN m.dm_opt_out AND d.reason <> 'admin' THEN 'member opted out of DMs' END
     FROM members m WHERE m.guild_id = d.guild_id AND m.user_id = d.user_id),
    (SELECT jsonb_build_object('name', g.name, 'icon', g.icon, 'accent', g.settings -> 'accent_color',
                               'locale', g.settings ->> 'locale')
     FROM guilds g WHERE g.guild_id = d.guild_id)
"""


def claim_due(conn: psycopg.Connection, limit: int, lease_s: int) -> list[ClaimedDM]:
    """Claim up to `limit` due DMs (queued, or sending with an expired lease) for this worker,
    of recipients no other worker has a DM in flight to (see above)."""
    # Waits for a claim under way to commit, so this statement's snapshot sees its rows in flight.
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CLAIM_LOCK,))
    rows = conn.execute(_CLAIM, {"limit": limit, "lease": lease_s}).fetchall()
    return sorted((ClaimedDM(*r) for r in rows), key=lambda dm: dm.id)


def _finish_sql(status: str) -> str:
    return f"""
    UPDATE direct_messages SET status = '{status}', last_error = %(error)s, claimed_at = NULL,
        discord_message_id = coalesce(%(message_id)s, discord_message_id),
        sent_at = CASE WHEN '{status}' = 'sent' THEN now() ELSE sent_at END
    WHERE id = %(id)s AND status = 'sending' AND claimed_at = %(token)s
    """


def _mark(
    database, dm: ClaimedDM, status: str, *, error: str | None = None, message_id: int | None = None
) -> None:
    database.run(
        lambda conn: conn.execute(
            _finish_sql(status),
            {"id": dm.id, "token": dm.claimed_at, "error": error, "message_id": message_id},
        )
    )


def _retry_later(database, dm: ClaimedDM, delay_s: float, error: str, *, count_attempt: bool = True) -> None:
    database.run(
        lambda conn: conn.execute(
            """
            UPDATE direct_messages SET status = 'queued', last_error = %(error)s, claimed_at = NULL,
                next_attempt_at = clock_timestamp() + make_interval(secs => %(delay)s),
                attempts = attempts - %(uncount)s
            WHERE id = %(id)s AND status = 'sending' AND claimed_at = %(token)s
            """,
            {
                "id": dm.id,
                "token": dm.claimed_at,
                "error": error[:500],
                "delay": float(delay_s),
                "uncount": 0 if count_attempt else 1,
            },
        )
    )


def _release(conn: psycopg.Connection, dms: list[ClaimedDM]) -> None:
    """Hand claimed DMs back untried: due at once, the claim's try not counted."""
    for dm in dms:
        conn.execute(
            "UPDATE direct_messages SET status = 'queued', claimed_at = NULL, next_attempt_at = now(), "
            "attempts = attempts - 1 WHERE id = %s AND status = 'sending' AND claimed_at = %s",
            (dm.id, dm.claimed_at),
        )


def retry_delay_s(attempts: int, base_s: int) -> float:
    """Exponential backoff with jitter: base, 2 x base, 4 x base ... at most 15 minutes."""
    delay = min(_MAX_RETRY_DELAY_S, base_s * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.8, 1.0)  # noqa: S311 - jitter only


def _remember_channel(database, user_id: int, channel_id: int) -> None:
    database.run(
        lambda conn: conn.execute(
            "INSERT INTO dm_channels (user_id, channel_id) VALUES (%s, %s) "
            "ON CONFLICT (user_id) DO UPDATE SET channel_id = EXCLUDED.channel_id, created_at = now()",
            (user_id, channel_id),
        )
    )


def _forget_channel(database, user_id: int) -> None:
    database.run(lambda conn: conn.execute("DELETE FROM dm_channels WHERE user_id = %s", (user_id,)))


def _known_channel(conn: psycopg.Connection, user_id: int) -> int | None:
    row = conn.execute("SELECT channel_id FROM dm_channels WHERE user_id = %s", (user_id,)).fetchone()
    return None if row is None else row[0]


def deliver_one(
    database,
    client,
    dm: ClaimedDM,
    settings: Settings,
    report: DeliveryReport,
    channels: dict[int, int] | None = None,
) -> str:
    """Send one claimed DM and record the outcome; returns "sent", "failed" or "retry".

    `channels` (user id -> DM channel id) is shared by every DM of one delivery run: the claim
    reads `dm_channels` once for the whole batch, so without it a member with several DMs in a
    batch would get their channel opened once per DM.
    """
    from ..discord.rest import CannotDmUser, DiscordError, DiscordUnavailable, RateLimited

    if channels is None:
        channels = {}
    if dm.blocked:
        _mark(database, dm, "failed", error=dm.blocked)
        return "failed"
    opened_now = False
    try:
        channel_id = channels.get(dm.user_id) or dm.channel_id
        if channel_id is None:
            # Another worker may have opened it since this batch was claimed.
            channel_id = database.run(_known_channel, dm.user_id)
        if channel_id is None:
            report.requests += 1
            channel_id = int(client.create_dm(format_snowflake(dm.user_id)))
            opened_now = True
            _remember_channel(database, dm.user_id, channel_id)
        channels[dm.user_id] = channel_id
        report.requests += 1
        message = client.send_message(format_snowflake(channel_id), dm_body(dm))
    except CannotDmUser as exc:
        _mark(database, dm, "failed", error=f"50007: {exc.message}"[:500])
        return "failed"
    except RateLimited as exc:
        # Not the DM's fault: it does not use up a try.
        _retry_later(database, dm, max(exc.retry_after, 0.5), str(exc), count_attempt=False)
        return "retry"
    except DiscordUnavailable as exc:
        return _after_transient(database, dm, settings, str(exc))
    except DiscordError as exc:
        if exc.code == 10003 and not opened_now and channels.get(dm.user_id) is not None:
            # Unknown channel: the remembered DM channel is gone; open a new one next time.
            channels.pop(dm.user_id, None)
            _forget_channel(database, dm.user_id)
            _retry_later(database, dm, 0, str(exc), count_attempt=False)
            return "retry"
        # Any other refusal (unknown user, missing access, bad request) will not change by trying again.
        _mark(database, dm, "failed", error=f"{exc.code or exc.status}: {exc.message}"[:500])
        return "failed"
    except Exception as exc:  # a bug or an unforeseen answer: retried, then failed, never lost
        logger.exception("DM delivery failed unexpectedly", extra={"dm_id": dm.id})
        return _after_transient(database, dm, settings, f"{type(exc).__name__}: {exc}")
    message_id = message.get("id") if isinstance(message, dict) else None
    _mark(database, dm, "sent", message_id=int(message_id) if message_id else None)
    return "sent"


DM_TITLES = {  # reason -> (emoji, title); the titles are translated where the card is built
    "points": ("💰", N_("Points")),
    "achievement": ("🎖️", N_("Achievement")),
    "email": ("✉️", N_("Email review")),
    "store": ("🛒", N_("Store")),
    "season": ("🏁", N_("Season")),
    "admin": ("📣", N_("Message from the admins")),
}


def dm_body(dm: ClaimedDM) -> dict[str, Any]:
    """The body of POST /channels/{dm channel}/messages for a DM: a Components V2 card in the
    answers' style (discord/cards.py) naming the server it comes from (its icon beside the
    title, its name at the foot, its accent colour), in the server's language. The stored text
    is the card's body. With IS_COMPONENTS_V2 Discord takes no `content`, so there is none.
    The nonce is the row's: Discord drops a second message with the same nonce from the same
    author for a few minutes, so a DM re-sent after a lost answer or an expired lease is not
    doubled (the outbox's exactly-once, with the claim's token)."""
    from ..discord import cards
    from ..platform.i18n import translator

    guild = dm.guild or {}
    tr = translator(guild.get("locale") if isinstance(guild.get("locale"), str) else None)
    accent = guild.get("accent")
    card = cards.Card(
        accent=accent if isinstance(accent, int) and 0 <= accent <= 0xFFFFFF else cards.DEFAULT_ACCENT
    )
    emoji, title = DM_TITLES.get(dm.reason, ("📣", DM_TITLES["admin"][1]))
    name = guild.get("name") if isinstance(guild.get("name"), str) and guild["name"].strip() else None
    icon = guild.get("icon") if isinstance(guild.get("icon"), str) else None
    card.header(f"### {emoji} " + tr._(title), dm.content,
                avatar=cards.guild_icon_url(icon) if icon else None, alt=name)  # fmt: skip
    card.separator(divider=False).text(
        "-# " + (tr._("From the server **{server}**", server=cards.escape_markdown(name)) if name
                 else tr._("From a server you share with this bot"))
    )  # fmt: skip
    components, _text = card.build()
    return {
        "flags": cards.IS_COMPONENTS_V2,
        "components": list(components),
        "allowed_mentions": {"parse": []},
        "nonce": f"pbdm{dm.id}"[:25],
        "enforce_nonce": True,
    }


def _after_transient(database, dm: ClaimedDM, settings: Settings, error: str) -> str:
    if dm.attempts >= settings.dm_max_attempts:
        _mark(database, dm, "failed", error=f"gave up after {dm.attempts} tries: {error}"[:500])
        return "failed"
    _retry_later(database, dm, retry_delay_s(dm.attempts, settings.dm_retry_base_s), error)
    return "retry"


def deliver_due(
    database,
    client=None,
    *,
    settings: Settings | None = None,
    budget_s: float | None = None,
    batch_size: int | None = None,
) -> DeliveryReport:
    """Deliver due DMs in batches until none is due, another worker is busy, or the budget is
    spent. Then, if DMs wait for a later try, ask for a delivery task at that time."""
    from ..discord.rest import get_client
    from ..platform.config import get_settings

    settings = settings or get_settings()
    client = client or get_client()
    rate = float(settings.dm_rate_per_second)
    budget = settings.dm_deliver_budget_s if budget_s is None else budget_s
    from .tasks import time_left_s

    left = time_left_s()
    if left is not None:
        # Leave room for a last batch and the HTTP timeouts in it before Lambda's limit.
        budget = min(budget, left - _DEADLINE_MARGIN_S)
    # About one second of requests per batch: short claims, and a dead worker strands few rows.
    batch = batch_size or max(1, int(rate // 2))
    report = DeliveryReport()
    if getattr(client, "pacer", None) is None:
        # A client made without one (tests, benches): pace it against the same bucket.
        client = client.with_pacer(SharedPacer(database, rate))
    channels: dict[int, int] = {}  # user id -> DM channel, opened or learnt during this run
    started = time.monotonic()
    while True:
        if time.monotonic() - started >= budget:
            report.stopped = "budget"
            break
        if database.run(booked_ahead_s) > _BUSY_AHEAD_S:
            # Another worker holds the bucket and claims again after its batch, so it will see
            # every row that is due now.
            report.stopped = "busy"
            break
        claimed = database.run(claim_due, batch, settings.dm_lease_s)
        if not claimed:
            report.stopped = "done"
            break
        report.claimed += len(claimed)
        for index, dm in enumerate(claimed):
            if time.monotonic() - started >= budget:
                # Out of time mid-batch: give the rest back now rather than at the lease's end.
                database.run(_release, claimed[index:])
                break
            outcome = deliver_one(database, client, dm, settings, report, channels)
            if outcome == "sent":
                report.sent += 1
            elif outcome == "failed":
                report.failed += 1
            else:
                report.retried += 1
    if report.stopped == "budget":
        request_delivery()
    elif report.claimed:
        # Some DMs may wait for a retry later; one delayed task picks them up (SQS delays up
        # to 15 minutes; the keep-alive asks again for anything later than that).
        wait = database.run(_seconds_to_next_due)
        if wait is not None:
            request_delivery(delay_seconds=min(_MAX_RETRY_DELAY_S, max(0, math.ceil(wait))))
    metrics.add_metric(name="DmsSent", unit=MetricUnit.Count, value=report.sent)
    metrics.add_metric(name="DmsFailed", unit=MetricUnit.Count, value=report.failed)
    logger.info("DM delivery", extra={"report": report.__dict__})
    return report


def _seconds_to_next_due(conn: psycopg.Connection) -> float | None:
    row = conn.execute(
        "SELECT extract(epoch FROM min(next_attempt_at) - now())::float8 FROM direct_messages "
        "WHERE status IN ('queued', 'sending')"
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def due_count(conn: psycopg.Connection) -> int:
    """DMs due now (the keep-alive asks for delivery when some are: a lost task, a dead worker)."""
    return conn.execute(
        "SELECT count(*) FROM direct_messages WHERE status IN ('queued', 'sending') AND next_attempt_at <= now()"
    ).fetchone()[0]


def deliver_task(task: Task) -> None:
    """The worker's "deliver_dms" task. Idempotent: it only delivers what is due and claimed."""
    from ..platform.runtime import get_database

    deliver_due(get_database())
