"""Seasons: the guild's seasons (running, scheduled, past) with their dates in the guild's time
zone; start one (a scheduled start allowed, prizes for the top N: points and/or a role chosen
by name and checked with Discord, a balance reset, a channel for the final top 10), end one
early or rename it, a past season's final standings, and reverting a season's balance reset as
one batch. Every rule, message and audit line is community.seasons' (the time zone's is the
Settings page's action, admin.actions.save_guild_settings); this module only shapes the pages."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import Response

from admin_site import web
from admin_site.sections import Section, int_param, opt_int
from admin_site.sections.store import guild_roles
from pointsbot.admin import actions as admin_actions
from pointsbot.community import roles, seasons, windows
from pointsbot.platform import paging
from pointsbot.platform.db import time_left
from pointsbot.platform.errors import InvalidInput
from pointsbot.platform.ids import parse_snowflake

routes = Section()

FIELDS = ("name", "starts_at", "ends_at", "prize_places", "prize_points", "prize_role_id", "post_channel_id")
STANDINGS_PAGE_SIZE = 25
# Members per transaction when the site reverts a reset: small enough that one batch ends well
# inside the request's deadline, so the "continue" step is where the time is checked.
REVERT_BATCH = 5_000


def field_of(message: str) -> str | None:
    """Which field of the start form a refusal is about, from its words (shown next to it; None:
    above the form)."""
    text = message.lower()
    for words, field in (
        (("prize role", "role id"), "prize_role_id"),
        (("prize places", "how many places"), "prize_places"),
        (("prize points",), "prize_points"),
        (("overlap",), "ends_at"),
        (("end after it starts",), "ends_at"),
        (("start in the past",), "starts_at"),
        (("channel",), "post_channel_id"),
        (("name", "called"), "name"),
    ):
        if any(w in text for w in words):
            return field
    return None


def _zone(req: web.AdminRequest, guild_id: int) -> str:
    return req.db.run(lambda conn: windows.counting_rules(conn, guild_id).time_zone)


def _list_page(req: web.AdminRequest, guild_id: int) -> Response:
    """The seasons page. After a refused start or time zone, its form holds what was typed with
    the message next to its field (web.FormView in the template)."""
    listed = req.db.run(seasons.list_seasons, guild_id, 100)
    zone = _zone(req, guild_id)
    found = _lookups(req, guild_id)
    return web.page(
        req, "seasons.html", zone=zone,
        running=[s for s in listed if s.status == "running"],
        scheduled=sorted((s for s in listed if s.status == "scheduled"), key=lambda s: s.starts_at),
        past=[s for s in listed if s.status in ("ending", "ended")],
        role_choices=found.roles, role_names=found.role_names, zone_names=windows.time_zone_names(),
        channel_choices=found.channels,
    )  # fmt: skip


# Channels a message can be posted in: text (0) and announcement (5).
POSTABLE_CHANNEL_TYPES = (0, 5)
# What a page waits for Discord's channels (the roles are kept in Postgres: store.guild_roles), and
# for each call of a prize role's check: a page is never held long by a slow Discord (the request
# has 8 s in all, app.REQUEST_DEADLINE_S); without an answer the form takes ids instead.
LOOKUP_TIMEOUT_S = 2.0


def _page_client():
    """The container's Discord client (its rate-limit knowledge shared) with a short timeout and
    no waiting out a 429: for what a page shows."""
    from pointsbot.discord.rest import get_client

    client = copy.copy(get_client())
    client.timeout = LOOKUP_TIMEOUT_S
    client.max_retry_wait = 0.0
    return client


def guild_channels(guild_id: int, client=None) -> list[tuple[str, str]] | None:
    """(id, "#name") of the guild's text and announcement channels in Discord's order, or None
    when Discord cannot be asked (then the form takes a channel id)."""
    try:
        listed = (client or _page_client()).guild_channels(guild_id)
    except Exception:  # Discord unreachable or not configured: the id field instead
        return None
    picked = [c for c in listed if c.get("type") in POSTABLE_CHANNEL_TYPES]
    picked.sort(key=lambda c: (int(c.get("position") or 0), int(c["id"])))
    return [(str(c["id"]), "#" + str(c.get("name") or c["id"])) for c in picked]


@dataclass(frozen=True)
class Lookups:
    """What Discord says of the guild's roles and channels (None: it could not be asked)."""

    roles: list[tuple[str, str]] | None
    channels: list[tuple[str, str]] | None

    @property
    def role_names(self) -> dict[int, str]:
        return {int(rid): name for rid, name in (self.roles or [])}

    @property
    def channel_names(self) -> dict[str, str]:
        return dict(self.channels or [])


def _lookups(req: web.AdminRequest, guild_id: int) -> Lookups:
    """The guild's roles (as kept in Postgres, store.guild_roles: Discord is asked only when they
    are stale) and its channels (asked of Discord), once per request (a refused form that
    re-renders its page does not ask again)."""
    cached = getattr(req, "_season_lookups", None)
    if cached is not None:
        return cached
    try:
        client = _page_client()
    except Exception:  # not configured
        channels = None
    else:
        channels = guild_channels(guild_id, client)
    found = Lookups(guild_roles(req, guild_id), channels)
    req._season_lookups = found  # type: ignore[attr-defined]  # this request's answer
    return found


@routes.route("GET", "/g/<guild_id>/seasons")
def seasons_page(req: web.AdminRequest, guild_id: int) -> Response:
    return _list_page(req, guild_id)


def _values(req: web.AdminRequest) -> dict[str, Any]:
    values: dict[str, Any] = {k: req.form(k) for k in FIELDS}
    values["reset_balances"] = req.checkbox("reset_balances")
    return values


def _grant_check(req: web.AdminRequest, guild_id: int):
    """Whether the bot can give a prize role, asked of Discord by the domain after its plain
    checks (so a bad form costs no call to Discord)."""

    def check(role_id: int) -> roles.GrantCheck:
        bot = req.settings.discord_application_id
        if not bot:
            return roles.GrantCheck(False, "the bot's application id is not configured (DISCORD_APPLICATION_ID), "
                                           "so the role cannot be checked.")  # fmt: skip
        return roles.bot_can_grant(_page_client(), guild_id, role_id, bot)

    return check


def _start_args(req: web.AdminRequest, guild_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """The form's values as start_season's arguments; InvalidInput with the field it is about."""

    def read(field: str, parse):
        try:
            return parse()
        except InvalidInput as exc:
            raise FieldError(field, exc.message) from None

    start_text = str(values["starts_at"]).strip()
    starts_at = (
        read("starts_at", lambda: req.db.run(seasons.parse_when, guild_id, start_text))
        if start_text
        else None
    )
    if not str(values["ends_at"]).strip():
        raise FieldError("ends_at", "Give the date the season ends.")
    ends_at = read("ends_at", lambda: req.db.run(seasons.parse_when, guild_id, values["ends_at"], end=True))
    places = read("prize_places", lambda: opt_int(values["prize_places"], "The prize places")) or 0
    points = read("prize_points", lambda: opt_int(values["prize_points"], "The prize points")) or 0
    role_text = str(values["prize_role_id"]).strip()
    role_id = (
        read("prize_role_id", lambda: parse_snowflake(role_text, "The prize role id")) if role_text else None
    )
    channel_text = str(values["post_channel_id"]).strip()
    channel_id = (
        read("post_channel_id", lambda: parse_snowflake(channel_text, "The channel id"))
        if channel_text
        else None
    )
    if channel_id is not None:
        choices = _lookups(req, guild_id).channels
        if choices is not None and str(channel_id) not in dict(choices):
            raise FieldError("post_channel_id", "That channel is not one of this server's text or announcement "
                                                "channels the bot can see.")  # fmt: skip
    return {"name": values["name"], "starts_at": starts_at, "ends_at": ends_at, "prize_places": places,
            "prize_points": points, "prize_role_id": role_id, "reset_balances": bool(values["reset_balances"]),
            "post_channel_id": channel_id}  # fmt: skip


class FieldError(InvalidInput):
    """A refusal about one field of the start form."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@routes.route("POST", "/g/<guild_id>/seasons")
def season_start(req: web.AdminRequest, guild_id: int) -> Response:
    # A refusal shows the seasons page again (422) with the form as typed, the message by its field.
    req.back_to(f"/g/{guild_id}/seasons", field_of)
    values = _values(req)
    args = _start_args(req, guild_id, values)
    who = req.identity
    season = req.db.run(seasons.start_season, guild_id, actor_id=who.user_id, actor_name=who.actor_name,
                        grant_check=_grant_check(req, guild_id), **args)  # fmt: skip
    when = "now" if season.status == "running" else "as scheduled"
    req.flash("ok", f"Season “{season.name}” created; it starts {when}.")
    return web.redirect(req, web.url(f"/g/{guild_id}/seasons/{season.id}"))


@routes.route("POST", "/g/<guild_id>/seasons/time-zone")
def season_time_zone(req: web.AdminRequest, guild_id: int) -> Response:
    req.back_to(f"/g/{guild_id}/seasons")
    typed = req.form("time_zone")
    with req.about("time_zone"):
        # The same action as the Settings page's time zone: checked first, audited as a settings change.
        req.db.run(admin_actions.save_guild_settings, req.identity, guild_id, {"time_zone": typed})
    zone = _zone(req, guild_id)
    req.flash("ok", f"Weeks, months and season dates now follow {zone} (for points earned from now on).")
    return web.redirect(req, web.url(f"/g/{guild_id}/seasons"))


def _season(req: web.AdminRequest, guild_id: int, raw_id: str) -> seasons.Season:
    return req.db.run(seasons.get_season, guild_id, int_param(raw_id))


@routes.route("GET", "/g/<guild_id>/seasons/<season_id>")
def season_page(req: web.AdminRequest, guild_id: int, season_id: str) -> Response:
    season = _season(req, guild_id, season_id)
    board = None
    if season.archived:
        page_no = paging.page_number(req.query("page"))

        def load(conn):
            found = seasons.standings_page(conn, season, page_no, STANDINGS_PAGE_SIZE)
            if found.page > found.pages:
                found = seasons.standings_page(conn, season, found.pages, STANDINGS_PAGE_SIZE)
            return found

        board = req.db.run(load)
    found = _lookups(req, guild_id) if season.prize_role_id or season.post_channel_id else Lookups(None, None)
    role_names, channel_names = found.role_names, found.channel_names
    return web.page(req, "season.html", season=season, board=board, zone=_zone(req, guild_id),
                    role_names=role_names, channel_names=channel_names)  # fmt: skip


@routes.route("POST", "/g/<guild_id>/seasons/<season_id>/rename")
def season_rename(req: web.AdminRequest, guild_id: int, season_id: str) -> Response:
    sid = int_param(season_id)
    req.back_to(f"/g/{guild_id}/seasons/{sid}")  # a refusal: the page again, the typed name kept
    who = req.identity
    before = req.db.run(seasons.get_season, guild_id, sid)
    with req.about("name"):
        renamed = req.db.run(seasons.rename_season, guild_id, sid, req.form("name"), actor_id=who.user_id,
                             actor_name=who.actor_name)  # fmt: skip
    req.flash("ok", f"Season “{before.name}” is now “{renamed.name}”.")
    return web.redirect(req, web.url(f"/g/{guild_id}/seasons/{sid}"))


@routes.route("GET", "/g/<guild_id>/seasons/<season_id>/end")
def season_end_confirm(req: web.AdminRequest, guild_id: int, season_id: str) -> Response:
    season = _season(req, guild_id, season_id)
    members = 0
    if season.status == "running":
        members = req.db.run(windows.window_members, guild_id, season.key)
    channel_names = _lookups(req, guild_id).channel_names if season.post_channel_id else {}
    return web.page(req, "season_end.html", season=season, members=members, zone=_zone(req, guild_id),
                    channel_names=channel_names)  # fmt: skip


@routes.route("POST", "/g/<guild_id>/seasons/<season_id>/end")
def season_end(req: web.AdminRequest, guild_id: int, season_id: str) -> Response:
    sid = int_param(season_id)
    req.back_to(f"/g/{guild_id}/seasons/{sid}")
    who = req.identity
    before = req.db.run(seasons.get_season, guild_id, sid)
    ended = req.db.run(
        seasons.end_season_early, guild_id, sid, actor_id=who.user_id, actor_name=who.actor_name
    )
    if ended is None:
        req.flash("ok", f"Season “{before.name}” had not started; it is cancelled.")
        return web.redirect(req, web.url(f"/g/{guild_id}/seasons"))
    # The end's steps run in the worker once the grace for in-flight entries has passed.
    seasons.request_end_run(delay_seconds=seasons.END_GRACE_S + 5)
    req.flash("ok", f"Season “{ended.name}” has ended. Its final standings, prizes and reset follow within a few "
                    "minutes.")  # fmt: skip
    return web.redirect(req, web.url(f"/g/{guild_id}/seasons/{sid}"))


@routes.route("GET", "/g/<guild_id>/seasons/<season_id>/revert")
def season_revert_confirm(req: web.AdminRequest, guild_id: int, season_id: str) -> Response:
    season = _season(req, guild_id, season_id)
    summary, refusal = None, None
    try:
        summary = req.db.run(seasons.reset_summary, guild_id, season.id)
    except InvalidInput as exc:
        refusal = exc.message
    return web.page(req, "season_revert.html", season=season, summary=summary, refusal=refusal)


def _revert_budget() -> float:
    """How long this request may revert batches: 5 s, less when the request's deadline is
    nearer, keeping 2 s for the batch under way and the answer (as a bulk batch's chunks)."""
    left = time_left()
    return 5.0 if left is None else max(0.0, min(5.0, left - 2.0))


@routes.route("POST", "/g/<guild_id>/seasons/<season_id>/revert")
def season_revert(req: web.AdminRequest, guild_id: int, season_id: str) -> Response:
    sid = int_param(season_id)
    req.back_to(f"/g/{guild_id}/seasons/{sid}/revert")
    who = req.identity
    stop_at = time.monotonic() + _revert_budget()
    # revert_reset stops when fewer than 15 s are left: its clock here is this request's budget.
    report = seasons.revert_reset(
        req.db, guild_id, sid, actor_id=who.user_id, actor_name=who.actor_name, batch=REVERT_BATCH,
        time_left_s=lambda: stop_at - time.monotonic() + 15,
    )  # fmt: skip
    skipped = f" {report.skipped:,} left as they were: their balance would leave the allowed range." if report.skipped else ""  # fmt: skip
    if report.finished:
        if report.reverted or report.skipped:
            req.flash(
                "ok", f"The season's reset is reverted: {report.reverted:,} balances restored.{skipped}"
            )
        else:
            req.flash("ok", "The season's reset was reverted already; nothing changed this time.")
        return web.redirect(req, web.url(f"/g/{guild_id}/seasons/{sid}"))
    req.flash("ok", f"{report.reverted:,} balances restored so far.{skipped} Press Continue to go on.")
    return web.redirect(req, web.url(f"/g/{guild_id}/seasons/{sid}/revert"))


__all__ = ["field_of", "routes"]
