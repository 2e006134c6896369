"""6. Achievements: definitions, holders, and running the check for this guild."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response

from admin_site import web
from admin_site.sections import Section, int_param
from admin_site.sections.roles import check_grantable
from pointsbot.admin import actions as admin_actions
from pointsbot.community import achievements
from pointsbot.delivery import outbox
from pointsbot.platform import paging
from pointsbot.platform.ids import parse_snowflake
from pointsbot.platform.wording import count

routes = Section()

# Which field of the achievement form a refusal is about, by its words (web.AdminRequest.back_to).
ACHIEVEMENT_FIELDS = {"description": "description", "criteri": "criterion", "rule": "criterion",
                      "bonus": "bonus_points", "days": "window_days", "role": "role_id", "balance": "threshold",
                      "points earned": "threshold", "transactions": "threshold", "places": "threshold",
                      "name": "name"}  # fmt: skip


def _achievement_fields(req: web.AdminRequest) -> dict[str, Any]:
    return {
        "name": req.form("name"),
        "description": req.form("description"),
        "criterion": req.form("criterion"),
        "threshold": req.form_int("threshold", "Threshold", required=False) or 0,
        "window_days": req.form_int("window_days", "Days", required=False),
        "bonus_points": req.form_int("bonus_points", "Bonus", required=False) or 0,
        "active": req.checkbox("active"),
        "role_id": req.form("role_id").strip() or None,
    }


def _with_checked_role(
    req: web.AdminRequest, guild_id: int, fields: dict[str, Any], current: int | None = None
) -> dict[str, Any]:
    """A role given (or changed) is checked with Discord first: the bot must be able to grant it."""
    if fields.get("role_id") is not None:
        role_id = parse_snowflake(fields["role_id"], "The role id")
        fields["role_id"] = role_id if role_id == current else check_grantable(req, guild_id, str(role_id))
    return fields


@routes.route("GET", "/g/<guild_id>/achievements")
def achievements_page(req: web.AdminRequest, guild_id: int) -> Response:
    definitions = req.db.run(achievements.list_definitions, guild_id)
    return web.page(req, "achievements.html", definitions=definitions, criteria=achievements.CRITERIA)


@routes.route("POST", "/g/<guild_id>/achievements")
def achievement_create(req: web.AdminRequest, guild_id: int) -> Response:
    req.back_to(f"/g/{guild_id}/achievements", ACHIEVEMENT_FIELDS)
    fields = _with_checked_role(req, guild_id, _achievement_fields(req))
    definition = req.db.run(admin_actions.create_achievement, req.identity, guild_id, fields)
    req.flash("ok", f"Achievement “{definition.name}” created. Members who qualify get it on the next check.")
    return web.redirect(req, web.url(f"/g/{guild_id}/achievements"))


@routes.route("GET", "/g/<guild_id>/achievements/<achievement_id>")
def achievement_page(req: web.AdminRequest, guild_id: int, achievement_id: str) -> Response:
    aid = int_param(achievement_id)
    page_no = paging.page_number(req.query("page"))

    def load(conn):
        return achievements.get_definition(conn, guild_id, aid), achievements.holders(
            conn, guild_id, aid, page_no, 50
        )

    definition, holders = req.db.run(load)
    return web.page(
        req, "achievement.html", definition=definition, holders=holders, criteria=achievements.CRITERIA
    )


@routes.route("POST", "/g/<guild_id>/achievements/<achievement_id>")
def achievement_edit(req: web.AdminRequest, guild_id: int, achievement_id: str) -> Response:
    aid = int_param(achievement_id)
    toggle = req.form("toggle")
    req.back_to(
        f"/g/{guild_id}/achievements" if toggle else f"/g/{guild_id}/achievements/{aid}", ACHIEVEMENT_FIELDS
    )
    changes: dict[str, Any] = {"active": toggle == "on"} if toggle else _achievement_fields(req)
    if not toggle:
        current = req.db.run(achievements.get_definition, guild_id, aid).role_id
        changes = _with_checked_role(req, guild_id, changes, current)
    after = req.db.run(admin_actions.edit_achievement, req.identity, guild_id, aid, changes)
    req.flash("ok", f"“{after.name}” saved" + ("" if after.active else " (switched off)") + ".")
    return web.redirect(req, web.url(f"/g/{guild_id}/achievements" + ("" if toggle else f"/{aid}")))


@routes.route("POST", "/g/<guild_id>/achievements-check")
def achievements_check(req: web.AdminRequest, guild_id: int) -> Response:
    """ "Run the check now": first a preview of who would get what (nothing is paid), then the
    confirm (achievements_check_confirm), bound to the preview by its token."""
    req.back_to(f"/g/{guild_id}/achievements")
    preview = req.db.run(achievements.preview_guild_check, guild_id)
    return _check_preview(req, preview)


def _check_preview(req: web.AdminRequest, preview: achievements.CheckPreview, status: int = 200,
                   changed: str | None = None) -> Response:  # fmt: skip
    return web.page(req, "achievement_check.html", status=status, preview=preview, changed=changed)


@routes.route("POST", "/g/<guild_id>/achievements-check/confirm")
def achievements_check_confirm(req: web.AdminRequest, guild_id: int) -> Response:
    req.back_to(f"/g/{guild_id}/achievements")
    try:
        preview, granted = req.db.run(
            admin_actions.run_achievement_check, req.identity, guild_id, req.form("token"), req.settings
        )
    except achievements.CheckChanged as exc:  # the new state, to look at before anything is paid
        return _check_preview(req, req.db.run(achievements.preview_guild_check, guild_id), 409, exc.message)
    outbox.request_delivery()
    if any(g.role_change_id is not None for g in granted):
        from pointsbot.community import roles

        roles.request_role_delivery()
    points = sum(g.bonus_points for g in granted)
    req.flash("ok", f"{count(len(granted), 'achievement')} awarded to {count(preview.members, 'member')}, "
                    f"{points:,} points in all." if granted else "Nobody qualified for anything new.")  # fmt: skip
    return web.redirect(req, web.url(f"/g/{guild_id}/achievements"))
