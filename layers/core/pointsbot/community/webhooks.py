"""Outbound webhooks: a guild's endpoints, the events they get, and their delivery.

The outbox rows (webhook_deliveries) are written by triggers in the transaction that makes the
event (sql/052: entries, achievements earned, purchases, a season's end), one per event and
enabled endpoint that wants it. The worker's "deliver_webhooks" task claims due rows, builds
each event's body from the row's snapshot, signs it (`Pointsbot-Signature: t=<unix>,v1=<hex
HMAC-SHA256 of "<t>.<body>">`), checks the URL again and POSTs it to the checked address
(delivery.webhook_http), and records the answer: delivered on a 2xx; otherwise retried with
exponential backoff (WEBHOOK_RETRY_BASE_S doubling up to WEBHOOK_RETRY_MAX_S) until
WEBHOOK_RETRY_HOURS after it was queued, then failed. WEBHOOK_DISABLE_AFTER failed attempts
in a row switch the endpoint off, flagged on the admin site and written to the audit log.
"""

from __future__ import annotations

import json
import secrets as _secrets
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from ..delivery import webhook_http
from ..delivery.webhook_http import Target, UnsafeURL, check_url
from ..ledger import LedgerEntry, entry_json
from ..platform.config import Settings, get_settings
from ..platform.errors import InvalidInput, NotFound
from ..platform.ids import format_snowflake
from ..platform.observability import logger
from ..platform.storable import check_text
from . import audit, store

EVENTS: dict[str, str] = {
    "entry.created": "A ledger entry was made (an award, a deduction, a set, a transfer, a bonus, a purchase, "
    "a refund, a season prize).",
    "entry.reverted": "An entry was undone: the new entry of kind revert (reverts_id names the undone one).",
    "achievement.earned": "A member earned an achievement.",
    "purchase.created": "A member bought a reward in the store.",
    "purchase.refunded": "A purchase was refunded (its points given back).",
    "purchase.fulfilled": "An admin marked a purchase fulfilled.",
    "season.ended": "A season's end is done: standings archived, prizes given, balances reset if it said so.",
}
DELIVER_TASK_KIND = "deliver_webhooks"
MAX_WEBHOOKS = 10  # per guild
MAX_DESCRIPTION = 200
USER_AGENT = "pointsbot-webhooks/1"
CLAIM_BATCH = 32
CONCURRENCY = 8  # POSTs in flight at once per task
LEASE_S = 120  # a claimed row whose worker died is due again after this
_BUDGET_S = 60.0


@dataclass(frozen=True)
class Webhook:
    id: int
    guild_id: int
    url: str
    description: str
    events: tuple[str, ...]
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    failures_in_row: int
    last_success_at: datetime | None
    last_failure_at: datetime | None
    created_by: str
    created_at: datetime
    secret_hint: str  # "whsec_abcd…": enough to tell secrets apart, nothing to sign with

    def as_dict(self) -> dict[str, Any]:
        """For the audit log (no secret)."""
        return {"id": str(self.id), "url": self.url, "description": self.description, "events": list(self.events),
                "enabled": self.enabled}  # fmt: skip


_COLUMNS = (
    "id, guild_id, url, description, events, enabled, disabled_reason, disabled_at, failures_in_row, "
    "last_success_at, last_failure_at, created_by, created_at, left(secret, 10) || '…'"
)


def _webhook(row: tuple) -> Webhook:
    return Webhook(*row[:4], tuple(row[4]), *row[5:])


@dataclass(frozen=True)
class Delivery:
    id: int
    webhook_id: int
    event_id: str  # "evt_<32 hex>"
    event_type: str
    event_at: datetime
    created_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    last_response: str | None
    delivered_at: datetime | None
    resend_of: int | None
    resent_by: str | None
    url: str


_DELIVERY_COLUMNS = (
    "d.id, d.webhook_id, d.event_id, d.event_type, d.event_at, d.created_at, d.status, d.attempts, "
    "d.next_attempt_at, d.last_attempt_at, d.last_status, d.last_error, d.last_response, d.delivered_at, "
    "d.resend_of, d.resent_by, w.url"
)


def _delivery(row: tuple) -> Delivery:
    return Delivery(row[0], row[1], event_id_text(row[2]), *row[3:])


def event_id_text(event_id: UUID | str) -> str:
    return "evt_" + UUID(str(event_id)).hex


# -- the endpoints, as admins set them --------------------------------------------------------------
def new_secret() -> str:
    return "whsec_" + _secrets.token_urlsafe(32)


def check_events(events: object) -> tuple[str, ...]:
    if isinstance(events, str):
        events = [events]
    chosen = tuple(e for e in EVENTS if e in set(events or ()))
    unknown = sorted(set(events or ()) - set(EVENTS)) if isinstance(events, list | tuple | set) else []
    if unknown:
        raise InvalidInput(f"There is no event called {unknown[0]!r}.")
    if not chosen:
        raise InvalidInput("Choose at least one event to send.")
    return chosen


def check_description(text: object) -> str:
    text = "" if text is None else str(text).strip()
    if len(text) > MAX_DESCRIPTION:
        raise InvalidInput(f"The description is too long (at most {MAX_DESCRIPTION} characters).")
    return check_text(text, "The description") if text else ""


def list_webhooks(conn: psycopg.Connection, guild_id: int) -> list[Webhook]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM webhooks WHERE guild_id = %s ORDER BY id", (guild_id,))
    return [_webhook(r) for r in rows.fetchall()]


def get_webhook(conn: psycopg.Connection, guild_id: int, webhook_id: int, *, lock: bool = False) -> Webhook:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM webhooks WHERE guild_id = %s AND id = %s{' FOR UPDATE' if lock else ''}",
        (guild_id, webhook_id),
    ).fetchone()
    if row is None:
        raise NotFound("There is no such webhook in this server.")
    return _webhook(row)


def create_webhook(
    conn: psycopg.Connection, *, guild_id: int, url: object, events: object, description: object = "",
    actor_id: int | None, actor_name: str, resolve: webhook_http.Resolver | None = None,
) -> tuple[Webhook, str]:  # fmt: skip
    """A new endpoint, its URL checked (https, public addresses only); returns it and its secret."""
    target = check_url(url, resolve=resolve)
    chosen = check_events(events)
    text = check_description(description)
    conn.execute("SELECT 1 FROM guilds WHERE guild_id = %s FOR UPDATE", (guild_id,))
    (count,) = conn.execute("SELECT count(*) FROM webhooks WHERE guild_id = %s", (guild_id,)).fetchone()
    if count >= MAX_WEBHOOKS:
        raise InvalidInput(f"A server may have at most {MAX_WEBHOOKS} webhooks; delete one first.")
    secret = new_secret()
    (webhook_id,) = conn.execute(
        "INSERT INTO webhooks (guild_id, url, description, secret, events, created_by) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (guild_id, target.url, text, secret, list(chosen), actor_name),
    ).fetchone()
    made = get_webhook(conn, guild_id, webhook_id)
    audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name, action="webhook.created",
                 target=f"webhook:{webhook_id}", after=made.as_dict())  # fmt: skip
    return made, secret


def edit_webhook(
    conn: psycopg.Connection, *, guild_id: int, webhook_id: int, url: object, events: object,
    description: object = "", actor_id: int | None, actor_name: str, resolve: webhook_http.Resolver | None = None,
) -> Webhook:  # fmt: skip
    before = get_webhook(conn, guild_id, webhook_id, lock=True)
    target = check_url(url, resolve=resolve)
    chosen = check_events(events)
    text = check_description(description)
    conn.execute(
        "UPDATE webhooks SET url = %s, events = %s, description = %s, updated_at = now() WHERE id = %s",
        (target.url, list(chosen), text, webhook_id),
    )
    after = get_webhook(conn, guild_id, webhook_id)
    audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name, action="webhook.edited",
                 target=f"webhook:{webhook_id}", before=before.as_dict(), after=after.as_dict())  # fmt: skip
    return after


def set_enabled(
    conn: psycopg.Connection, *, guild_id: int, webhook_id: int, enabled: bool, actor_id: int | None,
    actor_name: str,
) -> Webhook:  # fmt: skip
    """Switch an endpoint on (its count of failures starts again) or off. Events that happen
    while it is off are not queued for it; deliveries already queued wait (and are given up
    WEBHOOK_RETRY_HOURS after they were queued)."""
    before = get_webhook(conn, guild_id, webhook_id, lock=True)
    if before.enabled == enabled:
        return before
    if enabled:
        conn.execute("UPDATE webhooks SET enabled = TRUE, disabled_reason = NULL, disabled_at = NULL, "
                     "failures_in_row = 0, updated_at = now() WHERE id = %s", (webhook_id,))  # fmt: skip
    else:
        conn.execute("UPDATE webhooks SET enabled = FALSE, disabled_reason = 'admin', disabled_at = now(), "
                     "updated_at = now() WHERE id = %s", (webhook_id,))  # fmt: skip
    audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name,
                 action="webhook.enabled" if enabled else "webhook.disabled", target=f"webhook:{webhook_id}")  # fmt: skip
    return get_webhook(conn, guild_id, webhook_id)


def delete_webhook(
    conn: psycopg.Connection, *, guild_id: int, webhook_id: int, actor_id: int | None, actor_name: str
) -> None:
    """The endpoint and its delivery log go; the audit log keeps that it existed."""
    before = get_webhook(conn, guild_id, webhook_id, lock=True)
    conn.execute("DELETE FROM webhooks WHERE id = %s", (webhook_id,))
    audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name, action="webhook.deleted",
                 target=f"webhook:{webhook_id}", before=before.as_dict())  # fmt: skip


def reveal_secret(
    conn: psycopg.Connection, *, guild_id: int, webhook_id: int, actor_id: int | None, actor_name: str
) -> str:
    """The signing secret, for an admin who asked to see it again (audited)."""
    get_webhook(conn, guild_id, webhook_id)
    (secret,) = conn.execute("SELECT secret FROM webhooks WHERE id = %s", (webhook_id,)).fetchone()
    audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name,
                 action="webhook.secret_revealed", target=f"webhook:{webhook_id}")  # fmt: skip
    return secret


def roll_secret(
    conn: psycopg.Connection, *, guild_id: int, webhook_id: int, actor_id: int | None, actor_name: str
) -> str:
    """A new signing secret; the old one signs nothing from now on."""
    get_webhook(conn, guild_id, webhook_id, lock=True)
    secret = new_secret()
    conn.execute("UPDATE webhooks SET secret = %s, updated_at = now() WHERE id = %s", (secret, webhook_id))
    audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name,
                 action="webhook.secret_rolled", target=f"webhook:{webhook_id}")  # fmt: skip
    return secret


def disabled_by_failures(conn: psycopg.Connection, guild_id: int) -> int:
    """How many of the guild's endpoints the worker switched off (the site's flag)."""
    (n,) = conn.execute(
        "SELECT count(*) FROM webhooks WHERE guild_id = %s AND disabled_reason = 'failures'", (guild_id,)
    ).fetchone()
    return n


# -- the delivery log ----------------------------------------------------------------------------------
def list_deliveries(
    conn: psycopg.Connection, guild_id: int, webhook_id: int, *, before: int | None = None, limit: int = 50
) -> list[Delivery]:
    """An endpoint's deliveries, newest first, a keyset page (`before`: the last id shown)."""
    rows = conn.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id "
        "WHERE d.webhook_id = %s AND w.guild_id = %s AND (%s::bigint IS NULL OR d.id < %s) "
        "ORDER BY d.id DESC LIMIT %s",
        (webhook_id, guild_id, before, before, limit),
    ).fetchall()
    return [_delivery(r) for r in rows]


def get_delivery(conn: psycopg.Connection, guild_id: int, delivery_id: int) -> Delivery:
    row = conn.execute(
        f"SELECT {_DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id "
        "WHERE d.id = %s AND w.guild_id = %s",
        (delivery_id, guild_id),
    ).fetchone()
    if row is None:
        raise NotFound("There is no such delivery in this server.")
    return _delivery(row)


def delivery_body(conn: psycopg.Connection, guild_id: int, delivery_id: int) -> str:
    """The exact body this delivery sends (shown in the log)."""
    row = conn.execute(
        "SELECT d.event_id, d.event_type, d.event_at, d.guild_id, d.data FROM webhook_deliveries d "
        "JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = %s AND w.guild_id = %s",
        (delivery_id, guild_id),
    ).fetchone()
    if row is None:
        raise NotFound("There is no such delivery in this server.")
    return event_body(*row).decode()


def resend(
    conn: psycopg.Connection, *, guild_id: int, delivery_id: int, actor_id: int | None, actor_name: str
) -> int:
    """Queue the delivery's event again for its endpoint (same event id and body, a new row in
    the log, due now); returns the new row's id. Works for a disabled endpoint too, once it is
    switched on again."""
    original = get_delivery(conn, guild_id, delivery_id)
    (new_id,) = conn.execute(
        "INSERT INTO webhook_deliveries (webhook_id, guild_id, event_id, event_type, data, event_at, resend_of, "
        "resent_by) SELECT webhook_id, guild_id, event_id, event_type, data, event_at, id, %s "
        "FROM webhook_deliveries WHERE id = %s RETURNING id",
        (actor_name, original.id),
    ).fetchone()
    audit.record(conn, guild_id=guild_id, actor_id=actor_id, actor_name=actor_name, action="webhook.resent",
                 target=f"webhook:{original.webhook_id}", after={"delivery": str(new_id),
                                                                "event": original.event_id})  # fmt: skip
    return new_id


# -- the event body ------------------------------------------------------------------------------------
def _time(text: str | None) -> str | None:
    return None if text is None else datetime.fromisoformat(text).isoformat()


def _id(value: Any) -> str | None:
    return None if value is None else format_snowflake(int(value))


def shape_entry(row: Mapping[str, Any]) -> dict:
    entry = LedgerEntry(
        id=row["id"], operation_id=row["operation_id"], guild_id=row["guild_id"], user_id=row["user_id"],
        amount=row["amount"], balance_after=row["balance_after"], kind=row["kind"], reason=row["reason"],
        actor_id=row["actor_id"], source=row["source"], silent=row["silent"],
        counterparty_id=row["counterparty_id"], reverts_id=row["reverts_id"],
        created_at=datetime.fromisoformat(row["created_at"]), actor_name=row.get("actor_name") or "",
    )  # fmt: skip
    return entry_json(entry)


def shape_purchase(row: Mapping[str, Any]) -> dict:
    return store.purchase_json(dict(row))


def shape_achievement(row: Mapping[str, Any]) -> dict:
    return {
        "user_id": _id(row["user_id"]),
        "achievement_id": _id(row["achievement_id"]),
        "name": row.get("achievement_name"),
        "bonus_points": row.get("bonus_points"),
        "earned_at": _time(row["earned_at"]),
    }


def shape_season(row: Mapping[str, Any]) -> dict:
    return {
        "id": _id(row["id"]),
        "name": row["name"],
        "starts_at": _time(row["starts_at"]),
        "ends_at": _time(row["ends_at"]),
        "ended_at": _time(row.get("ended_at")),
        "members_ranked": row.get("members_archived"),
        "prize_places": row["prize_places"],
        "prize_points": row["prize_points"],
        "reset_balances": row["reset_balances"],
    }


_SHAPES: dict[str, Callable[[Mapping[str, Any]], dict]] = {
    "entry.created": shape_entry,
    "entry.reverted": shape_entry,
    "achievement.earned": shape_achievement,
    "purchase.created": shape_purchase,
    "purchase.refunded": shape_purchase,
    "purchase.fulfilled": shape_purchase,
    "season.ended": shape_season,
}


def event_body(
    event_id: UUID | str, event_type: str, event_at: datetime, guild_id: int, data: Mapping
) -> bytes:
    """The JSON body of an event: the same bytes on every attempt and resend."""
    body = {
        "id": event_id_text(event_id),
        "type": event_type,
        "created_at": event_at.isoformat(),
        "guild_id": format_snowflake(guild_id),
        "data": {"object": _SHAPES[event_type](data)},
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


# -- delivery (the worker's "deliver_webhooks" task) ----------------------------------------------------
@dataclass(frozen=True)
class Claimed:
    id: int
    webhook_id: int
    url: str
    secret: str
    body: bytes
    event_id: str
    event_type: str
    attempts: int  # this attempt's number
    created_at: datetime
    claimed_at: datetime  # the claim's token: its result is recorded only while it holds


@dataclass
class DeliveryReport:
    claimed: int = 0
    delivered: int = 0
    failed_attempts: int = 0
    given_up: int = 0
    disabled: list[int] = field(default_factory=list)
    stopped: str = ""  # "done" | "budget"


def claim_due(conn: psycopg.Connection, limit: int = CLAIM_BATCH, lease_s: int = LEASE_S) -> list[Claimed]:
    """Take up to `limit` due deliveries of enabled endpoints (SKIP LOCKED: two workers never
    take the same row); each is leased for lease_s, after which it is due again."""
    rows = conn.execute(
        """
        WITH due AS (
            SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
            WHERE d.status IN ('pending', 'sending') AND d.next_attempt_at <= now() AND w.enabled
            ORDER BY d.next_attempt_at
            LIMIT %(limit)s
            FOR UPDATE OF d SKIP LOCKED
        )
        UPDATE webhook_deliveries d
        SET status = 'sending', attempts = d.attempts + 1, last_attempt_at = clock_timestamp(),
            next_attempt_at = clock_timestamp() + make_interval(secs => %(lease)s)
        FROM due, webhooks w
        WHERE d.id = due.id AND w.id = d.webhook_id
        RETURNING d.id, d.webhook_id, w.url, w.secret, d.event_id, d.event_type, d.event_at, d.guild_id, d.data,
                  d.attempts, d.created_at, d.last_attempt_at
        """,
        {"limit": limit, "lease": lease_s},
    ).fetchall()
    claimed = []
    for r in sorted(rows, key=lambda r: r[0]):
        body = event_body(r[4], r[5], r[6], r[7], r[8])
        claimed.append(Claimed(r[0], r[1], r[2], r[3], body, event_id_text(r[4]), r[5], r[9], r[10], r[11]))
    return claimed


def headers_for(claimed: Claimed, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        webhook_http.SIGNATURE_HEADER: webhook_http.signature_header(claimed.secret, timestamp, claimed.body),
        "Pointsbot-Event-Id": claimed.event_id,
        "Pointsbot-Event-Type": claimed.event_type,
    }


def send_one(
    claimed: Claimed, settings: Settings, resolve: webhook_http.Resolver | None = None
) -> webhook_http.Answer:
    """Check the URL again (the name is resolved now, once) and POST to the address it found."""
    try:
        target: Target = check_url(claimed.url, resolve=resolve)
    except UnsafeURL as refused:
        return webhook_http.Answer(None, b"", f"not sent: {refused.message}", None)
    return webhook_http.post(target, claimed.body, headers_for(claimed, int(time.time())),
                             connect_timeout_s=min(3.0, settings.webhook_timeout_s),
                             total_timeout_s=settings.webhook_timeout_s)  # fmt: skip


def retry_delay_s(attempts: int, settings: Settings) -> int:
    """After the attempts-th failed try: base * 2^(attempts-1), at most the maximum."""
    return min(settings.webhook_retry_max_s, settings.webhook_retry_base_s * 2 ** min(attempts - 1, 30))


def record_delivered(
    conn: psycopg.Connection, delivered: list[tuple[Claimed, webhook_http.Answer]], report: DeliveryReport
) -> None:
    """A batch's successes in two statements (the rows whose claim still holds, then their
    endpoints' count of failures back to zero)."""
    if not delivered:
        return
    rows = conn.execute(
        "UPDATE webhook_deliveries d SET status = 'delivered', delivered_at = now(), last_status = r.status, "
        "last_error = NULL, last_response = r.response, lease_until = NULL "
        "FROM unnest(%s::bigint[], %s::timestamptz[], %s::int[], %s::text[]) AS r(id, claimed_at, status, response) "
        "WHERE d.id = r.id AND d.status = 'sending' AND d.last_attempt_at = r.claimed_at RETURNING d.webhook_id",
        ([c.id for c, _ in delivered], [c.claimed_at for c, _ in delivered], [a.status for _, a in delivered],
         [a.body[:1000].decode("utf-8", "replace") if a.body else None for _, a in delivered]),
    ).fetchall()  # fmt: skip
    report.delivered += len(rows)
    hooks = sorted({r[0] for r in rows})
    if hooks:
        conn.execute(
            "UPDATE webhooks SET failures_in_row = 0, last_success_at = now() WHERE id = ANY(%s)", (hooks,)
        )


def record(
    conn: psycopg.Connection, claimed: Claimed, answer: webhook_http.Answer, settings: Settings,
    report: DeliveryReport,
) -> None:  # fmt: skip
    """Write one attempt's result, if the claim still holds; count the endpoint's failures and
    switch it off after WEBHOOK_DISABLE_AFTER in a row."""
    response = answer.body[:1000].decode("utf-8", "replace") if answer.body else None
    if answer.ok:
        done = conn.execute(
            "UPDATE webhook_deliveries SET status = 'delivered', delivered_at = now(), last_status = %s, "
            "last_error = NULL, last_response = %s, lease_until = NULL WHERE id = %s AND status = 'sending' "
            "AND last_attempt_at = %s RETURNING id",
            (answer.status, response, claimed.id, claimed.claimed_at),
        ).fetchone()
        if done:
            conn.execute("UPDATE webhooks SET failures_in_row = 0, last_success_at = now() WHERE id = %s",
                         (claimed.webhook_id,))  # fmt: skip
            report.delivered += 1
        return
    delay = retry_delay_s(claimed.attempts, settings)
    give_up_at = claimed.created_at + timedelta(hours=settings.webhook_retry_hours)
    done = conn.execute(
        "UPDATE webhook_deliveries SET status = CASE WHEN now() + make_interval(secs => %(delay)s) > %(give_up)s "
        "THEN 'failed' ELSE 'pending' END, next_attempt_at = now() + make_interval(secs => %(delay)s), "
        "last_status = %(status)s, last_error = %(error)s, last_response = %(response)s "
        "WHERE id = %(id)s AND status = 'sending' AND last_attempt_at = %(claimed_at)s RETURNING status",
        {"delay": delay, "give_up": give_up_at, "status": answer.status, "error": (answer.error or "")[:500],
         "response": response, "id": claimed.id, "claimed_at": claimed.claimed_at},
    ).fetchone()  # fmt: skip
    if not done:
        return
    report.failed_attempts += 1
    if done[0] == "failed":
        report.given_up += 1
    row = conn.execute(
        "UPDATE webhooks SET failures_in_row = failures_in_row + 1, last_failure_at = now() WHERE id = %s "
        "RETURNING guild_id, failures_in_row, enabled",
        (claimed.webhook_id,),
    ).fetchone()
    if row and row[2] and row[1] >= settings.webhook_disable_after:
        conn.execute("UPDATE webhooks SET enabled = FALSE, disabled_reason = 'failures', disabled_at = now(), "
                     "updated_at = now() WHERE id = %s", (claimed.webhook_id,))  # fmt: skip
        audit.record(conn, guild_id=row[0], actor_id=None, actor_name="system", action="webhook.disabled_by_failures",
                     target=f"webhook:{claimed.webhook_id}",
                     after={"failures_in_row": row[1], "last_error": answer.error})  # fmt: skip
        report.disabled.append(claimed.webhook_id)
        logger.warning("webhook switched off after failures", extra={"webhook": claimed.webhook_id,
                                                                     "failures": row[1]})  # fmt: skip


def deliver_due(
    database: Any,
    *,
    settings: Settings | None = None,
    budget_s: float = _BUDGET_S,
    time_left_s: Callable[[], float | None] | None = None,
    resolve: webhook_http.Resolver | None = None,
    concurrency: int = CONCURRENCY,
) -> DeliveryReport:
    """Deliver what is due, a claimed batch at a time (its POSTs in parallel, no database
    connection held meanwhile), until none is left or the time is up."""
    settings = settings or get_settings()
    report = DeliveryReport()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="webhook") as pool:
        while True:
            left = time_left_s() if time_left_s else None
            if time.monotonic() - started > budget_s or (
                left is not None and left < settings.webhook_timeout_s + 5
            ):
                report.stopped = "budget"
                return report
            batch = database.run(claim_due)
            if not batch:
                report.stopped = "done"
                return report
            report.claimed += len(batch)
            answers = list(pool.map(lambda c: send_one(c, settings, resolve), batch))

            def write(conn: psycopg.Connection, batch: list[Claimed] = batch, answers=answers) -> None:
                pairs = list(zip(batch, answers, strict=True))
                record_delivered(conn, [(c, a) for c, a in pairs if a.ok], report)
                for claimed, answer in pairs:
                    if not answer.ok:
                        record(conn, claimed, answer, settings, report)

            database.run(write)


def next_due_in_s(conn: psycopg.Connection) -> float | None:
    """Seconds until the next delivery of an enabled endpoint is due (0 if one is), or None."""
    row = conn.execute(
        "SELECT extract(epoch FROM min(d.next_attempt_at) - now()) FROM webhook_deliveries d "
        "JOIN webhooks w ON w.id = d.webhook_id WHERE d.status IN ('pending', 'sending') AND w.enabled"
    ).fetchone()
    return None if row[0] is None else max(0.0, float(row[0]))


def request_delivery(delay_seconds: int = 0) -> bool:
    """Ask the worker for a "deliver_webhooks" task (after COMMIT). Never raises."""
    from ..delivery.tasks import Task, get_task_queue

    try:
        get_task_queue().send(Task(DELIVER_TASK_KIND), delay_seconds=delay_seconds)
    except Exception:  # the rows are safe; the keep-alive asks again
        logger.warning("could not request webhook delivery; the keep-alive will ask again", exc_info=True)
        return False
    return True


def request_if_due(conn_or_db: Any) -> bool:
    """Ask for delivery when something is due now, or (SQS holds a message at most 15 minutes)
    for a wake-up when the next retry falls within that; the keep-alive covers later ones."""
    run = conn_or_db.run if hasattr(conn_or_db, "run") else (lambda fn: fn(conn_or_db))
    due_in = run(next_due_in_s)
    if due_in is None or due_in > 900:
        return False
    return request_delivery(int(due_in) + (1 if due_in else 0))


def deliver_task(task: Any) -> None:
    """The worker's "deliver_webhooks" task: deliver until done or out of time, then ask again
    for what is left or for the next retry."""
    from ..delivery.tasks import time_left_s
    from ..platform.runtime import get_database

    database = get_database()
    report = deliver_due(database, time_left_s=time_left_s)
    logger.info("webhook delivery", extra={"claimed": report.claimed, "delivered": report.delivered,
                                           "failed_attempts": report.failed_attempts, "stopped": report.stopped})  # fmt: skip
    request_if_due(database)
