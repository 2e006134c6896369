"""1. Dashboard: the guild's figures, the 30-day chart, recent entries."""

from __future__ import annotations

import json

from aws_lambda_powertools.event_handler import Response

from admin_site import web
from admin_site.sections import Section
from pointsbot.admin import stats
from pointsbot.community import roles, store

routes = Section()


@routes.route("GET", "/g/<guild_id>/")
def dashboard(req: web.AdminRequest, guild_id: int) -> Response:
    def load(conn):
        series = stats.daily_series(conn, guild_id)
        return (stats.figures(conn, guild_id), series, stats.recent_transactions(conn, guild_id),
                roles.unseen_refusal_count(conn, guild_id),
                store.list_redemptions(conn, guild_id, state="pending", page_size=1).total)  # fmt: skip

    figures, series, recent, refused_roles, pending_redemptions = req.db.run(load)
    return web.page(req, "dashboard.html", figures=figures, chart=stats.chart(series), recent=recent,
                    refused_roles=refused_roles, pending_redemptions_figure=pending_redemptions)  # fmt: skip


@routes.route("GET", "/g/<guild_id>/stats.json")
def dashboard_json(req: web.AdminRequest, guild_id: int) -> Response:
    figures = req.db.run(stats.figures, guild_id)
    return web.respond(req, 200, json.dumps(figures.as_json()), "application/json")
