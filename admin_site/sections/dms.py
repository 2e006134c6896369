"""7. Direct messages: history, writing to members, retrying failed ones."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from admin_site import web
from admin_site.sections import Section, int_param, opt_int
from pointsbot.admin import actions as admin_actions
from pointsbot.admin import bulk, monitor
from pointsbot.community import members
from pointsbot.delivery import outbox
from pointsbot.platform.errors import InvalidInput
from pointsbot.platform.ids import parse_snowflake
from pointsbot.platform.wording import count

routes = Section()

# Which field of the DM form a refusal is about (web.AdminRequest.back_to).
DM_FIELDS = {"message": "content", "smallest balance": "min_balance", "largest balance": "max_balance",
             "email status": "email_status", "member": "to", "nobody": "to"}  # fmt: skip


@routes.route("GET", "/g/<guild_id>/dms")
def dms_page(req: web.AdminRequest, guild_id: int) -> Response:
    status = req.query("status")
    before = req.query("before")
    error = None
    try:
        rows, next_before = req.db.run(monitor.dm_page, guild_id, status=status,
                                       before=int_param(before) if before else None)  # fmt: skip
    except InvalidInput as exc:
        rows, next_before, error = [], None, exc.message
    return web.page(req, "dms.html", rows=rows, next_before=next_before, dm_status=status, error=error,
                    statuses=monitor.DM_STATUSES, form_token=bulk.new_form_token(), to=req.query("to"))  # fmt: skip


def _dm_recipients(req: web.AdminRequest, guild_id: int) -> list[int]:
    if req.form("audience") == "filter":
        query = members.MemberQuery(
            text=req.form("q"),
            min_balance=opt_int(req.form("min_balance"), "Smallest balance"),
            max_balance=opt_int(req.form("max_balance"), "Largest balance"),
            email_status=req.form("email_status"),
        )
        return req.db.run(members.matching_ids, guild_id, query)
    return [req.form_id("to", "Member")]


@routes.route("POST", "/g/<guild_id>/dms/preview")
def dm_preview(req: web.AdminRequest, guild_id: int) -> Response:
    req.back_to(f"/g/{guild_id}/dms", DM_FIELDS)
    with req.about("content"):
        content = outbox.check_content(req.form("content"))
    recipients = _dm_recipients(req, guild_id)
    if not recipients:
        raise InvalidInput("No member matches; nobody would get this message.")
    names = req.db.run(monitor.member_names, guild_id, recipients[:20])
    return web.page(req, "dm_preview.html", content=content, recipients=recipients, names=names,
                    form_token=req.form("form_token") or bulk.new_form_token())  # fmt: skip


@routes.route("POST", "/g/<guild_id>/dms/send")
def dm_send(req: web.AdminRequest, guild_id: int) -> Response:
    req.back_to(f"/g/{guild_id}/dms", DM_FIELDS)
    recipients = [parse_snowflake(r, "member id") for r in req.form_list("recipient")]
    queued = req.db.run(admin_actions.send_dms, req.identity, guild_id, recipients, req.form("content"),
                        req.form("form_token"))  # fmt: skip
    outbox.request_delivery()
    req.flash("ok", f"{count(queued, 'message')} queued." if queued else "Already queued; nothing new.")
    return web.redirect(req, web.url(f"/g/{guild_id}/dms"))


@routes.route("POST", "/g/<guild_id>/dms/retry")
def dm_retry(req: web.AdminRequest, guild_id: int) -> Response:
    req.back_to(f"/g/{guild_id}/dms")
    ids = [int_param(v) for v in req.form_list("dm_id")]
    requeued = req.db.run(admin_actions.retry_dms, req.identity, guild_id, ids or None)
    outbox.request_delivery()
    req.flash(
        "ok",
        f"{count(requeued, 'failed message')} queued again." if requeued else "No failed message to retry.",
    )
    return web.redirect(req, web.url(f"/g/{guild_id}/dms", status="failed"))
