"""9. Guild settings: this server's limits and switches."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response

from admin_site import web
from admin_site.sections import Section
from pointsbot.admin import actions as admin_actions
from pointsbot.ledger import guilds

routes = Section()


@routes.route("GET", "/g/<guild_id>/settings")
def settings_page(req: web.AdminRequest, guild_id: int) -> Response:
    policy = req.db.run(guilds.guild_policy, req.settings, guild_id)
    # What an admin set on this page (the guild's settings also keep e.g. its role thresholds).
    overrides = {
        k: v for k, v in req.db.run(guilds.ensure_guild, guild_id).items() if k in guilds.OVERRIDABLE
    }
    return web.page(req, "settings.html", policy=policy, overrides=overrides)


@routes.route("POST", "/g/<guild_id>/settings")
def settings_save(req: web.AdminRequest, guild_id: int) -> Response:
    req.back_to(f"/g/{guild_id}/settings")
    changes: dict[str, Any] = {
        "currency_name": req.form("currency_name"),
        "currency_singular": req.form("currency_singular"),
        "max_change": req.form_int("max_change", "Largest single change"),
        "daily_cap": req.form_int("daily_cap", "Daily cap"),
        "allow_negative": req.checkbox("allow_negative"),
        "transfers_enabled": req.checkbox("transfers_enabled"),
        "dm_notifications": req.checkbox("dm_notifications"),
    }
    req.db.run(admin_actions.save_guild_settings, req.identity, guild_id, changes)
    req.flash("ok", "Settings saved.")
    return web.redirect(req, web.url(f"/g/{guild_id}/settings"))
