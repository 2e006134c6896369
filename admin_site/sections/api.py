"""API: the guild's API keys (made here, shown once, revocable) and, later, its webhooks."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from admin_site import web
from admin_site.sections import Section, int_param
from pointsbot.community import api_keys

routes = Section()


def _keys_page(req: web.AdminRequest, guild_id: int, new_key: api_keys.NewKey | None = None) -> Response:
    keys = req.db.run(api_keys.list_keys, guild_id)
    return web.page(req, "api.html", keys=keys, new_key=new_key, scopes=api_keys.SCOPES)


@routes.route("GET", "/g/<guild_id>/api")
def api_page(req: web.AdminRequest, guild_id: int) -> Response:
    return _keys_page(req, guild_id)


@routes.route("POST", "/g/<guild_id>/api/keys")
def key_create(req: web.AdminRequest, guild_id: int) -> Response:
    req.back_to(f"/g/{guild_id}/api", {"choose what": "scope", "name": "name"})
    who = req.identity
    new_key = req.db.run(api_keys.create_key, guild_id, name=req.form("name"), scopes=req.form_list("scope"),
                         actor_id=who.user_id, actor_name=who.actor_name)  # fmt: skip
    # The key itself is on this answer and nowhere else (no redirect: a flash would store it).
    return _keys_page(req, guild_id, new_key)


@routes.route("POST", "/g/<guild_id>/api/keys/<key_id>/revoke")
def key_revoke(req: web.AdminRequest, guild_id: int, key_id: str) -> Response:
    req.back_to(f"/g/{guild_id}/api")
    who = req.identity
    key = req.db.run(api_keys.revoke_key, guild_id, int_param(key_id), actor_id=who.user_id,
                     actor_name=who.actor_name)  # fmt: skip
    req.flash("ok", f"Key “{key.name}” ({key.prefix}…) is revoked: requests with it are refused from now on.")
    return web.redirect(req, web.url(f"/g/{guild_id}/api"))
