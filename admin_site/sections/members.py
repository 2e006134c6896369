"""4. Members: search, profiles, edits, data export and erasure."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aws_lambda_powertools.event_handler import Response

from admin_site import web
from admin_site.sections import Section, opt_int
from admin_site.sparkline import sparkline
from pointsbot.admin import actions as admin_actions
from pointsbot.admin import bulk, member_view, monitor
from pointsbot.community import members
from pointsbot.platform import paging
from pointsbot.platform.errors import DomainError
from pointsbot.platform.ids import format_snowflake, parse_snowflake

routes = Section()


@routes.route("GET", "/g/<guild_id>/members")
def members_page(req: web.AdminRequest, guild_id: int) -> Response:
    error, result = None, None
    form = req.query_dict
    try:
        query = members.MemberQuery(
            text=form.get("q", ""),
            min_balance=opt_int(form.get("min_balance"), "Smallest balance"),
            max_balance=opt_int(form.get("max_balance"), "Largest balance"),
            achievement_id=opt_int(form.get("achievement"), "Achievement"),
            email_status=form.get("email_status", ""),
        )
        page_no = paging.page_number(form.get("page"))
        after = members.parse_after(form.get("after"))
        before = None if after else members.parse_after(form.get("before"))
        result = req.db.run(members.search, guild_id, query, page_no, after, before)
    except DomainError as exc:  # a bad value, or a number beyond any range: shown with the form
        error = exc.message
    definitions = req.db.run(monitor.achievement_names, guild_id)
    return web.page(req, "members.html", result=result, form=form, error=error, definitions=definitions,
                    statuses=members.EMAIL_STATUSES, bulk_token=bulk.new_form_token())  # fmt: skip


@routes.route("POST", "/g/<guild_id>/members")
def member_create(req: web.AdminRequest, guild_id: int) -> Response:
    req.back_to(f"/g/{guild_id}/members", {"already exists": "user_id", "name": "display_name"})
    user_id = req.form_id("user_id", "Discord id")
    req.db.run(admin_actions.create_member, req.identity, guild_id, user_id, req.form("display_name"))
    req.flash("ok", f"Member {format_snowflake(user_id)} created.")
    return web.redirect(req, web.url(f"/g/{guild_id}/members/{user_id}"))


def _member_id(raw: str) -> int:
    try:
        if not web.canonical_id(raw):
            raise DomainError("not an id as the site writes it")
        return parse_snowflake(raw, "member id")
    except DomainError:
        raise web.Refused(404, "There is no such member.") from None


@routes.route("GET", "/g/<guild_id>/members/<user_id>")
def member_page(req: web.AdminRequest, guild_id: int, user_id: str) -> Response:
    uid = _member_id(user_id)
    page_no = paging.page_number(req.query("page"))
    view = req.db.run(member_view.member_view, guild_id, uid, page_no)
    return web.page(req, "member.html", view=view, member=view.member, mstats=view.stats, history=view.history,
                    earned=view.earned, submissions=view.submissions, dms=view.dms, role_changes=view.role_changes,
                    spark=sparkline(view.trail), now=datetime.now(UTC), form_token=bulk.new_form_token(),
                    revert_token=bulk.new_form_token())  # fmt: skip


@routes.route("POST", "/g/<guild_id>/members/<user_id>")
def member_edit(req: web.AdminRequest, guild_id: int, user_id: str) -> Response:
    uid = _member_id(user_id)
    req.back_to(f"/g/{guild_id}/members/{uid}", {"email": "email", "display name": "display_name",
                                                  "display_name": "display_name", "notes": "notes"})  # fmt: skip
    changes = {
        "display_name": req.form("display_name"),
        "email": req.form("email"),
        "notes": req.form("notes"),
        "dm_opt_out": req.checkbox("dm_opt_out"),
    }
    changed = req.db.run(admin_actions.edit_member, req.identity, guild_id, uid, changes)
    req.flash("ok", "Profile saved." if changed else "Nothing to change.")
    return web.redirect(req, web.url(f"/g/{guild_id}/members/{uid}"))


# A POST (with the CSRF token) though it only reads: the export is written to the audit log,
# and nothing is written on GET.
@routes.route("POST", "/g/<guild_id>/members/<user_id>/export.json")
def member_export(req: web.AdminRequest, guild_id: int, user_id: str) -> Response:
    uid = _member_id(user_id)
    data = req.db.run(admin_actions.export_member, req.identity, guild_id, uid)
    return web.respond(req, 200, json.dumps(data, indent=2), "application/json",
                       headers={"Content-Disposition": f'attachment; filename="member-{uid}.json"'})  # fmt: skip


@routes.route("POST", "/g/<guild_id>/members/<user_id>/erase")
def member_erase(req: web.AdminRequest, guild_id: int, user_id: str) -> Response:
    uid = _member_id(user_id)
    req.back_to(f"/g/{guild_id}/members/{uid}", {"confirm": "confirm"})
    req.db.run(admin_actions.erase_member, req.identity, guild_id, uid, req.form("confirm"))
    req.flash("ok", "Personal data erased; the ledger entries and the balance stay.")
    return web.redirect(req, web.url(f"/g/{guild_id}/members/{uid}"))
