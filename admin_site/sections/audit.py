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
    action = req.query("action")

    def load(conn):
        actions = monitor.audit_actions(conn, guild_id)
        wanted = action if action in actions else ""  # the list's actions only: no free text
        page = monitor.audit_page(conn, guild_id, int_param(before) if before else None, wanted)
        return actions, wanted, page

    actions, wanted, (rows, next_before) = req.db.run(load)
    return web.page(req, "audit.html", rows=rows, next_before=next_before, action=wanted, actions=actions)
