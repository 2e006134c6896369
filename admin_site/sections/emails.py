"""5. Email submissions: the review queue, approve or reject."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from admin_site import web
from admin_site.sections import Section, int_param
from pointsbot.admin import actions as admin_actions
from pointsbot.admin import bulk, monitor
from pointsbot.community import emails
from pointsbot.delivery import outbox
from pointsbot.platform import paging

routes = Section()


@routes.route("GET", "/g/<guild_id>/emails")
def email_queue(req: web.AdminRequest, guild_id: int) -> Response:
    page_no = paging.page_number(req.query("page"))
    queue = req.db.run(emails.pending, guild_id, page_no, 25)
    names = req.db.run(monitor.member_names, guild_id, [s.user_id for s in queue.submissions])
    return web.page(req, "emails.html", queue=queue, names=names, form_token=bulk.new_form_token)


@routes.route("POST", "/g/<guild_id>/emails/<submission_id>/<decision>")
def email_decide(req: web.AdminRequest, guild_id: int, submission_id: str, decision: str) -> Response:
    req.back_to(f"/g/{guild_id}/emails", {"bonus": "bonus", "note": "note"})
    sid = int_param(submission_id)
    if decision not in ("approve", "reject"):
        raise web.Refused(404, "There is no such page.")
    result = req.db.run(
        admin_actions.review_email, req.identity, guild_id, sid, approve=decision == "approve", note=req.form("note"),
        bonus_points=req.form_int("bonus", "Bonus", required=False) or 0, form_token=req.form("form_token"),
        settings=req.settings,
    )  # fmt: skip
    outbox.request_delivery()
    word = "approved" if decision == "approve" else "rejected"
    req.flash("ok", f"Submission #{sid} {word}; the member gets a DM." if not result.replayed
              else f"Submission #{sid} was already {word}; nothing changed.")  # fmt: skip
    return web.redirect(req, web.url(f"/g/{guild_id}/emails"))
