"""The admin site, a Lambda function of its own: Powertools' HTTP API resolver, Jinja2 pages.

Routes are thin: read the form, call one function of `pointsbot`, render or redirect. Who may
do what (sign-in, CSRF, guild access) is decided once in `route` before any route runs.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from pointsbot import (
    achievements,
    admin_actions,
    auth,
    bulk,
    emails,
    guilds,
    ledger,
    members,
    monitor,
    outbox,
    paging,
    sessions,
    stats,
)
from pointsbot.db import DatabaseUnavailable
from pointsbot.errors import DomainError, InvalidInput
from pointsbot.ids import format_snowflake, parse_snowflake
from pointsbot.observability import logger
from pointsbot.wording import count

try:  # the installed package (local runtime, tests)
    from admin_site import web
except ImportError:  # Lambda: this folder is the code root
    import web  # type: ignore[no-redef]

app = APIGatewayHttpResolver(strip_prefixes=[web.PREFIX])


# Every route of the site; the tests walk it so a new route cannot skip the access checks.
ROUTES: list[web.RouteSpec] = []


def route(method: str, path: str, access: str = "guild") -> Callable:
    """Register a route behind the checks its access level needs.

    public: anyone (sign-in pages, static files); signed_in: a session with an identity;
    guild: signed in AND allowed to manage the guild in the path. Every POST needs the
    session's CSRF token, public or not.
    """

    def register(fn: Callable[..., Response]) -> Callable[..., Response]:
        ROUTES.append(web.RouteSpec(method, path, access))

        @functools.wraps(fn)
        def guarded(**params: str) -> Response:
            req = web.load_request(app.current_event)
            app.append_context(admin_request=req)
            if access != "public" and (req.session is None or not req.session.signed_in):
                if method == "GET":
                    return web.sign_in_redirect(req)
                raise web.Refused(403, "You are not signed in (or your session has ended). Sign in again.")
            if method == "POST":
                web.check_csrf(req)
            if access == "guild":
                params["guild_id"] = web.check_guild(req, params["guild_id"])  # type: ignore[assignment]
            return fn(req, **params)

        app.route(path, method)(guarded)
        return fn

    return register


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
    """A rule said no: back to the form with the message, or a page saying it."""
    req = _req()
    back = app.context.get("back")
    if req is not None and req.method == "POST" and back and req.session is not None:
        req.flash("error", exc.message)
        return web.redirect(req, back)
    return _error_page(400, exc.message)


@app.exception_handler(DatabaseUnavailable)
def _db_down(exc: DatabaseUnavailable) -> Response:
    logger.error("database unavailable", extra={"error": str(exc)})
    return _error_page(503, "The database is not answering right now. Please try again in a minute.",
                       with_session=False)  # fmt: skip


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


def _back(path: str) -> None:
    """Where a refused POST returns to, with the refusal as a flash message."""
    app.append_context(back=web.url(path))


# -- sign-in -----------------------------------------------------------------------------------
@route("GET", "/static/<name>", access="public")
def static(req: web.AdminRequest, name: str) -> Response:
    found = web.static_file(name)
    if found is None:
        raise web.Refused(404, "There is no such file.")
    body, ctype = found
    return web.respond(None, 200, body, ctype, headers={"Cache-Control": "public, max-age=3600"},
                       settings=req.settings)  # fmt: skip


@route("GET", "/", access="public")
def home(req: web.AdminRequest) -> Response:
    if req.session is None or not req.session.signed_in:
        return web.redirect(req, web.url("/login"))
    ids = req.identity.guild_ids
    if len(ids) == 1:
        return web.redirect(req, web.url(f"/g/{ids[0]}/"))
    return web.redirect(req, web.url("/guilds"))


@route("GET", "/login", access="public")
def login_page(req: web.AdminRequest) -> Response:
    web.ensure_session(req)
    if req.session is not None and req.session.signed_in:
        return web.redirect(req, web.safe_next(req.query("next")))
    return web.page(req, "login.html", next=web.safe_next(req.query("next")),
                    discord_ready=bool(req.settings.discord_client_secret and req.settings.discord_application_id))  # fmt: skip


@route("POST", "/login", access="public")
def login(req: web.AdminRequest) -> Response:
    _back("/login")
    name, password = req.form("name"), req.form("password")
    settings = req.settings
    try:
        identity = req.db.run(auth.sign_in_local, name, password, req.client_address,
                              settings.admin_login_max_failures)  # fmt: skip
    except auth.SignInRefused:
        req.db.run(auth.record_failure, name, req.client_address)
        raise
    return _signed_in(req, identity, req.form("next"))


def _signed_in(
    req: web.AdminRequest, identity: sessions.Identity, next_url: str | None, discord_token: str | None = None
) -> Response:
    previous = req.session.token if req.session else None
    max_age = timedelta(hours=req.settings.admin_session_max_hours)
    req.session = req.db.run(admin_actions.start_session, previous, identity, max_age, discord_token)
    req.new_cookie = req.session.token
    return web.redirect(req, web.safe_next(next_url))


@route("POST", "/oauth/start", access="public")
def oauth_start(req: web.AdminRequest) -> Response:
    _back("/login")
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


@route("GET", "/oauth/callback", access="public")
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
    client = auth.DiscordOAuthClient(settings.discord_api_base_url, settings.discord_application_id,
                                     settings.discord_client_secret, settings.bot_url)  # fmt: skip
    try:
        token = client.exchange_code(code, web.base_url(req.event, settings) + "/oauth/callback")
        user_id, name = client.current_user(token)
        grants = client.guilds(token)
        identity = req.db.run(auth.discord_identity, user_id, name, grants)
    except auth.OAuthFailed as exc:
        req.flash("error", exc.message)
        return web.redirect(req, web.url("/login"))
    return _signed_in(req, identity, None, discord_token=token)  # kept to re-check the rights


@route("POST", "/logout", access="signed_in")
def logout(req: web.AdminRequest) -> Response:
    assert req.session is not None
    req.db.run(sessions.end, req.session.token)
    req.session = None
    req.clear_cookie = True
    return web.redirect(req, web.url("/login"))


@route("GET", "/guilds", access="signed_in")
def guild_list(req: web.AdminRequest) -> Response:
    wanted = req.query("to")
    if wanted.isdigit() and req.identity.may_manage(int(wanted)):  # the switcher without JavaScript
        return web.redirect(req, web.url(f"/g/{wanted}/"))
    return web.page(req, "guilds.html")


# -- 1. dashboard ----------------------------------------------------------------------------
@route("GET", "/g/<guild_id>/")
def dashboard(req: web.AdminRequest, guild_id: int) -> Response:
    def load(conn):
        series = stats.daily_series(conn, guild_id)
        return stats.figures(conn, guild_id), series, stats.recent_transactions(conn, guild_id)

    figures, series, recent = req.db.run(load)
    return web.page(req, "dashboard.html", figures=figures, chart=stats.chart(series), recent=recent)


@route("GET", "/g/<guild_id>/stats.json")
def dashboard_json(req: web.AdminRequest, guild_id: int) -> Response:
    figures = req.db.run(stats.figures, guild_id)
    return web.respond(req, 200, json.dumps(figures.as_json()), "application/json")


# -- 2. points --------------------------------------------------------------------------------
@route("GET", "/g/<guild_id>/points")
def points_page(req: web.AdminRequest, guild_id: int) -> Response:
    return web.page(req, "points.html", form_token=bulk.new_form_token(), bulk_token=bulk.new_form_token(),
                    member=req.query("member"), picked=req.query("picked"))  # fmt: skip


@route("POST", "/g/<guild_id>/points")
def points_change(req: web.AdminRequest, guild_id: int) -> Response:
    back = req.form("back") or f"/g/{guild_id}/points"
    _back(back if back.startswith("/g/") else f"/g/{guild_id}/points")
    user_id = req.form_id("member", "Member")
    outcome = req.db.run(
        bulk.change_points, req.identity, guild_id=guild_id, user_id=user_id, operation=req.form("operation"),
        amount=req.form_int("amount", "Amount"), reason=req.form("reason"), silent=req.checkbox("silent"),
        form_token=req.form("form_token"), settings=req.settings,
    )  # fmt: skip
    outbox.request_delivery()
    entry = outcome.result.entry
    if outcome.result.replayed:
        req.flash("ok", f"That form was already submitted (entry #{entry.id}); nothing changed this time.")
    else:
        req.flash("ok", f"Done: {entry.amount:+,} for {format_snowflake(user_id)}, balance now {entry.balance_after:,} "
                        f"(entry #{entry.id}).")  # fmt: skip
    return web.redirect(req, web.url(f"/g/{guild_id}/members/{user_id}"))


@route("POST", "/g/<guild_id>/points/revert")
def points_revert(req: web.AdminRequest, guild_id: int) -> Response:
    back = req.form("back")
    _back(back if back.startswith("/g/") else f"/g/{guild_id}/transactions")
    entry_id = req.form_int("entry_id", "Entry")
    result = req.db.run(
        bulk.revert_entry, req.identity, guild_id=guild_id, entry_id=entry_id,
        reason=req.form("reason") or f"revert of entry #{entry_id}", silent=req.checkbox("silent"),
        form_token=req.form("form_token"), settings=req.settings,
    )  # fmt: skip
    outbox.request_delivery()
    if result.replayed:
        req.flash("ok", f"Entry #{entry_id} was already reverted by this form; nothing changed this time.")
    else:
        req.flash("ok", f"Entry #{entry_id} reverted (new entry #{result.entries[0].id}).")
    return web.redirect(req, web.url(back if back.startswith("/g/") else f"/g/{guild_id}/transactions"))


def _bulk_rows(req: web.AdminRequest) -> list[bulk.BulkRow]:
    picked = req.form_list("user_id")
    if picked:
        return bulk.rows_for_members(picked, req.form("amount"), req.form("reason"))
    text = req.file_text("csv_file") or req.form("csv_text")
    return bulk.parse_csv(text)


@route("POST", "/g/<guild_id>/bulk/preview")
def bulk_preview(req: web.AdminRequest, guild_id: int) -> Response:
    _back(f"/g/{guild_id}/points")
    rows = _bulk_rows(req)
    operation, silent = req.form("operation"), req.checkbox("silent")
    preview = req.db.run(bulk.check_rows, guild_id, operation, rows, default_reason=req.form("reason"),
                         silent=silent, settings=req.settings)  # fmt: skip
    csv_text = (
        "\n".join(f"{r.user_id},{r.amount},{r.reason}" for r in rows) if req.form_list("user_id") else None
    )
    return web.page(req, "bulk_preview.html", preview=preview, rows=rows,
                    csv_text=csv_text or req.file_text("csv_file") or req.form("csv_text"),
                    default_reason=req.form("reason"), form_token=req.form("form_token") or bulk.new_form_token())  # fmt: skip


@route("POST", "/g/<guild_id>/bulk/apply")
def bulk_apply(req: web.AdminRequest, guild_id: int) -> Response:
    _back(f"/g/{guild_id}/points")
    rows = bulk.parse_csv(req.form("csv_text"))
    preview = req.db.run(bulk.check_rows, guild_id, req.form("operation"), rows,
                         default_reason=req.form("reason"), silent=req.checkbox("silent"), settings=req.settings)  # fmt: skip
    batch = req.db.run(bulk.start_batch, req.identity, guild_id, preview, req.form("form_token"))
    batch = bulk.continue_batch(req.db.run, guild_id, batch.id, budget_s=5.0, settings=req.settings)
    outbox.request_delivery()
    return web.redirect(req, web.url(f"/g/{guild_id}/bulk/{batch.id}"))


@route("GET", "/g/<guild_id>/bulk/<batch_id>")
def bulk_progress(req: web.AdminRequest, guild_id: int, batch_id: str) -> Response:
    batch = req.db.run(bulk.get_batch, guild_id, token_or_id=_int_param(batch_id))
    return web.page(req, "bulk_progress.html", batch=batch)


@route("GET", "/g/<guild_id>/bulk/<batch_id>/status.json")
def bulk_status(req: web.AdminRequest, guild_id: int, batch_id: str) -> Response:
    batch = req.db.run(bulk.get_batch, guild_id, token_or_id=_int_param(batch_id))
    return web.respond(req, 200, json.dumps({"done": batch.done, "failed": batch.failed, "total": batch.total,
                                             "percent": batch.percent, "finished": batch.finished}),
                       "application/json")  # fmt: skip


@route("POST", "/g/<guild_id>/bulk/<batch_id>/continue")
def bulk_continue(req: web.AdminRequest, guild_id: int, batch_id: str) -> Response:
    batch = bulk.continue_batch(
        req.db.run, guild_id, _int_param(batch_id), budget_s=5.0, settings=req.settings
    )
    outbox.request_delivery()
    if req.form("format") == "json":
        return web.respond(req, 200, json.dumps({"done": batch.done, "failed": batch.failed, "total": batch.total,
                                                 "percent": batch.percent, "finished": batch.finished}),
                           "application/json")  # fmt: skip
    return web.redirect(req, web.url(f"/g/{guild_id}/bulk/{batch.id}"))


def _int_param(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise web.Refused(404, "There is no such page.")
    return int(raw)


# -- 3. transactions monitor ------------------------------------------------------------------
@route("GET", "/g/<guild_id>/transactions")
def transactions(req: web.AdminRequest, guild_id: int) -> Response:
    error = None
    try:
        flt = monitor.TransactionFilter.from_form(req.query_dict)
    except InvalidInput as exc:
        flt, error = monitor.TransactionFilter(), exc.message
    before = req.query("before")
    result = req.db.run(monitor.transactions_page, guild_id, flt, _int_param(before) if before else None)
    return web.page(req, "transactions.html", flt=flt, query=flt.as_query(), result=result, error=error,
                    kinds=ledger.KINDS, sources=ledger.SOURCES, form_token=bulk.new_form_token())  # fmt: skip


@route("GET", "/g/<guild_id>/transactions.csv")
def transactions_csv(req: web.AdminRequest, guild_id: int) -> Response:
    flt = monitor.TransactionFilter.from_form(req.query_dict)
    with req.db.connection() as conn:
        body = "".join(monitor.export_csv(conn, guild_id, flt))
    return web.respond(req, 200, body, "text/csv; charset=utf-8",
                       headers={"Content-Disposition": f'attachment; filename="transactions-{guild_id}.csv"'})  # fmt: skip


# -- 4. members --------------------------------------------------------------------------------
@route("GET", "/g/<guild_id>/members")
def members_page(req: web.AdminRequest, guild_id: int) -> Response:
    error, result = None, None
    form = req.query_dict
    try:
        query = members.MemberQuery(
            text=form.get("q", ""),
            min_balance=_opt_int(form.get("min_balance"), "Smallest balance"),
            max_balance=_opt_int(form.get("max_balance"), "Largest balance"),
            achievement_id=_opt_int(form.get("achievement"), "Achievement"),
            email_status=form.get("email_status", ""),
        )
        page_no = paging.page_number(form.get("page"))
        result = req.db.run(members.search, guild_id, query, page_no)
    except InvalidInput as exc:
        error = exc.message
    definitions = req.db.run(monitor.achievement_names, guild_id)
    return web.page(req, "members.html", result=result, form=form, error=error, definitions=definitions,
                    statuses=members.EMAIL_STATUSES, bulk_token=bulk.new_form_token())  # fmt: skip


def _opt_int(value: str | None, what: str) -> int | None:
    text = (value or "").strip().replace(",", "")
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(f"{what} must be a whole number.") from None


@route("POST", "/g/<guild_id>/members")
def member_create(req: web.AdminRequest, guild_id: int) -> Response:
    _back(f"/g/{guild_id}/members")
    user_id = req.form_id("user_id", "Discord id")
    req.db.run(admin_actions.create_member, req.identity, guild_id, user_id, req.form("display_name"))
    req.flash("ok", f"Member {format_snowflake(user_id)} created.")
    return web.redirect(req, web.url(f"/g/{guild_id}/members/{user_id}"))


def _member_id(raw: str) -> int:
    try:
        return parse_snowflake(raw, "member id")
    except DomainError:
        raise web.Refused(404, "There is no such member.") from None


@route("GET", "/g/<guild_id>/members/<user_id>")
def member_page(req: web.AdminRequest, guild_id: int, user_id: str) -> Response:
    uid = _member_id(user_id)
    page_no = paging.page_number(req.query("page"))

    def load(conn):
        member = members.get(conn, guild_id, uid)
        return (
            member,
            members.stats_of(conn, guild_id, uid),
            ledger.history_page(conn, guild_id, uid, page_no, 20),
            achievements.earned_by(conn, guild_id, uid),
            monitor.email_submissions_of(conn, guild_id, uid),
            monitor.dm_page(conn, guild_id, user_id=uid, limit=20)[0],
        )

    member, mstats, history, earned, submissions, dms = req.db.run(load)
    return web.page(req, "member.html", member=member, mstats=mstats, history=history, earned=earned,
                    submissions=submissions, dms=dms, form_token=bulk.new_form_token(),
                    revert_token=bulk.new_form_token())  # fmt: skip


@route("POST", "/g/<guild_id>/members/<user_id>")
def member_edit(req: web.AdminRequest, guild_id: int, user_id: str) -> Response:
    uid = _member_id(user_id)
    _back(f"/g/{guild_id}/members/{uid}")
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
@route("POST", "/g/<guild_id>/members/<user_id>/export.json")
def member_export(req: web.AdminRequest, guild_id: int, user_id: str) -> Response:
    uid = _member_id(user_id)
    data = req.db.run(admin_actions.export_member, req.identity, guild_id, uid)
    return web.respond(req, 200, json.dumps(data, indent=2), "application/json",
                       headers={"Content-Disposition": f'attachment; filename="member-{uid}.json"'})  # fmt: skip


@route("POST", "/g/<guild_id>/members/<user_id>/erase")
def member_erase(req: web.AdminRequest, guild_id: int, user_id: str) -> Response:
    uid = _member_id(user_id)
    _back(f"/g/{guild_id}/members/{uid}")
    req.db.run(admin_actions.erase_member, req.identity, guild_id, uid, req.form("confirm"))
    req.flash("ok", "Personal data erased; the ledger entries and the balance stay.")
    return web.redirect(req, web.url(f"/g/{guild_id}/members/{uid}"))


# -- 5. email submissions --------------------------------------------------------------------
@route("GET", "/g/<guild_id>/emails")
def email_queue(req: web.AdminRequest, guild_id: int) -> Response:
    page_no = paging.page_number(req.query("page"))
    queue = req.db.run(emails.pending, guild_id, page_no, 25)
    names = req.db.run(monitor.member_names, guild_id, [s.user_id for s in queue.submissions])
    return web.page(req, "emails.html", queue=queue, names=names, form_token=bulk.new_form_token)


@route("POST", "/g/<guild_id>/emails/<submission_id>/<decision>")
def email_decide(req: web.AdminRequest, guild_id: int, submission_id: str, decision: str) -> Response:
    _back(f"/g/{guild_id}/emails")
    sid = _int_param(submission_id)
    if decision not in ("approve", "reject"):
        raise web.Refused(404, "There is no such page.")
    result = req.db.run(
        admin_actions.review_email, req.identity, guild_id, sid, approve=decision == "approve", note=req.form("note"),
        bonus_points=req.form_int("bonus", "Bonus", required=False) or 0, form_token=req.form("form_token"),
        settings=req.settings,
    )  # fmt: skip
    outbox.request_delivery()
    word = "approved" if decision == "approve" else "rejected"
    req.flash("ok", f"Submission #{sid} {word}; the member gets a DM." if not result.replayed
              else f"Submission #{sid} was already {word}; nothing changed.")  # fmt: skip
    return web.redirect(req, web.url(f"/g/{guild_id}/emails"))


# -- 6. achievements -------------------------------------------------------------------------
def _achievement_fields(req: web.AdminRequest) -> dict[str, Any]:
    return {
        "name": req.form("name"),
        "description": req.form("description"),
        "criterion": req.form("criterion"),
        "threshold": req.form_int("threshold", "Threshold", required=False) or 0,
        "window_days": req.form_int("window_days", "Days", required=False),
        "bonus_points": req.form_int("bonus_points", "Bonus", required=False) or 0,
        "active": req.checkbox("active"),
    }


@route("GET", "/g/<guild_id>/achievements")
def achievements_page(req: web.AdminRequest, guild_id: int) -> Response:
    definitions = req.db.run(achievements.list_definitions, guild_id)
    return web.page(req, "achievements.html", definitions=definitions, criteria=achievements.CRITERIA)


@route("POST", "/g/<guild_id>/achievements")
def achievement_create(req: web.AdminRequest, guild_id: int) -> Response:
    _back(f"/g/{guild_id}/achievements")
    definition = req.db.run(
        admin_actions.create_achievement, req.identity, guild_id, _achievement_fields(req)
    )
    req.flash("ok", f"Achievement “{definition.name}” created. Members who qualify get it on the next check.")
    return web.redirect(req, web.url(f"/g/{guild_id}/achievements"))


@route("GET", "/g/<guild_id>/achievements/<achievement_id>")
def achievement_page(req: web.AdminRequest, guild_id: int, achievement_id: str) -> Response:
    aid = _int_param(achievement_id)
    page_no = paging.page_number(req.query("page"))

    def load(conn):
        return achievements.get_definition(conn, guild_id, aid), achievements.holders(
            conn, guild_id, aid, page_no, 50
        )

    definition, holders = req.db.run(load)
    return web.page(
        req, "achievement.html", definition=definition, holders=holders, criteria=achievements.CRITERIA
    )


@route("POST", "/g/<guild_id>/achievements/<achievement_id>")
def achievement_edit(req: web.AdminRequest, guild_id: int, achievement_id: str) -> Response:
    aid = _int_param(achievement_id)
    _back(f"/g/{guild_id}/achievements/{aid}")
    toggle = req.form("toggle")
    changes: dict[str, Any] = {"active": toggle == "on"} if toggle else _achievement_fields(req)
    after = req.db.run(admin_actions.edit_achievement, req.identity, guild_id, aid, changes)
    req.flash("ok", f"“{after.name}” saved" + ("" if after.active else " (switched off)") + ".")
    return web.redirect(req, web.url(f"/g/{guild_id}/achievements" + ("" if toggle else f"/{aid}")))


@route("POST", "/g/<guild_id>/achievements-check")
def achievements_check(req: web.AdminRequest, guild_id: int) -> Response:
    _back(f"/g/{guild_id}/achievements")
    started = time.monotonic()
    # This guild's members only, within a budget that fits one request; the scheduled sweep's
    # place is left alone.
    report = achievements.run_sweep(req.db, guild_id=guild_id, settings=req.settings,
                                    time_left_s=lambda: 10.0 - (time.monotonic() - started))  # fmt: skip
    outbox.request_delivery()
    req.db.run(admin_actions.record_check_run, req.identity, guild_id, report)
    more = "" if report.finished else " It ran out of time; run it again to go on."
    req.flash(
        "ok",
        f"Checked {count(report.members_checked, 'member')}, "
        f"{count(report.awards, 'achievement')} awarded.{more}",
    )
    return web.redirect(req, web.url(f"/g/{guild_id}/achievements"))


# -- 7. direct messages ----------------------------------------------------------------------
@route("GET", "/g/<guild_id>/dms")
def dms_page(req: web.AdminRequest, guild_id: int) -> Response:
    status = req.query("status")
    before = req.query("before")
    error = None
    try:
        rows, next_before = req.db.run(monitor.dm_page, guild_id, status=status,
                                       before=_int_param(before) if before else None)  # fmt: skip
    except InvalidInput as exc:
        rows, next_before, error = [], None, exc.message
    return web.page(req, "dms.html", rows=rows, next_before=next_before, dm_status=status, error=error,
                    statuses=monitor.DM_STATUSES, form_token=bulk.new_form_token(), to=req.query("to"))  # fmt: skip


def _dm_recipients(req: web.AdminRequest, guild_id: int) -> list[int]:
    if req.form("audience") == "filter":
        query = members.MemberQuery(
            text=req.form("q"),
            min_balance=_opt_int(req.form("min_balance"), "Smallest balance"),
            max_balance=_opt_int(req.form("max_balance"), "Largest balance"),
            email_status=req.form("email_status"),
        )
        return req.db.run(members.matching_ids, guild_id, query)
    return [req.form_id("to", "Member")]


@route("POST", "/g/<guild_id>/dms/preview")
def dm_preview(req: web.AdminRequest, guild_id: int) -> Response:
    _back(f"/g/{guild_id}/dms")
    content = outbox.check_content(req.form("content"))
    recipients = _dm_recipients(req, guild_id)
    if not recipients:
        raise InvalidInput("No member matches; nobody would get this message.")
    names = req.db.run(monitor.member_names, guild_id, recipients[:20])
    return web.page(req, "dm_preview.html", content=content, recipients=recipients, names=names,
                    form_token=req.form("form_token") or bulk.new_form_token())  # fmt: skip


@route("POST", "/g/<guild_id>/dms/send")
def dm_send(req: web.AdminRequest, guild_id: int) -> Response:
    _back(f"/g/{guild_id}/dms")
    recipients = [parse_snowflake(r, "member id") for r in req.form_list("recipient")]
    queued = req.db.run(admin_actions.send_dms, req.identity, guild_id, recipients, req.form("content"),
                        req.form("form_token"))  # fmt: skip
    outbox.request_delivery()
    req.flash("ok", f"{count(queued, 'message')} queued." if queued else "Already queued; nothing new.")
    return web.redirect(req, web.url(f"/g/{guild_id}/dms"))


@route("POST", "/g/<guild_id>/dms/retry")
def dm_retry(req: web.AdminRequest, guild_id: int) -> Response:
    _back(f"/g/{guild_id}/dms")
    ids = [_int_param(v) for v in req.form_list("dm_id")]
    requeued = req.db.run(admin_actions.retry_dms, req.identity, guild_id, ids or None)
    outbox.request_delivery()
    req.flash(
        "ok",
        f"{count(requeued, 'failed message')} queued again." if requeued else "No failed message to retry.",
    )
    return web.redirect(req, web.url(f"/g/{guild_id}/dms", status="failed"))


# -- 8. audit log ----------------------------------------------------------------------------
@route("GET", "/g/<guild_id>/audit")
def audit_page(req: web.AdminRequest, guild_id: int) -> Response:
    before = req.query("before")
    rows, next_before = req.db.run(monitor.audit_page, guild_id, _int_param(before) if before else None,
                                   req.query("action"))  # fmt: skip
    return web.page(req, "audit.html", rows=rows, next_before=next_before, action=req.query("action"))


# -- 9. guild settings -----------------------------------------------------------------------
@route("GET", "/g/<guild_id>/settings")
def settings_page(req: web.AdminRequest, guild_id: int) -> Response:
    policy = req.db.run(guilds.guild_policy, req.settings, guild_id)
    overrides = req.db.run(guilds.ensure_guild, guild_id)
    return web.page(req, "settings.html", policy=policy, overrides=overrides)


@route("POST", "/g/<guild_id>/settings")
def settings_save(req: web.AdminRequest, guild_id: int) -> Response:
    _back(f"/g/{guild_id}/settings")
    changes: dict[str, Any] = {
        "currency_name": req.form("currency_name"),
        "currency_singular": req.form("currency_singular"),
        "max_change": req.form_int("max_change", "Largest single change"),
        "daily_cap": req.form_int("daily_cap", "Daily cap"),
        "allow_negative": req.checkbox("allow_negative"),
        "transfers_enabled": req.checkbox("transfers_enabled"),
        "dm_notifications": req.checkbox("dm_notifications"),
    }
    req.db.run(admin_actions.save_guild_settings, req.identity, guild_id, changes)
    req.flash("ok", "Settings saved.")
    return web.redirect(req, web.url(f"/g/{guild_id}/settings"))


# -- entry point -------------------------------------------------------------------------------
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: Any) -> dict:
    return app.resolve(event, context)


__all__ = ["ROUTES", "app", "lambda_handler"]
