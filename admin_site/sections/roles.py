"""Roles: balance thresholds that grant a Discord role, and the role changes Discord refused."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from admin_site import web
from admin_site.sections import Section, int_param, opt_int
from pointsbot.admin import role_actions
from pointsbot.community import profiles, roles
from pointsbot.platform.errors import InvalidInput
from pointsbot.platform.ids import parse_snowflake

routes = Section()

# A page waits for Discord's list of roles at most this long (then shows what was kept).
PAGE_DISCORD_TIMEOUT_S = 3.0


def guild_roles(req: web.AdminRequest, guild_id: int, *, refresh: bool = False) -> profiles.GuildRoles:
    """The guild's roles for a page: kept in Postgres, asked of Discord once they are older than
    profiles.ROLES_MAX_AGE (one call for the page, never one per row); when Discord cannot be
    reached, what was kept, with a plain sentence saying so."""
    from pointsbot.discord.rest import get_client

    client = get_client().with_limits(PAGE_DISCORD_TIMEOUT_S, max_retry_wait=1.0)
    return profiles.guild_roles(req.db, client, guild_id, refresh=refresh)


def check_grantable(req: web.AdminRequest, guild_id: int, raw_role_id: str) -> int:
    """The role id from a form, once Discord's roles of the guild and of the bot show the bot
    can give it; otherwise InvalidInput saying why in plain words (nothing is written)."""
    role_id = parse_snowflake(raw_role_id.strip(), "The role id")
    from pointsbot.discord.rest import get_client

    bot = req.settings.discord_application_id
    if not bot:
        raise InvalidInput("The bot's application id is not configured (DISCORD_APPLICATION_ID), so the role "
                           "cannot be checked.")  # fmt: skip
    check = roles.bot_can_grant(get_client(), guild_id, role_id, bot)
    if not check.ok:
        raise InvalidInput(check.reason)
    return role_id


@routes.route("GET", "/g/<guild_id>/roles")
def roles_page(req: web.AdminRequest, guild_id: int) -> Response:
    overview = req.db.run(role_actions.overview, guild_id)
    return web.page(req, "roles.html", overview=overview, on_drop=role_actions.role_rewards.ON_DROP)


@routes.route("POST", "/g/<guild_id>/roles/thresholds")
def threshold_create(req: web.AdminRequest, guild_id: int) -> Response:
    req.back_to(f"/g/{guild_id}/roles", {"points": "points", "drops below": "on_drop", "role": "role_id",
                                          "bot": "role_id"})  # fmt: skip
    with req.about("points"):
        points = opt_int(req.form("points"), "Points")
    if points is None:
        raise InvalidInput("Give the points a member must reach.", field="points")
    on_drop = req.form("on_drop")
    # The plain checks first, so a bad form costs no call to Discord.
    if not req.form("role_id").strip():
        raise InvalidInput("Give the id of the role to grant (Server Settings > Roles > Copy Role ID).",
                           field="role_id")  # fmt: skip
    role_actions.role_rewards.check_threshold(points, req.form("role_id"), on_drop)
    role_id = check_grantable(req, guild_id, req.form("role_id"))
    threshold = req.db.run(role_actions.create_threshold, req.identity, guild_id, points=points, role_id=role_id,
                           on_drop=on_drop)  # fmt: skip
    req.flash("ok", f"Members who reach {threshold.points:,} points get the role from their next change; "
                    "those above it already get it from the next achievement check.")  # fmt: skip
    return web.redirect(req, web.url(f"/g/{guild_id}/roles"))


@routes.route("POST", "/g/<guild_id>/roles/thresholds/<threshold_id>/remove")
def threshold_remove(req: web.AdminRequest, guild_id: int, threshold_id: str) -> Response:
    req.back_to(f"/g/{guild_id}/roles")
    req.db.run(role_actions.remove_threshold, req.identity, guild_id, int_param(threshold_id))
    req.flash("ok", "Threshold removed; members who hold its role keep it.")
    return web.redirect(req, web.url(f"/g/{guild_id}/roles"))


@routes.route("POST", "/g/<guild_id>/roles/changes/<change_id>/acknowledge")
def change_acknowledge(req: web.AdminRequest, guild_id: int, change_id: str) -> Response:
    req.back_to(f"/g/{guild_id}/roles")
    seen = req.db.run(role_actions.acknowledge_change, req.identity, guild_id, int_param(change_id))
    req.flash("ok", "Marked as seen." if seen else "That change was marked as seen already.")
    return web.redirect(req, web.url(f"/g/{guild_id}/roles"))
