"""Sign-in and sign-out (a local account or Discord OAuth2), the guild list, static files."""

from __future__ import annotations

from datetime import timedelta

from aws_lambda_powertools.event_handler import Response

from admin_site import web
from admin_site.sections import Section
from pointsbot.admin import actions as admin_actions
from pointsbot.admin import auth, sessions
from pointsbot.platform.errors import InvalidInput

routes = Section()


@routes.route("GET", "/static/<name>", access="public")
def static(req: web.AdminRequest, name: str) -> Response:
    found = web.static_file(name)
    if found is None:
        raise web.Refused(404, "There is no such file.")
    body, ctype = found
    return web.respond(None, 200, body, ctype, headers={"Cache-Control": "public, max-age=3600"},
                       settings=req.settings)  # fmt: skip


@routes.route("GET", "/", access="public")
def home(req: web.AdminRequest) -> Response:
    if req.session is None or not req.session.signed_in:
        return web.redirect(req, web.url("/login"))
    ids = req.identity.guild_ids
    if len(ids) == 1:
        return web.redirect(req, web.url(f"/g/{ids[0]}/"))
    return web.redirect(req, web.url("/guilds"))


@routes.route("GET", "/login", access="public")
def login_page(req: web.AdminRequest) -> Response:
    web.ensure_session(req)
    if req.session is not None and req.session.signed_in:
        return web.redirect(req, web.safe_next(req.query("next")))
    return web.page(req, "login.html", next=web.safe_next(req.query("next")),
                    discord_ready=bool(req.settings.discord_client_secret and req.settings.discord_application_id))  # fmt: skip


@routes.route("POST", "/login", access="public")
def login(req: web.AdminRequest) -> Response:
    req.back_to("/login")
    name, password = req.form("name"), req.form("password")
    settings = req.settings
    # A browser that signed in as this name before is limited on its own, so a stranger's
    # guesses from many addresses cannot lock the admin out (auth, "device cookies").
    device_cookie = web.event_cookie(req.event, web.device_cookie_name(req.https))
    try:
        identity = req.db.run(auth.sign_in_local, name, password, req.client_address,
                              settings.admin_login_max_failures, device_cookie)  # fmt: skip
    except auth.SignInRefused:
        req.db.run(auth.record_failure, name, req.client_address, device_cookie)
        raise
    req.new_device_cookie = req.db.run(auth.issue_device_cookie, identity.name)
    return _signed_in(req, identity, req.form("next"))


def _signed_in(
    req: web.AdminRequest, identity: sessions.Identity, next_url: str | None, discord_token: str | None = None
) -> Response:
    previous = req.session.token if req.session else None
    max_age = timedelta(hours=req.settings.admin_session_max_hours)
    req.session = req.db.run(admin_actions.start_session, previous, identity, max_age, discord_token)
    req.new_cookie = req.session.token
    return web.redirect(req, web.safe_next(next_url))


@routes.route("POST", "/oauth/start", access="public")
def oauth_start(req: web.AdminRequest) -> Response:
    req.back_to("/login")
    settings = req.settings
    if not (settings.discord_client_secret and settings.discord_application_id):
        raise InvalidInput("Discord sign-in is not set up here (DISCORD_CLIENT_SECRET is empty).")
    state = web.new_state()
    assert req.session is not None
    req.db.run(sessions.set_oauth_state, req.session, state)
    redirect_uri = web.base_url(req.event, settings) + "/oauth/callback"
    return web.redirect(
        req, auth.authorize_url(settings.discord_oauth_authorize_url, settings.discord_application_id,
                                redirect_uri, state),
    )  # fmt: skip


@routes.route("GET", "/oauth/callback", access="public")
def oauth_callback(req: web.AdminRequest) -> Response:
    settings = req.settings
    state, code = req.query("state"), req.query("code")
    session = req.session
    # The state must be the one this browser's session asked for: a callback that another
    # site started (login CSRF) or a replayed one is refused.
    if session is None or not session.oauth_state_ok(state):
        raise web.Refused(
            403, "This sign-in link is not from this browser's session. Start the sign-in again."
        )
    req.db.run(sessions.set_oauth_state, session, "")
    if not code:
        raise web.Refused(
            403, "Discord did not confirm the sign-in (" + (req.query("error") or "no code") + ")."
        )
    # Three calls to Discord, each given up after SIGN_IN_TIMEOUT_S ("Discord could not be
    # reached"), so a slow Discord is told as such inside the request's deadline (app.py).
    client = auth.DiscordOAuthClient(settings.discord_api_base_url, settings.discord_application_id,
                                     settings.discord_client_secret, settings.bot_url,
                                     timeout=auth.SIGN_IN_TIMEOUT_S)  # fmt: skip
    try:
        token = client.exchange_code(code, web.base_url(req.event, settings) + "/oauth/callback")
        user_id, name = client.current_user(token)
        grants = client.guilds(token)
        identity = req.db.run(auth.discord_identity, user_id, name, grants, client.user_profile)
    except auth.OAuthFailed as exc:
        req.flash("error", exc.message)
        return web.redirect(req, web.url("/login"))
    return _signed_in(req, identity, None, discord_token=token)  # kept to re-check the rights


@routes.route("POST", "/logout", access="signed_in")
def logout(req: web.AdminRequest) -> Response:
    assert req.session is not None
    req.db.run(sessions.end, req.session.token)
    req.session = None
    req.clear_cookie = True
    return web.redirect(req, web.url("/login"))


@routes.route("GET", "/guilds", access="signed_in")
def guild_list(req: web.AdminRequest) -> Response:
    wanted = req.query("to")
    if web.canonical_id(wanted) and req.identity.may_manage(int(wanted)):  # the switcher without JavaScript
        return web.redirect(req, web.url(f"/g/{wanted}/"))
    return web.page(req, "guilds.html")
