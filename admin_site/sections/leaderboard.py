"""Leaderboard: any period paged for admins, and the guild's public page (issue 15).

Both pages render one partial (_board.html) from one loader (community.boards.load_board).
The admin page pages by keyset (Previous / Next) and jumps to page N through the counts. The
public page, when the guild switched it on in Settings, is served without sign-in: rate-limited
per client address before anything else is read, by page number only (so a page has one
address a cache can keep, and no link carries a member's id), with a strong ETag over the page
and a short public max-age; an unknown guild and a guild that has it off get the same 404.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aws_lambda_powertools.event_handler import Response

from admin_site import web
from admin_site.sections import Section
from pointsbot.community import boards, profiles
from pointsbot.ledger import guilds
from pointsbot.platform.errors import DomainError, InvalidInput, NotFound
from pointsbot.platform.ids import format_snowflake

routes = Section()

# How long a browser or a shared cache may keep a public page without asking again; after it,
# If-None-Match gets a 304 when nothing changed.
PUBLIC_MAX_AGE_S = 60
NO_PAGE = "There is no such page."


def _page_url(path: str, period: str, keyset: bool):
    def page_url(page: int, after: str | None = None, before: str | None = None) -> str:
        query: dict[str, Any] = {
            "period": None if period == "all" else period,
            "page": None if page == 1 else page,
        }
        if keyset:
            query.update(after=after, before=before)
        return web.url(path, **query)

    return page_url


def public_path(guild_id: int) -> str:
    return f"/leaderboard/{format_snowflake(guild_id)}"


@routes.route("GET", "/g/<guild_id>/leaderboard")
def leaderboard(req: web.AdminRequest, guild_id: int) -> Response:
    def load(conn):
        board = boards.load_board(conn, guild_id, req.query("period", "all"), page=req.query("page") or 1,
                                  after=req.query("after") or None, before=req.query("before") or None)  # fmt: skip
        stale = profiles.claim_stale(conn, guild_id, [r.user_id for r in board.rows if not r.person.erased])
        public = (guilds.ensure_guild(conn, guild_id) or {}).get(boards.PUBLIC_SETTING) is True
        currency = guilds.guild_policy(conn, req.settings, guild_id).currency_name
        return board, stale, public, currency

    board, stale, public, currency = req.db.run(load)
    if stale:  # names missing or old: the worker asks Discord after this page
        profiles.request_refresh(guild_id, stale)
    path = f"/g/{format_snowflake(guild_id)}/leaderboard"
    return web.page(
        req, "leaderboard.html", board=board, currency=currency, form_action=web.url(path),
        page_url=_page_url(path, board.period.value, keyset=True),
        member_url=lambda row: web.url(f"/g/{format_snowflake(guild_id)}/members/{row.user_id}") if row.person.member else None,
        public_url=web.url(public_path(guild_id)) if public else None,
    )  # fmt: skip


# -- the public page --------------------------------------------------------------------------------
def _public_answer(
    req: web.AdminRequest, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """A plain page of its own (no session, no cookie, no guild named): 404, 429, 400."""
    html = web.render_template("public_board.html", board=None, status_code=status, message=message)
    return web.respond(None, status, html, headers={"Cache-Control": "no-store", **(headers or {})},
                       settings=req.settings)  # fmt: skip


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match: a list of tags (weak comparison, as RFC 9110 says for it) or "*"."""
    for tag in header.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


@routes.route("GET", "/leaderboard/<guild_id>", access="public")
def public_leaderboard(req: web.AdminRequest, guild_id: str) -> Response:
    settings = req.settings
    retry = req.db.run(boards.admit_client, req.client_address, limit=settings.public_board_rate_limit,
                       window_s=settings.public_board_rate_window_s)  # fmt: skip
    if retry is not None:
        return _public_answer(req, 429, f"Too many requests from your address. Try again in {retry} seconds.",
                              {"Retry-After": str(retry)})  # fmt: skip
    if not web.canonical_id(guild_id):
        return _public_answer(req, 404, NO_PAGE)
    gid = int(guild_id)

    def load(conn):
        found = boards.public_settings(conn, gid)
        if found is None:
            return None
        overrides, guild = found
        board = boards.load_board(conn, gid, req.query("period", "all"), page=req.query("page") or 1)
        return board, guild, guilds.policy_from(settings, overrides).currency_name

    try:
        loaded = req.db.run(load)
    except NotFound:  # a period this guild has not (another guild's season, a week key that is no Monday)
        return _public_answer(req, 404, NO_PAGE)
    except InvalidInput as exc:  # a page number that is not a number
        return _public_answer(req, 400, exc.message)
    except DomainError:
        return _public_answer(req, 404, NO_PAGE)
    if loaded is None:  # unknown, or off: the same answer
        return _public_answer(req, 404, NO_PAGE)
    board, guild, currency = loaded
    path = public_path(gid)
    html = web.render_template(
        "public_board.html", board=board, guild=guild, currency=currency, form_action=web.url(path),
        page_url=_page_url(path, board.period.value, keyset=False), member_url=lambda row: None,
    )  # fmt: skip
    body = html.encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:40] + '"'
    cache = {"ETag": etag, "Cache-Control": f"public, max-age={PUBLIC_MAX_AGE_S}"}
    if _etag_matches((req.event.headers or {}).get("if-none-match", ""), etag):
        return web.respond(None, 304, "", headers=cache, settings=settings)
    return web.respond(None, 200, html, headers=cache, settings=settings)
