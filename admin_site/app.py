"""The admin site, a Lambda function of its own: Powertools' HTTP API resolver, Jinja2 pages.

The routes live in sections/, one module per section of the site. This module is the gate:
every route is registered here behind the checks its access level needs (sign-in, guild access,
CSRF), decided in this one place before any route runs, and here are the error pages.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from admin_site import web
from admin_site.sections import (
    Route,
    Section,
    achievements,
    api,
    audit,
    dashboard,
    dms,
    emails,
    leaderboard,
    members,
    points,
    preferences,
    roles,
    seasons,
    settings,
    signin,
    store,
    transactions,
    webhooks,
)
from pointsbot.platform.db import DatabaseUnavailable, DeadlineExceeded, run_within
from pointsbot.platform.errors import DomainError
from pointsbot.platform.observability import logger

app = APIGatewayHttpResolver(strip_prefixes=[web.PREFIX])

# Every request of the site, from reading the session to the last byte of the page, has this long
# (`db.run_within`). A database that hangs (its processes stopped, a peer that takes bytes and
# never answers) honours neither its connect nor its statement timeout, and the request used to
# wait for API Gateway's 30 s; past the deadline the connection in use is cut (the server rolls
# back what it was not told to commit) and the person gets the 503 page. Why 8 s: above the site's
# own statement timeout (DB_STATEMENT_TIMEOUT_MS, 5 s), so a statement that is merely slow is
# ended by Postgres with its own answer and the cut stays for a server that answers nothing; it
# leaves room for a bulk apply's chunks (which stop in time, see sections/points.py) and for a
# Discord sign-in's three calls (2 s each at most); and it is far below API Gateway's 30 s, near
# the 10 s after which a person no longer waits for a page.
REQUEST_DEADLINE_S = 8.0


# Every route of the site; the tests walk it so a new route cannot skip the access checks.
ROUTES: list[web.RouteSpec] = []
# The pages (GET routes) by the pattern of their path: a refused form's page is shown again.
_PAGES: list[tuple[re.Pattern[str], Route]] = []


def _behind_the_gate(route: Route) -> None:
    """Register a route behind the checks its access level needs.

    public: anyone (sign-in pages, static files); signed_in: a session with an identity;
    guild: signed in AND allowed to manage the guild in the path. Every POST needs the
    session's CSRF token, public or not.
    """
    method, path = route.spec.method, route.spec.path
    ROUTES.append(route.spec)
    if method == "GET":
        _PAGES.append((re.compile("^" + re.sub(r"<(\w+)>", r"(?P<\1>[^/]+)", path) + "$"), route))

    @functools.wraps(route.fn)
    def guarded(**params: str) -> Response:
        req = web.load_request(app.current_event)
        app.append_context(admin_request=req)
        return _run(route, req, params)

    app.route(path, method)(guarded)


def _run(route: Route, req: web.AdminRequest, params: dict[str, Any]) -> Response:
    """The gate's checks for the route's access level, then the route."""
    method, access = route.spec.method, route.spec.access
    if access != "public" and (req.session is None or not req.session.signed_in):
        if method == "GET":
            return web.sign_in_redirect(req)
        raise web.Refused(403, "You are not signed in (or your session has ended). Sign in again.")
    if method == "POST":
        web.check_csrf(req)
    if access == "guild":
        params["guild_id"] = web.check_guild(req, params["guild_id"])
    return route.fn(req, **params)


def _page_again(req: web.AdminRequest, refused: web.RefusedForm) -> Response | None:
    """The page a refused POST came from (req.back), rendered again in the POST's answer with
    the refused form (web.RefusedForm); None when `back` is not a page of the site. The page
    goes through the gate's checks again, as if the browser had asked for it."""
    assert req.back is not None
    target = urlsplit(req.back)
    if not target.path.startswith(web.PREFIX + "/"):
        return None
    inner = target.path[len(web.PREFIX) :]
    for pattern, route in _PAGES:
        match = pattern.match(inner)
        if match is None:
            continue
        query = dict(parse_qsl(target.query, keep_blank_values=True))
        raw = dict(req.event.raw_event)
        context = dict(raw.get("requestContext") or {})
        context["http"] = {**(context.get("http") or {}), "method": "GET", "path": target.path}
        raw.update(rawPath=target.path, rawQueryString=target.query, queryStringParameters=query or None,
                   body=None, isBase64Encoded=False, requestContext=context)  # fmt: skip
        again = dataclasses.replace(req, event=APIGatewayProxyEventV2(raw), back=None, refused=refused,
                                    fields_by_error={}, _form=None, _files={})  # fmt: skip
        app.append_context(admin_request=again)
        return _run(route, again, dict(match.groupdict()))
    return None


def _req() -> web.AdminRequest | None:
    return app.context.get("admin_request")


def _error_page(status: int, message: str, *, with_session: bool = True) -> Response:
    """The error page; without the session's parts (flashes, guild names) when the database
    is what failed, so the page itself needs no database."""
    req = _req()
    if req is None or not with_session:
        return web.respond(None, status, web.render_template("error.html", status_code=status, message=message,
                                                             identity=None, flashes=[], guilds=[]))  # fmt: skip
    return web.page(req, "error.html", status=status, status_code=status, message=message)


@app.exception_handler(web.Refused)
def _refused(exc: web.Refused) -> Response:
    return _error_page(exc.status, exc.message)


@app.exception_handler(web.SignInNeeded)
def _sign_in_needed(exc: web.SignInNeeded) -> Response:
    return _error_page(403, "You are not signed in (or your session has ended). Sign in again.")


@app.exception_handler(DomainError)
def _domain_error(exc: DomainError) -> Response:
    """A rule said no: the form's page again with what was typed and the message next to the
    field (status 422), or a page saying it."""
    req = _req()
    if req is not None and req.method == "POST" and req.back and req.session is not None:
        refused = req.refusal(exc)
        try:
            shown = _page_again(req, refused)
        except (web.Refused, DomainError):  # the page itself cannot be shown: the message alone
            shown = None
        app.append_context(admin_request=req)
        if shown is not None and not 300 <= shown.status_code < 400:  # a page, not a redirect
            return shown
        req.flash("error", " ".join(refused.errors.values()))
        return web.redirect(req, req.back)
    return _error_page(400, exc.message)


DATABASE_NOT_ANSWERING = "The database is not answering right now. Please try again in a minute."


@app.exception_handler(DatabaseUnavailable)
def _db_down(exc: DatabaseUnavailable) -> Response:
    logger.error("database unavailable", extra={"error": str(exc)})
    return _error_page(503, DATABASE_NOT_ANSWERING, with_session=False)


@app.exception_handler(web.UnsafeHeader)
def _unsafe_header(exc: web.UnsafeHeader) -> Response:
    # Input validation should have stopped this earlier; logged as an error so it gets fixed.
    logger.error("unsafe response header refused", extra={"error": str(exc)})
    return _error_page(400, "That address cannot be followed: it holds characters a web address cannot have.")


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response:
    logger.exception("admin site error")
    return _error_page(500, "Something went wrong on our side. It has been logged.", with_session=False)


@app.not_found
def _not_found(exc: Exception) -> Response:
    return web.respond(None, 404, web.render_template("error.html", status_code=404, message="There is no such page.",
                                                      identity=None, flashes=[], guilds=[]))  # fmt: skip


# -- the sections, in the order of the site's menu, every route behind the gate -----------------
SECTIONS: tuple[Section, ...] = tuple(
    module.routes
    for module in (
        signin,
        dashboard,
        points,
        transactions,
        members,
        leaderboard,
        emails,
        achievements,
        roles,
        store,
        seasons,
        dms,
        api,
        webhooks,
        audit,
        settings,
        preferences,
    )
)
for _section in SECTIONS:
    for _route in _section.routes:
        _behind_the_gate(_route)


# -- entry point -------------------------------------------------------------------------------
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: Any) -> dict:
    try:
        return run_within(REQUEST_DEADLINE_S, app.resolve, event, context)
    except DeadlineExceeded as exc:
        # The request's thread is left behind: its connection is cut and it may not start
        # another transaction, so nothing more is written; whatever it renders is dropped.
        logger.error(
            "admin request cut at its deadline", extra={"error": str(exc), "path": event.get("rawPath")}
        )
        page = web.respond(None, 503, web.render_template("error.html", status_code=503, message=DATABASE_NOT_ANSWERING,
                                                           identity=None, flashes=[], guilds=[]))  # fmt: skip
        return ResponseBuilder(page).build(APIGatewayProxyEventV2(event))


__all__ = ["ROUTES", "app", "lambda_handler"]
