"""Your time zone: the zone every time on the site is shown in, per admin (sql/045)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from aws_lambda_powertools.event_handler import Response

from admin_site import timefmt, web
from admin_site.sections import Section
from pointsbot.admin import preferences
from pointsbot.community import windows
from pointsbot.platform.errors import InvalidInput

routes = Section()

FOLLOW_GUILD = "server"  # the form's value for "no zone of my own"


@lru_cache(maxsize=1)
def zone_names() -> tuple[str, ...]:
    """The zones the picker offers (the Settings page's list, windows.time_zone_names), read once
    per process: the tz database is a directory walk."""
    return windows.time_zone_names()


@routes.route("GET", "/g/<guild_id>/preferences")
def preferences_page(req: web.AdminRequest, guild_id: int) -> Response:
    choice = req.db.run(preferences.time_zone, req.identity, guild_id)
    return web.page(req, "preferences.html", choice=choice, zones=zone_names(), follow_guild=FOLLOW_GUILD,
                    now=datetime.now(UTC),
                    guild_zone_label=timefmt.zone_now_label(timefmt.zone(choice.guild or "UTC")))  # fmt: skip


@routes.route("POST", "/g/<guild_id>/preferences")
def preferences_save(req: web.AdminRequest, guild_id: int) -> Response:
    req.back_to(f"/g/{guild_id}/preferences")
    chosen = req.form("time_zone").strip()
    if not chosen:
        raise InvalidInput("Choose a time zone from the list.", field="time_zone")
    with req.about("time_zone"):  # a refusal: the page again, the choice kept, the message beside it
        zone = req.db.run(preferences.set_time_zone, req.identity, None if chosen == FOLLOW_GUILD else chosen)
    req.flash("ok", f"Times are now shown in {zone}." if zone else "Times now follow the server's time zone.")
    return web.redirect(req, web.url(f"/g/{guild_id}/preferences"))
