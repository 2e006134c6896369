"""9. Guild settings: every per-server option of the bot on one page, grouped, with the guild's
roles by name. A refused value is shown again as typed, with the reason next to its field."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response

from admin_site import labels, web
from admin_site.sections import Section
from admin_site.sections.roles import guild_roles
from pointsbot.admin import actions as admin_actions
from pointsbot.community import windows
from pointsbot.ledger import KINDS, SOURCES, guilds
from pointsbot.platform.amounts import parse_whole_number
from pointsbot.platform.errors import DomainError

routes = Section()

TEXT_FIELDS = ("currency_name", "currency_singular", "time_zone")
NUMBER_FIELDS = {"max_change": "The largest single change", "daily_cap": "The daily cap"}
SWITCHES = ("allow_negative", "transfers_enabled", "dm_notifications", "public_leaderboard")
# What the weekly, monthly and season boards may count (a season reset never counts).
COUNTABLE_SOURCES = tuple(s for s in SOURCES if s not in windows.NEVER_COUNTED)
COUNTABLE_KINDS = tuple(k for k in KINDS if k not in windows.NEVER_COUNTED)
FORM = "settings"  # the form's name (web.FormView)
# The fields in the page's order: the summary at the top lists the problems so.
FIELD_ORDER = ("currency_name", "currency_singular", "accent_color", "max_change", "daily_cap", "allow_negative",
               "transfers_enabled", "dm_notifications", "public_leaderboard", "admin_role_ids", "time_zone",
               "window_excluded_sources", "window_excluded_kinds")  # fmt: skip


def _current(req: web.AdminRequest, guild_id: int) -> dict[str, Any]:
    """The form's values as the guild has them now."""

    def load(conn):
        return guilds.guild_policy(conn, req.settings, guild_id), windows.counting_rules(conn, guild_id)

    policy, counting = req.db.run(load)
    return {
        "currency_name": policy.currency_name,
        "currency_singular": policy.currency_singular,
        "currency_one": policy.currency_one,
        "accent_color": f"#{policy.accent_color:06x}",
        "max_change": str(policy.max_change),
        "daily_cap": str(policy.daily_cap),
        **{k: getattr(policy, k) for k in SWITCHES},
        "admin_role_ids": [str(r) for r in policy.admin_role_ids],
        "time_zone": counting.time_zone,
        "counted_sources": [s for s in COUNTABLE_SOURCES if s not in counting.excluded_sources],
        "counted_kinds": [k for k in COUNTABLE_KINDS if k not in counting.excluded_kinds],
        "locale": policy.locale,
    }


def _typed(form: dict[str, list[str]], current: dict[str, Any]) -> dict[str, Any]:
    """What the form sent, as typed (shown again when a value is refused). A group the form did
    not show (the role list while Discord was away) keeps the guild's current value."""

    def one(key: str, default: str = "") -> str:
        return (form.get(key) or [default])[0]

    values = dict(current)
    for key in (*TEXT_FIELDS, *NUMBER_FIELDS, "accent_color"):
        values[key] = one(key, current[key])  # a field the form lacks keeps its value
    for key in SWITCHES:
        values[key] = one(key) in ("on", "true", "1", "yes")
    if one("admin_roles_shown") == "list":
        values["admin_role_ids"] = list(form.get("admin_role_ids", []))
    elif one("admin_roles_shown") == "text":
        values["admin_role_ids_text"] = one("admin_role_ids_text")
        values["admin_role_ids"] = [p for p in one("admin_role_ids_text").replace(",", " ").split() if p]
    if one("counting_shown"):
        values["counted_sources"] = list(form.get("counted_sources", []))
        values["counted_kinds"] = list(form.get("counted_kinds", []))
    return values


def _colour(text: str) -> int:
    raw = text.strip().removeprefix("#")
    if len(raw) != 6 or any(c not in "0123456789abcdefABCDEF" for c in raw):
        raise DomainError("The card colour must be a colour written #RRGGBB, such as #5865F2.")
    return int(raw, 16)


def _changes(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The settings to store from the typed values, and a message per field that cannot be read."""
    changes: dict[str, Any] = {k: values[k] for k in (*TEXT_FIELDS, *SWITCHES, "admin_role_ids")}
    problems: dict[str, str] = {}
    for key, what in NUMBER_FIELDS.items():
        try:
            text = str(values[key]).strip()
            if not text:
                raise DomainError(f"{what} is required.")
            changes[key] = parse_whole_number(text, what)
        except DomainError as exc:
            problems[key] = exc.message
    try:
        changes["accent_color"] = _colour(str(values["accent_color"]))
    except DomainError as exc:
        problems["accent_color"] = exc.message
    changes["window_excluded_sources"] = [s for s in COUNTABLE_SOURCES if s not in values["counted_sources"]]
    changes["window_excluded_kinds"] = [k for k in COUNTABLE_KINDS if k not in values["counted_kinds"]]
    return changes, problems


def _page(req: web.AdminRequest, guild_id: int, values: dict[str, Any]) -> Response:
    roles = guild_roles(req, guild_id, refresh=req.query("roles") == "refresh")
    chosen = {str(r) for r in values["admin_role_ids"]}
    known = {str(r.id) for r in roles.choosable}
    return web.page(
        req, "settings.html", values=values, roles=roles,
        gone_roles=sorted(chosen - known) if roles.roles is not None else [],
        sources=[(s, labels.source(s)) for s in COUNTABLE_SOURCES],
        kinds=[(k, labels.kind(k)) for k in COUNTABLE_KINDS],
        time_zones=windows.time_zone_names(),
    )  # fmt: skip


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, list | tuple) or isinstance(b, list | tuple):
        return {str(x) for x in a or ()} == {str(x) for x in b or ()}
    if isinstance(a, str) and isinstance(b, str):
        return a.strip() == b.strip()
    return a == b


@routes.route("GET", "/g/<guild_id>/settings")
def settings_page(req: web.AdminRequest, guild_id: int) -> Response:
    values = _current(req, guild_id)
    if req.refused is not None and req.refused.name == FORM:  # shown again after a refusal: as typed
        values = _typed(req.refused.values, values)
    return _page(req, guild_id, values)


@routes.route("POST", "/g/<guild_id>/settings")
def settings_save(req: web.AdminRequest, guild_id: int) -> Response:
    # A refusal shows this page again (web.RefusedForm, status 422): every field as typed, each
    # problem next to its own field, nothing stored.
    req.back_to(f"/g/{guild_id}/settings")
    current = _current(req, guild_id)
    values = _typed(req.form_lists(), current)
    changes, problems = _changes(values)
    # Only what the form changes is stored: a value left as it was keeps following the deployment's
    # configuration (or the default) when the guild never set it.
    now, _ = _changes(current)
    changes = {k: v for k, v in changes.items() if k in problems or not _same(v, now.get(k))}
    # Every field is checked (each refusal beside its own field), and nothing is stored unless all pass.
    problems = {**req.db.run(admin_actions.guild_settings_problems, changes), **problems}
    if problems:
        raise web.FieldProblems({k: problems[k] for k in FIELD_ORDER if k in problems}
                                | problems)  # fmt: skip
    changed = req.db.run(admin_actions.save_guild_settings, req.identity, guild_id, changes)
    req.flash("ok", "Settings saved." if changed else "Nothing to change: the settings were already so.")
    return web.redirect(req, web.url(f"/g/{guild_id}/settings"))
