"""8. Audit log: who changed what."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from admin_site import web
from admin_site.sections import Section, int_param
from pointsbot.admin import monitor

routes = Section()


@routes.route("GET", "/g/<guild_id>/audit")
def audit_page(req: web.AdminRequest, guild_id: int) -> Response:
    before = req.query("before")
    rows, next_before = req.db.run(monitor.audit_page, guild_id, int_param(before) if before else None,
                                   req.query("action"))  # fmt: skip
    return web.page(req, "audit.html", rows=rows, next_before=next_before, action=req.query("action"))
