"""The integration API, /api/v1 (issue 13): a Lambda function of its own behind the same HTTP API.

Powertools' HTTP API resolver routes (it is in the layer already, for the admin site); the
endpoints are declared once in ENDPOINTS (pointsbot.api.schema), which checks every request and
makes /api/v1/openapi.json. Every request: the key (gate.admit, its own short transaction: 401,
403, 429), then the work in one transaction with the audit row of the use; a write also needs an
Idempotency-Key (gate.once). Errors are JSON {"error": {"code", "message"}}, never a stack trace.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any

import psycopg
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from .. import ledger
from ..community import achievement_definitions, points, store, windows
from ..delivery import outbox
from ..ledger import LedgerEntry, entry_json
from ..platform import runtime
from ..platform.config import get_settings
from ..platform.db import DatabaseUnavailable
from ..platform.errors import DomainError, InvalidInput, NotFound
from ..platform.ids import format_snowflake
from ..platform.observability import logger
from . import gate
from .gate import Answer, ApiError, Caller
from .schema import (
    CHANGE,
    ENTRY_ID,
    ENTRY_PAGE,
    LIMIT,
    PERIOD,
    SNOWFLAKE,
    Endpoint,
    Param,
    check,
    query_value,
)

PREFIX = "/api/v1"
VERSION = "1.0.0"

app = APIGatewayHttpResolver(strip_prefixes=[PREFIX])

_USER = Param("user_id", "path", SNOWFLAKE)
_AFTER = Param("after", "query", {"type": "string", "pattern": r"^(0|[1-9][0-9]{0,18})$",
                                  "description": "An entry id; entries after it are listed (0 or absent: from the "
                                                 "first)."})  # fmt: skip
_ENTRY_LIMIT = Param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})
_ENTRY_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["user_id", "operation", "amount", "reason"],
    "properties": {
        "user_id": SNOWFLAKE,
        "operation": {
            "type": "string",
            "enum": ["award", "deduct", "set"],
            "description": "award adds, deduct takes away, set makes the balance exactly `amount`.",
        },
        "amount": {"type": "integer", "minimum": -(2**53 - 1), "maximum": 2**53 - 1},
        "reason": {"type": "string", "minLength": 1, "maxLength": ledger.MAX_REASON},
        "silent": {
            "type": "boolean",
            "default": False,
            "description": "true: the member gets no DM about it.",
        },
    },
}
_REVERT_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["reason"],
    "properties": {
        "reason": {"type": "string", "minLength": 1, "maxLength": ledger.MAX_REASON},
        "silent": {"type": "boolean", "default": False},
    },
}
_MEMBER = {
    "type": "object",
    "required": ["user_id", "period", "balance", "rank", "total_members"],
    "properties": {
        "user_id": SNOWFLAKE,
        "period": {"type": "string"},
        "balance": {"type": "integer", "description": "The balance (period all) or the score in the period."},
        "rank": {"type": "integer"},
        "total_members": {"type": "integer"},
    },
}
_BOARD = {
    "type": "object",
    "required": ["period", "rows", "next_cursor"],
    "properties": {
        "period": {"type": "string"},
        "rows": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["rank", "user_id", "balance"],
                "properties": {
                    "rank": {"type": "integer"},
                    "user_id": SNOWFLAKE,
                    "balance": {"type": "integer"},
                    "display_name": {"type": ["string", "null"]},
                },
            },
        },
        "next_cursor": {
            "type": ["string", "null"],
            "description": "Pass as `cursor` for the next page; null at the end.",
        },
    },
}
_ACHIEVEMENTS = {
    "type": "object",
    "required": ["achievements"],
    "properties": {
        "achievements": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "bonus_points": {"type": "integer"},
                    "criterion": {"type": "string"},
                    "active": {"type": "boolean"},
                    "holders": {"type": "integer"},
                },
            },
        }
    },
}

_PURCHASE = {
    "type": "object",
    "required": ["id", "user_id", "reward_id", "reward_name", "kind", "price", "state", "entry_id", "created_at"],
    "properties": {
        "id": ENTRY_ID,
        "user_id": SNOWFLAKE,
        "reward_id": {"type": "string"},
        "reward_name": {"type": "string"},
        "kind": {"type": "string", "enum": ["role", "item", "code"]},
        "price": {"type": "integer"},
        "state": {"type": "string", "enum": ["granted", "pending", "fulfilled", "refunded", "expired"],
                  "description": "granted (a role or code, done), pending (an item an admin hands over), fulfilled, "
                                 "refunded, expired (a timed role whose time is up)."},
        "entry_id": {"type": "string", "description": "The ledger entry that paid for it."},
        "refund_entry_id": {"type": ["string", "null"]},
        "note": {"type": "string"},
        "expires_at": {"type": ["string", "null"], "format": "date-time"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}  # fmt: skip
_PURCHASE_PAGE = {
    "type": "object",
    "required": ["purchases", "next_cursor"],
    "properties": {
        "purchases": {"type": "array", "items": _PURCHASE},
        "next_cursor": {"type": "string", "description": "Pass as `after` for the purchases that follow (the same "
                                                         "cursor again when there are none yet)."},
    },
}  # fmt: skip
_REWARDS = {
    "type": "object",
    "required": ["rewards"],
    "properties": {
        "rewards": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "name", "kind", "price", "enabled", "on_sale"],
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "kind": {"type": "string", "enum": ["role", "item", "code"]},
                    "price": {"type": "integer"},
                    "stock": {"type": ["integer", "null"], "description": "Left to sell; null: unlimited."},
                    "per_member_limit": {"type": ["integer", "null"]},
                    "starts_at": {"type": ["string", "null"], "format": "date-time"},
                    "ends_at": {"type": ["string", "null"], "format": "date-time"},
                    "enabled": {"type": "boolean"},
                    "on_sale": {
                        "type": "boolean",
                        "description": "Enabled, within its dates and not sold out.",
                    },
                    "role_id": {"type": ["string", "null"]},
                    "duration_days": {"type": ["integer", "null"]},
                },
            },
        }
    },
}
_PURCHASE_AFTER = Param("after", "query", {"type": "string", "pattern": r"^(0|[1-9][0-9]{0,18})$",
                                           "description": "A purchase id; purchases after it are listed (0 or "
                                                          "absent: from the first)."})  # fmt: skip

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/members/{user_id}",
        "getMember",
        "A member's balance and rank",
        "read",
        _MEMBER,
        params=(_USER, Param("period", "query", PERIOD)),
        tags=("members",),
    ),
    Endpoint(
        "GET",
        "/leaderboard",
        "getLeaderboard",
        "The leaderboard, a page at a time",
        "read",
        _BOARD,
        params=(
            Param("period", "query", PERIOD),
            Param("limit", "query", LIMIT),
            Param(
                "cursor",
                "query",
                {
                    "type": "string",
                    "pattern": r"^-?[0-9]{1,19}\.[1-9][0-9]{0,18}$",
                    "description": "next_cursor of the page before.",
                },
            ),
        ),
        description="Highest first; ties share a rank and are listed by user id. Pages are keyset pages: "
        "a cursor goes on from where the last page ended, however the board moved.",
        tags=("members",),
    ),
    Endpoint(
        "GET",
        "/members/{user_id}/entries",
        "listMemberEntries",
        "A member's entries since a cursor",
        "read",
        ENTRY_PAGE,
        params=(_USER, _AFTER, _ENTRY_LIMIT),
        tags=("entries",),
    ),
    Endpoint(
        "GET",
        "/entries",
        "listEntries",
        "The server's entries since a cursor",
        "read",
        ENTRY_PAGE,
        params=(_AFTER, _ENTRY_LIMIT),
        tags=("entries",),
        description="Oldest first from `after`; keep next_cursor and ask again later to sync.",
    ),
    Endpoint(
        "POST",
        "/entries",
        "createEntry",
        "Award, deduct or set a member's points",
        "write",
        CHANGE,
        status=201,
        body=_ENTRY_BODY,
        tags=("entries",),
        description="The server's limits apply as on Discord (largest single change, daily cap, no balance "
        "below zero unless allowed). Needs an Idempotency-Key.",
    ),
    Endpoint(
        "POST",
        "/entries/{entry_id}/revert",
        "revertEntry",
        "Undo an entry with a new one",
        "write",
        CHANGE,
        status=201,
        params=(Param("entry_id", "path", ENTRY_ID),),
        body=_REVERT_BODY,
        tags=("entries",),
    ),
    Endpoint(
        "GET",
        "/achievements",
        "listAchievements",
        "The server's achievements",
        "read",
        _ACHIEVEMENTS,
        tags=("achievements",),
    ),
    Endpoint(
        "GET",
        "/rewards",
        "listRewards",
        "The server's rewards (the store)",
        "read",
        _REWARDS,
        tags=("store",),
        description="Every reward, on sale or not, by name.",
    ),
    Endpoint(
        "GET",
        "/purchases",
        "listPurchases",
        "The server's purchases since a cursor",
        "read",
        _PURCHASE_PAGE,
        params=(_PURCHASE_AFTER, _ENTRY_LIMIT),
        tags=("store",),
        description="Oldest first from `after` (new purchases; a purchase's later state is in its row here and in "
        "the purchase.fulfilled / purchase.refunded webhooks).",
    ),
    Endpoint(
        "GET",
        "/members/{user_id}/purchases",
        "listMemberPurchases",
        "A member's purchases since a cursor",
        "read",
        _PURCHASE_PAGE,
        params=(_USER, _PURCHASE_AFTER, _ENTRY_LIMIT),
        tags=("store",),
    ),
)
_BY_ID = {ep.operation_id: ep for ep in ENDPOINTS}


# -- answers --------------------------------------------------------------------------------------
def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, "application/json", json.dumps(body, separators=(",", ":")),
                    {"Cache-Control": "no-store", **(headers or {})})  # fmt: skip


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json(status, gate.error_body(code, message), headers)


@app.exception_handler(ApiError)
def _api_error(exc: ApiError) -> Response:
    return _error(exc.status, exc.code, exc.message, exc.headers)


@app.exception_handler(DomainError)
def _domain_error(exc: DomainError) -> Response:
    return _error(gate.status_of(exc), exc.code, exc.message)


@app.exception_handler(DatabaseUnavailable)
def _db_down(exc: DatabaseUnavailable) -> Response:
    logger.warning("api: database unavailable", extra={"error": str(exc)})
    return _error(503, "unavailable", "The database is not answering right now; try again in a minute.",
                  {"Retry-After": "30"})  # fmt: skip


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response:
    logger.exception("api: unexpected error")
    return _error(500, "internal_error", "Something went wrong on our side; nothing more was changed by this "
                                         "request than its answer says. Try again, with the same Idempotency-Key.")  # fmt: skip


@app.not_found
def _not_found(exc: Exception) -> Response:
    return _error(404, "not_found", "There is no such endpoint; see /api/v1/openapi.json.")


# -- the request's steps -----------------------------------------------------------------------------
def _headers() -> dict[str, str]:
    return dict(app.current_event.headers or {})


def _target() -> str:
    event = app.current_event
    query = event.raw_query_string
    return event.path + (f"?{query}" if query else "")


def _admit(endpoint: Endpoint) -> Caller:
    settings = get_settings()
    caller = runtime.get_database().run(gate.admit, gate.bearer(_headers()), endpoint.scope, _target(),
                                        limit=settings.api_rate_limit, window_s=settings.api_rate_window_s)  # fmt: skip
    if caller.refusal is not None:
        raise caller.refusal
    return caller


def _query(endpoint: Endpoint) -> dict[str, Any]:
    given = app.current_event.query_string_parameters or {}
    known = {p.name: p for p in endpoint.params if p.where == "query"}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise InvalidInput(f"This endpoint takes no parameter “{unknown[0]}”.")
    values = {}
    for name, param in known.items():
        if name in given:
            values[name] = query_value(given[name], param.schema, name)
        else:
            values[name] = param.schema.get("default")
    return values


def _path_id(endpoint: Endpoint, name: str, raw: str) -> int:
    param = next(p for p in endpoint.params if p.name == name)
    check(raw, param.schema, f"The {name.replace('_', ' ')} in the path")
    value = int(raw)
    if value >= 2**63:
        raise InvalidInput(f"The {name.replace('_', ' ')} in the path is too large.")
    return value


def _body(endpoint: Endpoint) -> dict:
    raw = app.current_event.decoded_body or ""
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError:
        raise InvalidInput("The body is not valid JSON.") from None
    if body is None:
        raise InvalidInput("This endpoint needs a JSON body; see /api/v1/openapi.json.")
    return check(body, endpoint.body or {}, "The body")


def _read(operation_id: str, work: Callable[[psycopg.Connection, Caller], Any]) -> Response:
    """A read: admitted, then the work and the audit row of the use in one transaction."""
    endpoint = _BY_ID[operation_id]
    caller = _admit(endpoint)

    def run(conn: psycopg.Connection) -> Any:
        result = work(conn, caller)
        gate.audit_use(conn, caller, f"api.{operation_id}", _target(), status=200)
        return result

    try:
        return _json(200, runtime.get_database().run(run))
    except DomainError as exc:  # the refusal is a use too: audited on its own
        runtime.get_database().run(
            gate.audit_use, caller, f"api.{operation_id}", _target(), status=gate.status_of(exc)
        )
        raise


def _write(
    operation_id: str, effect: Callable[[psycopg.Connection, Caller, str, dict], Answer], **path: int
) -> Response:
    """A write: admitted, its Idempotency-Key and body checked, then `effect` once per key."""
    endpoint = _BY_ID[operation_id]
    caller = _admit(endpoint)
    try:
        idem = gate.idempotency_key(_headers())
        body = _body(endpoint)
    except (ApiError, DomainError) as exc:
        status = exc.status if isinstance(exc, ApiError) else gate.status_of(exc)
        runtime.get_database().run(gate.audit_use, caller, f"api.{operation_id}", _target(), status=status)
        raise
    print_ = gate.fingerprint(endpoint.method, app.current_event.path, body)
    answer = runtime.get_database().run(
        gate.once, caller, idem, print_, f"api.{operation_id}", _target(),
        lambda conn: effect(conn, caller, gate.ledger_key(caller, idem), {**body, **path}),
    )  # fmt: skip
    if answer.status < 300 and not answer.replayed:
        outbox.request_delivery()  # the member's DM, after COMMIT
    return _json(answer.status, answer.body, {"Idempotent-Replayed": "true"} if answer.replayed else None)


# -- the endpoints -----------------------------------------------------------------------------------
def _window(conn: psycopg.Connection, guild_id: int, period: str) -> windows.Window | None:
    if period == "all":
        return None
    window = windows.window_for(conn, guild_id, period)
    if window is None:
        raise NotFound("No season is running in this server, so there is no season board.")
    return window


@app.get("/members/<user_id>")
def get_member(user_id: str) -> Response:
    endpoint = _BY_ID["getMember"]
    uid = _path_id(endpoint, "user_id", user_id)
    period = _query(endpoint)["period"]

    def work(conn: psycopg.Connection, caller: Caller) -> dict:
        guild = caller.key.guild_id
        window = _window(conn, guild, period)
        if window is None:
            info = ledger.rank_of(conn, guild, uid)
        else:
            info = windows.window_rank(conn, guild, window.key, uid).as_rank_info()
        return {"user_id": format_snowflake(uid), "period": period, "balance": info.balance, "rank": info.rank,
                "total_members": info.total_members}  # fmt: skip

    return _read("getMember", work)


@app.get("/leaderboard")
def get_leaderboard() -> Response:
    q = _query(_BY_ID["getLeaderboard"])
    after = None
    if q["cursor"]:
        balance, user = q["cursor"].split(".")
        after = (int(balance), int(user))

    def work(conn: psycopg.Connection, caller: Caller) -> dict:
        guild = caller.key.guild_id
        window = _window(conn, guild, q["period"])
        if window is None:
            board = ledger.leaderboard_page(conn, guild, 1, q["limit"], after=after, keyset_only=True)
        else:
            board = windows.window_board(
                conn, guild, window.key, 1, q["limit"], after=after, keyset_only=True
            )
        rows = [{"rank": r.rank, "user_id": format_snowflake(r.user_id), "balance": r.balance,
                 "display_name": r.display_name} for r in board.rows]  # fmt: skip
        last = board.rows[-1] if len(board.rows) == q["limit"] else None
        return {"period": q["period"], "rows": rows,
                "next_cursor": f"{last.balance}.{last.user_id}" if last else None}  # fmt: skip

    return _read("getLeaderboard", work)


def _entry_page(entries: tuple[LedgerEntry, ...], after: int) -> dict:
    return {
        "entries": [entry_json(e) for e in entries],
        "next_cursor": str(entries[-1].id if entries else after),
    }


@app.get("/members/<user_id>/entries")
def list_member_entries(user_id: str) -> Response:
    endpoint = _BY_ID["listMemberEntries"]
    uid = _path_id(endpoint, "user_id", user_id)
    q = _query(endpoint)
    after = int(q["after"] or 0)
    return _read("listMemberEntries", lambda conn, caller: _entry_page(
        ledger.entries_after(conn, caller.key.guild_id, after, q["limit"], user_id=uid), after))  # fmt: skip


@app.get("/entries")
def list_entries() -> Response:
    q = _query(_BY_ID["listEntries"])
    after = int(q["after"] or 0)
    return _read("listEntries", lambda conn, caller: _entry_page(
        ledger.entries_after(conn, caller.key.guild_id, after, q["limit"]), after))  # fmt: skip


def _change(result: ledger.OperationResult, user_id: int) -> dict:
    balance = result.entry_for(user_id).balance_after if result.entries else None
    return {"operation_id": str(result.operation_id), "entries": [entry_json(e) for e in result.entries],
            "balance": balance}  # fmt: skip


def _create_entry(conn: psycopg.Connection, caller: Caller, key: str, body: dict) -> Answer:
    guild, uid = caller.key.guild_id, int(body["user_id"])
    common = dict(guild_id=guild, user_id=uid, reason=body["reason"], actor_id=None, actor_name=caller.actor_name,
                  source="api", idempotency_key=key, silent=bool(body.get("silent", False)))  # fmt: skip
    operation = body["operation"]
    if operation == "set":
        result = points.set_balance(conn, target=body["amount"], **common)
    else:
        result = (points.award if operation == "award" else points.deduct)(
            conn, amount=body["amount"], **common
        )
    change = _change(result, uid)
    if change["balance"] is None:  # a set to the balance the member had: no entry
        change["balance"] = ledger.balance(conn, guild, uid)
    return Answer(201, change)


@app.post("/entries")
def create_entry() -> Response:
    return _write("createEntry", _create_entry)


def _revert_entry(conn: psycopg.Connection, caller: Caller, key: str, body: dict) -> Answer:
    guild = caller.key.guild_id
    result = points.revert(conn, guild_id=guild, entry_id=body["entry_id"], reason=body["reason"], actor_id=None,
                           actor_name=caller.actor_name, source="api", idempotency_key=key,
                           silent=bool(body.get("silent", False)))  # fmt: skip
    return Answer(201, _change(result, result.entry.user_id))


@app.post("/entries/<entry_id>/revert")
def revert_entry(entry_id: str) -> Response:
    entry = _path_id(_BY_ID["revertEntry"], "entry_id", entry_id)
    return _write("revertEntry", _revert_entry, entry_id=entry)


@app.get("/achievements")
def list_achievements() -> Response:
    def work(conn: psycopg.Connection, caller: Caller) -> dict:
        found = achievement_definitions.list_definitions(conn, caller.key.guild_id)
        return {"achievements": [{"id": str(a.id), "name": a.name, "description": a.description,
                                  "bonus_points": a.bonus_points, "criterion": a.criterion_text, "active": a.active,
                                  "holders": a.holders} for a in found]}  # fmt: skip

    return _read("listAchievements", work)


@app.get("/rewards")
def list_rewards() -> Response:
    def work(conn: psycopg.Connection, caller: Caller) -> dict:
        now = conn.execute("SELECT now()").fetchone()[0]
        return {"rewards": [store.reward_json(r, now) for r in store.list_rewards(conn, caller.key.guild_id)]}

    return _read("listRewards", work)


def _purchase_page(found: list[store.Purchase], after: int) -> dict:
    return {"purchases": [store.purchase_json(p) for p in found],
            "next_cursor": str(found[-1].id if found else after)}  # fmt: skip


@app.get("/purchases")
def list_purchases() -> Response:
    q = _query(_BY_ID["listPurchases"])
    after = int(q["after"] or 0)
    return _read("listPurchases", lambda conn, caller: _purchase_page(
        store.purchases_after(conn, caller.key.guild_id, after, q["limit"]), after))  # fmt: skip


@app.get("/members/<user_id>/purchases")
def list_member_purchases(user_id: str) -> Response:
    endpoint = _BY_ID["listMemberPurchases"]
    uid = _path_id(endpoint, "user_id", user_id)
    q = _query(endpoint)
    after = int(q["after"] or 0)
    return _read("listMemberPurchases", lambda conn, caller: _purchase_page(
        store.purchases_after(conn, caller.key.guild_id, after, q["limit"], user_id=uid), after))  # fmt: skip


# -- the reference: public, no key ------------------------------------------------------------------
def openapi() -> dict:
    from .schema import openapi_document

    return openapi_document(ENDPOINTS, version=VERSION, server_url=PREFIX)


@app.get("/openapi.json")
def openapi_json() -> Response:
    return _json(200, openapi())


@app.get("/docs")
def docs_page() -> Response:
    doc = openapi()
    parts = [f"<h1>{html.escape(doc['info']['title'])} {html.escape(doc['info']['version'])}</h1>",
             f"<p>{html.escape(doc['info']['description'])}</p>",
             '<p>Machine-readable: <a href="openapi.json">openapi.json</a>. Every request: '
             "<code>Authorization: Bearer &lt;key&gt;</code>; every write also an <code>Idempotency-Key</code>. "
             'Errors: <code>{"error": {"code", "message"}}</code>.</p>']  # fmt: skip
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            parts.append(f"<h2><code>{method.upper()} {PREFIX}{html.escape(path)}</code></h2>")
            parts.append(
                f"<p>{html.escape(op['summary'])} (scope: {html.escape(op.get('x-scope', 'none'))})</p>"
            )
            if op.get("description"):
                parts.append(f"<p>{html.escape(op['description'])}</p>")
            for p in op.get("parameters", []):
                parts.append(f"<p>&middot; <code>{html.escape(p['name'])}</code> ({p['in']}"
                             f"{', required' if p.get('required') else ''}): "
                             f"<code>{html.escape(json.dumps(p['schema']))}</code></p>")  # fmt: skip
            if "requestBody" in op:
                schema = op["requestBody"]["content"]["application/json"]["schema"]
                parts.append(f"<pre>{html.escape(json.dumps(schema, indent=1))}</pre>")
    page = ("<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
            "<title>pointsbot API</title><style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:1rem auto;"
            "padding:0 1rem}pre,code{overflow-wrap:anywhere;white-space:pre-wrap}</style>" + "".join(parts))  # fmt: skip
    return Response(200, "text/html; charset=utf-8", page,
                    {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                     "Cache-Control": "public, max-age=300"})  # fmt: skip


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: Any) -> dict:
    return app.resolve(event, context)
