"""2. Points: one member's change or revert, and bulk changes from a CSV or a search."""

from __future__ import annotations

import json

from aws_lambda_powertools.event_handler import Response

from admin_site import web
from admin_site.sections import Section, int_param
from pointsbot.admin import bulk
from pointsbot.delivery import outbox
from pointsbot.platform.db import time_left
from pointsbot.platform.errors import InsufficientBalance, LimitExceeded, NotFound, ReasonRequired
from pointsbot.platform.ids import format_snowflake

routes = Section()

# Which field of a points form a refusal is about (web.AdminRequest.back_to).
CHANGE_FIELDS = {ReasonRequired: "reason", LimitExceeded: "amount", InsufficientBalance: "amount",
                 "reason": "reason", "operation": "operation", "amount": "amount", "below zero": "amount",
                 "member": "member"}  # fmt: skip
REVERT_FIELDS = {NotFound: "entry_id", "entry": "entry_id", "reason": "reason"}
BULK_FIELDS = {"row": "csv_text", "member": "csv_text", "reason": "reason", "amount": "amount",
               "operation": "operation"}  # fmt: skip


@routes.route("GET", "/g/<guild_id>/points")
def points_page(req: web.AdminRequest, guild_id: int) -> Response:
    return web.page(req, "points.html", form_token=bulk.new_form_token(), bulk_token=bulk.new_form_token(),
                    member=req.query("member"), picked=req.query("picked"))  # fmt: skip


@routes.route("POST", "/g/<guild_id>/points")
def points_change(req: web.AdminRequest, guild_id: int) -> Response:
    back = req.form("back") or f"/g/{guild_id}/points"
    req.back_to(back if back.startswith("/g/") else f"/g/{guild_id}/points", CHANGE_FIELDS)
    user_id = req.form_id("member", "Member")
    amount = req.form_int("amount", "Amount")
    outcome = req.db.run(
        bulk.change_points, req.identity, guild_id=guild_id, user_id=user_id, operation=req.form("operation"),
        amount=amount, reason=req.form("reason"), silent=req.checkbox("silent"),
        form_token=req.form("form_token"), settings=req.settings,
    )  # fmt: skip
    outbox.request_delivery()
    if outcome.unchanged:  # the same words on a replay of the form: it is the same request
        req.flash(
            "ok",
            f"{format_snowflake(user_id)} already has {outcome.policy.points(amount)} - nothing to change.",
        )
        return web.redirect(req, web.url(f"/g/{guild_id}/members/{user_id}"))
    entry = outcome.result.entry
    if outcome.result.replayed:
        req.flash("ok", f"That form was already submitted (entry #{entry.id}); nothing changed this time.")
    else:
        req.flash("ok", f"Done: {entry.amount:+,} for {format_snowflake(user_id)}, balance now {entry.balance_after:,} "
                        f"(entry #{entry.id}).")  # fmt: skip
    return web.redirect(req, web.url(f"/g/{guild_id}/members/{user_id}"))


@routes.route("POST", "/g/<guild_id>/points/revert")
def points_revert(req: web.AdminRequest, guild_id: int) -> Response:
    back = req.form("back")
    req.back_to(back if back.startswith("/g/") else f"/g/{guild_id}/transactions", REVERT_FIELDS)
    entry_id = req.form_int("entry_id", "Entry")
    result = req.db.run(
        bulk.revert_entry, req.identity, guild_id=guild_id, entry_id=entry_id,
        reason=req.form("reason") or f"revert of entry #{entry_id}", silent=req.checkbox("silent"),
        form_token=req.form("form_token"), settings=req.settings,
    )  # fmt: skip
    outbox.request_delivery()
    if result.replayed:
        req.flash("ok", f"Entry #{entry_id} was already reverted by this form; nothing changed this time.")
    else:
        req.flash("ok", f"Entry #{entry_id} reverted (new entry #{result.entries[0].id}).")
    return web.redirect(req, web.url(back if back.startswith("/g/") else f"/g/{guild_id}/transactions"))


def _bulk_budget() -> float:
    """How long a request may apply a batch's chunks: 5 s, less when the request's deadline
    (app.REQUEST_DEADLINE_S) is nearer, keeping 2 s for the chunk under way and the answer. The
    rest is applied by the progress page's "continue" requests."""
    left = time_left()
    return 5.0 if left is None else max(0.0, min(5.0, left - 2.0))


def _bulk_rows(req: web.AdminRequest) -> list[bulk.BulkRow]:
    picked = req.form_list("user_id")
    if picked:
        return bulk.rows_for_members(picked, req.form("amount"), req.form("reason"))
    text = req.file_text("csv_file") or req.form("csv_text")
    return bulk.parse_csv(text)


@routes.route("POST", "/g/<guild_id>/bulk/preview")
def bulk_preview(req: web.AdminRequest, guild_id: int) -> Response:
    req.back_to(req.form("back") if req.form("back").startswith(f"/g/{guild_id}/members") else f"/g/{guild_id}/points",
                BULK_FIELDS)  # fmt: skip
    rows = _bulk_rows(req)
    operation, silent = req.form("operation"), req.checkbox("silent")
    preview = req.db.run(bulk.check_rows, guild_id, operation, rows, default_reason=req.form("reason"),
                         silent=silent, settings=req.settings)  # fmt: skip
    csv_text = (
        "\n".join(f"{r.user_id},{r.amount},{r.reason}" for r in rows) if req.form_list("user_id") else None
    )
    return web.page(req, "bulk_preview.html", preview=preview, rows=rows,
                    csv_text=csv_text or req.file_text("csv_file") or req.form("csv_text"),
                    default_reason=req.form("reason"), form_token=req.form("form_token") or bulk.new_form_token(),
                    nothing_to_change=bulk.NOTHING_TO_CHANGE)  # fmt: skip


@routes.route("POST", "/g/<guild_id>/bulk/apply")
def bulk_apply(req: web.AdminRequest, guild_id: int) -> Response:
    req.back_to(f"/g/{guild_id}/points", BULK_FIELDS)
    rows = bulk.parse_csv(req.form("csv_text"))
    preview = req.db.run(bulk.check_rows, guild_id, req.form("operation"), rows,
                         default_reason=req.form("reason"), silent=req.checkbox("silent"), settings=req.settings)  # fmt: skip
    batch = req.db.run(bulk.start_batch, req.identity, guild_id, preview, req.form("form_token"))
    batch = bulk.continue_batch(
        req.db.run, guild_id, batch.id, budget_s=_bulk_budget(), settings=req.settings
    )
    outbox.request_delivery()
    return web.redirect(req, web.url(f"/g/{guild_id}/bulk/{batch.id}"))


@routes.route("GET", "/g/<guild_id>/bulk/<batch_id>")
def bulk_progress(req: web.AdminRequest, guild_id: int, batch_id: str) -> Response:
    batch = req.db.run(bulk.get_batch, guild_id, token_or_id=int_param(batch_id))
    return web.page(req, "bulk_progress.html", batch=batch)


@routes.route("GET", "/g/<guild_id>/bulk/<batch_id>/status.json")
def bulk_status(req: web.AdminRequest, guild_id: int, batch_id: str) -> Response:
    batch = req.db.run(bulk.get_batch, guild_id, token_or_id=int_param(batch_id))
    return web.respond(req, 200, json.dumps({"done": batch.done, "failed": batch.failed, "total": batch.total,
                                             "percent": batch.percent, "finished": batch.finished}),
                       "application/json")  # fmt: skip


@routes.route("POST", "/g/<guild_id>/bulk/<batch_id>/continue")
def bulk_continue(req: web.AdminRequest, guild_id: int, batch_id: str) -> Response:
    batch = bulk.continue_batch(
        req.db.run, guild_id, int_param(batch_id), budget_s=_bulk_budget(), settings=req.settings
    )
    outbox.request_delivery()
    if req.form("format") == "json":
        return web.respond(req, 200, json.dumps({"done": batch.done, "failed": batch.failed, "total": batch.total,
                                                 "percent": batch.percent, "finished": batch.finished}),
                           "application/json")  # fmt: skip
    return web.redirect(req, web.url(f"/g/{guild_id}/bulk/{batch.id}"))
