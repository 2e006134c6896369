"""Who may call the API and how often: the key a request presents, its scope, its limit, and
the audit row of every use; and the Idempotency-Key of every write (Stripe's semantics).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from ..community import api_keys, audit
from ..community.api_keys import ApiKey
from ..platform.errors import (
    AlreadyReverted,
    DomainError,
    IdempotencyConflict,
    InsufficientBalance,
    LimitExceeded,
    NotFound,
    TransfersDisabled,
)

# An Idempotency-Key's answer is kept this long (at least 24 h, as Stripe's); the keep-alive
# prunes older ones, after which the same key is a new request.
IDEMPOTENCY_KEEP_HOURS = 24
# How long a request waits for another holding the same Idempotency-Key before a 409.
IDEMPOTENCY_WAIT = "4s"
MAX_IDEMPOTENCY_KEY = 255


class ApiError(Exception):
    """An answer other than success: status, a stable code, a plain message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def status_of(exc: DomainError) -> int:
    """The HTTP status of a rule that said no."""
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, AlreadyReverted):
        return 409
    if isinstance(exc, (InsufficientBalance, LimitExceeded, TransfersDisabled, IdempotencyConflict)):
        return 422
    return 400


@dataclass
class Caller:
    key: ApiKey
    audited: bool = False
    refusal: ApiError | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def actor_name(self) -> str:
        return f"api:{self.key.name}"[:100]


def bearer(headers: dict[str, str]) -> str | None:
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else ""


# Count this request in its key's window and say how far the window has to run, in one statement.
_COUNT = """
INSERT INTO api_key_windows AS w (key_id, window_start, requests)
VALUES (%(k)s, to_timestamp(floor(extract(epoch FROM now()) / %(s)s) * %(s)s), 1)
ON CONFLICT (key_id, window_start) DO UPDATE SET requests = w.requests + 1
RETURNING requests, ceil(extract(epoch FROM w.window_start + make_interval(secs => %(s)s) - now()))::int
"""


def admit(
    conn: psycopg.Connection, secret: str | None, scope: str, target: str, *, limit: int, window_s: int
) -> Caller:
    """The caller of a request, once its key is known, live, of the right scope and within its
    limit; otherwise ApiError (401, 429), or a caller whose `refusal` (403) is to be raised after
    COMMIT, so its audit row stays. Runs in a transaction of its own, before the
    request's work, so the counter's row is held only for this short statement."""
    if secret is None:
        raise ApiError(401, "unauthorized", "Send an API key: Authorization: Bearer <key> (keys are made on the "
                                            "admin site, API section).")  # fmt: skip
    key = api_keys.find_by_secret(conn, secret) if secret else None
    if key is None:
        raise ApiError(401, "unauthorized", "This API key is not valid.")
    if not key.active:
        raise ApiError(401, "key_revoked", "This API key was revoked on the admin site.")
    caller = Caller(key)
    if scope not in key.scopes:  # a use too: audited, committed, then refused (the caller raises it)
        audit_use(conn, caller, "api.refused", target, status=403)
        caller.refusal = ApiError(403, "insufficient_scope", f"This API key may not {scope}: make a key with the "
                                                             f"“{scope}” scope on the admin site.")  # fmt: skip
        return caller
    used, remaining_s = conn.execute(_COUNT, {"k": key.id, "s": window_s}).fetchone()
    if used > limit:
        # Not audited: a flood must cost one small statement per request, no more.
        retry = max(1, int(remaining_s))
        raise ApiError(429, "rate_limited", f"This key made more than {limit} requests in {window_s} seconds. "
                                            f"Try again in {retry} seconds.", {"Retry-After": str(retry)})  # fmt: skip
    conn.execute(
        "UPDATE api_keys SET last_used_at = now() WHERE id = %s AND (last_used_at IS NULL "
        "OR last_used_at < now() - make_interval(secs => %s))",
        (key.id, api_keys.LAST_USED_RESOLUTION_S),
    )
    return caller


def audit_use(conn: psycopg.Connection, caller: Caller, action: str, target: str, *, status: int) -> None:
    """One audit row per use of a key, in the caller's transaction."""
    audit.record(conn, guild_id=caller.key.guild_id, actor_id=None, actor_name=caller.actor_name, action=action,
                 target=target[:500], after={"key_id": str(caller.key.id), "status": status, **caller.extra})  # fmt: skip
    caller.audited = True


# -- Idempotency-Key --------------------------------------------------------------------------
def idempotency_key(headers: dict[str, str]) -> str:
    value = next((v for k, v in headers.items() if k.lower() == "idempotency-key"), None)
    if value is None or not value.strip():
        raise ApiError(400, "idempotency_key_required",
                       "Every write needs an Idempotency-Key header: a unique string you make for this change "
                       "(a UUID) and send again if you retry it. A retry with the same key and body changes "
                       "nothing a second time and gets the first answer.")  # fmt: skip
    value = value.strip()
    if len(value) > MAX_IDEMPOTENCY_KEY or not value.isprintable() or not value.isascii():
        raise ApiError(400, "invalid_idempotency_key",
                       f"The Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters.")  # fmt: skip
    return value


def fingerprint(method: str, path: str, body: Any) -> bytes:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode("utf-8", "surrogatepass")).digest()


def ledger_key(caller: Caller, idem_key: str) -> str:
    """The ledger operation's own idempotency key for a write (under 200 characters)."""
    return f"api:{caller.key.id}:{hashlib.sha256(idem_key.encode()).hexdigest()[:48]}"


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict
    replayed: bool = False


def once(
    conn: psycopg.Connection,
    caller: Caller,
    idem_key: str,
    print_: bytes,
    action: str,
    target: str,
    effect: Callable[[psycopg.Connection], Answer],
) -> Answer:
    """Run a write's `effect` once per (key, Idempotency-Key), in the caller's transaction.

    The claim is an INSERT on the pair's primary key: a concurrent request with the same pair
    waits on it until this transaction ends, then replays what it stored (or, if this one rolled
    back, goes ahead itself); after IDEMPOTENCY_WAIT it gets a 409. A rule that says no (not
    enough points, a limit) is an answer like any other: stored and replayed. Errors of the
    request's shape never reach here (they are not stored: the same key may be sent again fixed).
    """
    caller.extra = {"idempotency_key": idem_key}
    conn.execute(f"SET LOCAL lock_timeout = '{IDEMPOTENCY_WAIT}'")
    try:
        with conn.transaction():
            claimed = conn.execute(
                "INSERT INTO api_idempotency (key_id, idem_key, fingerprint, status, body) VALUES (%s, %s, %s, 0, '') "
                "ON CONFLICT (key_id, idem_key) DO NOTHING RETURNING 1",
                (caller.key.id, idem_key, print_),
            ).fetchone()
    except pg_errors.LockNotAvailable:
        audit_use(conn, caller, action, target, status=409)
        return Answer(409, error_body("idempotency_key_in_use", "Another request with this Idempotency-Key is "
                                      "still being processed. Try again in a moment to get its answer."))  # fmt: skip
    conn.execute("SET LOCAL lock_timeout = 0")
    if claimed is None:
        stored_print, status, body = conn.execute(
            "SELECT fingerprint, status, body FROM api_idempotency WHERE key_id = %s AND idem_key = %s",
            (caller.key.id, idem_key),
        ).fetchone()
        if bytes(stored_print) != print_:
            audit_use(conn, caller, action, target, status=422)
            return Answer(422, error_body("idempotency_key_reused",
                          "This Idempotency-Key was used before with a different request (another path or body). "
                          "Use a new key for a new change; send the same body to get the first answer."))  # fmt: skip
        audit_use(conn, caller, action, target, status=status)
        return Answer(status, json.loads(body), replayed=True)
    try:
        with conn.transaction():
            answer = effect(conn)
    except DomainError as exc:
        answer = Answer(status_of(exc), error_body(exc.code, exc.message))
    conn.execute(
        "UPDATE api_idempotency SET status = %s, body = %s WHERE key_id = %s AND idem_key = %s",
        (answer.status, json.dumps(answer.body), caller.key.id, idem_key),
    )
    audit_use(conn, caller, action, target, status=answer.status)
    return answer


def prune(conn: psycopg.Connection, keep_hours: int = IDEMPOTENCY_KEEP_HOURS) -> int:
    """Forget Idempotency-Keys older than `keep_hours` and rate windows older than an hour."""
    gone = conn.execute(
        "DELETE FROM api_idempotency WHERE created_at < now() - make_interval(hours => %s)", (keep_hours,)
    ).rowcount
    conn.execute("DELETE FROM api_key_windows WHERE window_start < now() - interval '1 hour'")
    return gone
