"""1. Dashboard: the guild's figures, charts over 7/30/90 days, top earners, recent entries."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aws_lambda_powertools.event_handler import Response
from markupsafe import Markup

from admin_site import charts, timefmt, web
from admin_site.sections import Section
from pointsbot.admin import preferences, stats
from pointsbot.community import roles
from pointsbot.platform.errors import InvalidInput

routes = Section()


def _days(req: web.AdminRequest) -> int:
    text = req.query("days", str(stats.CHART_DAYS)).strip()
    if text not in {str(d) for d in stats.CHART_PERIODS}:
        raise InvalidInput(stats.PERIOD_REFUSAL)
    return int(text)


def _board(req: web.AdminRequest) -> str:
    text = req.query("board", "all").strip()
    if text not in stats.BOARD_PERIODS:
        raise InvalidInput(stats.BOARD_REFUSAL)
    return text


def _charts(series: list[stats.DayTotal], dms: list[stats.DayDms]) -> dict[str, Markup]:
    """The three charts, each as its finished <figure> (charts.figure), by name: points, active, dms."""
    days = [t.day for t in series]
    points = charts.bar_chart(
        "Points issued and removed per day",
        days,
        [charts.Series("issued", "s-in", [t.issued for t in series]),
         charts.Series("removed", "s-out", [t.removed for t in series])],
        describe=lambda d, v: f"{timefmt.day(d)} (UTC day): {v[0]:,} issued, {v[1]:,} removed, net {v[0] - v[1]:+,}",
    )  # fmt: skip
    active = charts.bar_chart(
        "Active members per day",
        days,
        [charts.Series("active members", "s-active", [t.active_members for t in series])],
        describe=lambda d, v: f"{timefmt.day(d)} (UTC day): {v[0]:,} active members",
    )
    delivery = charts.bar_chart(
        "DM delivery outcomes per day",
        [d.day for d in dms],
        [charts.Series("sent", "s-sent", [d.sent for d in dms]),
         charts.Series("failed", "s-failed", [d.failed for d in dms]),
         charts.Series("on their way", "s-wait", [d.waiting for d in dms])],
        stacked=True,
        describe=lambda d, v: f"{timefmt.day(d)} (UTC day): {v[0]:,} sent, {v[1]:,} failed, {v[2]:,} on their way",
    )  # fmt: skip
    drawn = {"points": points, "active": active, "dms": delivery}
    return {name: charts.figure(f"chart-{name}", chart) for name, chart in drawn.items()}


@routes.route("GET", "/g/<guild_id>/")
def dashboard(req: web.AdminRequest, guild_id: int) -> Response:
    days, board = _days(req), _board(req)

    def load(conn):
        now = stats.transaction_now(conn)  # one now() for the three reads (one transaction)
        return (stats.figures(conn, guild_id, now), stats.daily_series(conn, guild_id, days, now),
                stats.dm_series(conn, guild_id, days, now), stats.recent_transactions(conn, guild_id),
                roles.unseen_refusal_count(conn, guild_id), stats.top_earners(conn, guild_id, board))  # fmt: skip

    figures, series, dms, recent, refused_roles, top = req.db.run(load)
    # The purchases to hand over are the menu's count, which web.page reads for every page.
    return web.page(req, "dashboard.html", figures=figures, charts=_charts(series, dms), days=days,
                    periods=stats.CHART_PERIODS, board=board, top=top, now=datetime.now(UTC),
                    meters=charts.meters([r.balance for r in top.rows]), recent=recent,
                    refused_roles=refused_roles)  # fmt: skip


@routes.route("GET", "/g/<guild_id>/stats.json")
def dashboard_json(req: web.AdminRequest, guild_id: int) -> Response:
    def load(conn):
        return stats.figures(conn, guild_id), preferences.time_zone(conn, req.identity, guild_id)

    figures, zone = req.db.run(load)
    data = {**figures.as_json(), "as_of": timefmt.when(datetime.now(UTC), timefmt.zone(zone.zone))}
    return web.respond(req, 200, json.dumps(data), "application/json")
