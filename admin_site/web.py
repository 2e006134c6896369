"""The admin site's request plumbing: sessions and cookies, CSRF, guild access, forms,
templates and security headers. Routes (app.py) stay thin on top of this."""

from __future__ import annotations

import json
import mimetypes
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy as email_policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.shared.cookies import Cookie, SameSite
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from markupsafe import Markup

from admin_site import discord_markdown, labels, timefmt
from pointsbot.admin import auth, preferences, sessions
from pointsbot.admin.sessions import Identity, Session
from pointsbot.community import profiles, webhooks
from pointsbot.community import store as reward_store
from pointsbot.platform import runtime, wording
from pointsbot.platform.amounts import parse_whole_number
from pointsbot.platform.config import Settings, get_settings
from pointsbot.platform.db import Database
from pointsbot.platform.errors import DomainError, InvalidInput
from pointsbot.platform.ids import format_snowflake, parse_snowflake

PREFIX = "/admin"
HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
MAX_UPLOAD = 2_000_000


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str  # Powertools syntax, e.g. /g/<guild_id>/members
    access: str  # "public", "signed_in" or "guild"


class Refused(Exception):
    """Stop the request with this status and message (403 wrong guild, 403 bad CSRF, ...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SignInNeeded(Exception):
    """The request needs a signed-in session and has none."""


def url(path: str = "/", **query: Any) -> str:
    """An admin-site URL from a path inside the site ('/g/1/members')."""
    target = PREFIX + (path if path.startswith("/") else "/" + path)
    clean = {k: v for k, v in query.items() if v not in (None, "")}
    return target + ("?" + urlencode(clean) if clean else "")


def _money(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


@pass_context
def _when(context: Any, value: datetime | None) -> str:
    """{{ t|when }}: the site's one time format in the admin's zone (`time_zone` in the page's
    context, set by page(); UTC where a page has none, e.g. the error page without a session)."""
    return timefmt.when(value, context.get("time_zone"))


def _when_in(value: datetime | None, zone: str) -> str:
    """A moment in a given zone (a guild's), in the site's one format ("1 Dec 2026, 18:30 CET");
    UTC for a zone it cannot read."""
    return timefmt.when(value, timefmt.zone(zone))


def _signed(value: int | None) -> str:
    return "" if value is None else f"{value:+,}"


_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES)),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals["url"] = url
_env.filters["money"] = _money
_env.filters["signed"] = _signed
_env.filters["when"] = _when
_env.filters["when_in"] = _when_in  # {{ moment|when_in(zone) }}: in the guild's time zone
_env.filters["day"] = timefmt.day
_env.filters["sid"] = format_snowflake  # Discord ids are always shown as strings
_env.filters["count"] = wording.count  # {{ n|count("row") }}: "1 row", "2 rows"
labels.register(_env)
_env.filters["discord_md"] = discord_markdown.render  # {{ dm.content|discord_md }}
_env.filters["tojson_text"] = lambda v: json.dumps(v, indent=1, sort_keys=True, default=str)


def render_template(name: str, **context: Any) -> str:
    return _env.get_template(name).render(**context)


# -- forms that keep what was typed -------------------------------------------------------------
# A form names itself with a hidden `_form` field ({{ f.head() }}). When a rule refuses its POST,
# the page it came from is rendered again, in the answer to that POST (status 422), with what was
# typed and the message next to its field (app.py, `_domain_error`). Why a re-render and not a
# redirect with a flash: the typed values (a CSV, a member's email or notes) never leave the
# answer to the browser that sent them - nothing is stored with the session, so nothing can be
# read by another session or outlive the request - and a password is never echoed. It runs after
# the CSRF check like any POST, and reloading it re-posts a form that changed nothing.
FORM_NAME = "_form"
NOT_KEPT = frozenset({"csrf_token", "form_token", "password", FORM_NAME})  # never echoed back
SECRET_WORDS = ("password", "secret", "token")  # nor any field so named (a new password, a key)
WHOLE_FORM = ""  # the error key of a refusal about no one field


# Which form field a refusal is about: error classes or words of the message, in order, to the
# field's name; or a function of the message.
FieldsOf = dict[type[DomainError] | str, str] | Callable[[str], str | None]


@dataclass(frozen=True)
class RefusedForm:
    """A refused POST as the page shows it again: the form's name, what was typed (multi-valued
    fields as lists), and the message by field (WHOLE_FORM: above the form)."""

    name: str
    values: dict[str, list[str]]
    errors: dict[str, str]


class FieldProblems(InvalidInput):
    """A refusal about several fields of one form at once ({field: message}, each shown next to
    its field): a form checked as a whole, such as Settings, says everything wrong in one answer.
    Raised before anything is written."""

    def __init__(self, problems: dict[str, str]) -> None:
        super().__init__(next(iter(problems.values()), "The form needs another look."))
        self.problems = dict(problems)


def refusal_message(exc: DomainError, field_name: str | None) -> str:
    """The refusal in words: an internal field name in it ("max_change") becomes its label."""
    return in_words(exc.message, field_name)


def in_words(message: str, field_name: str | None) -> str:
    """A refusal's message with an internal field name in it ("max_change") replaced by the
    field's label."""
    if field_name and "_" in field_name:  # "reason" is a word already; "max_change" is not
        label = labels.field(field_name)
        message = re.sub(rf"['\"]?\b{re.escape(field_name)}\b['\"]?", label, message)
        message = message[:1].upper() + message[1:]
        if message and message[-1] not in ".!?":
            message += "."
    return message


class FormView:
    """One form of a page, for its template: `{% set f = form_for('points-one') %}`, then
    `{{ f.head() }}` (CSRF token, the form's name, a message about the whole form),
    `value="{{ f.value('amount') }}"`, `{{ f.checked('silent') }}`, `{{ f.invalid('amount') }}`
    and `{{ f.error('amount') }}` next to the field. Values and messages are there only when this
    is the form that was refused; otherwise the defaults the template gives."""

    def __init__(
        self, name: str, refused: RefusedForm | None, csrf_token: str, shown: set[str] | None = None
    ) -> None:
        self.name = name
        self.refused = refused if refused is not None and refused.name == name else None
        self.csrf_token = csrf_token
        self.shown = shown if shown is not None else set()  # the messages placed on the page
        self._focused = False

    def head(self) -> Markup:
        html = Markup(
            '<input type="hidden" name="csrf_token" value="{}"><input type="hidden" name="{}" value="{}">'
        ).format(self.csrf_token, FORM_NAME, self.name)
        whole = self.message(WHOLE_FORM)
        if whole:
            self.shown.add(WHOLE_FORM)
            html += Markup('<p class="flash flash-error form-error" id="{}">{}</p>').format(
                self.error_id(WHOLE_FORM), whole
            )
        return html

    def error_id(self, field_name: str) -> str:
        return f"error-{self.name}-{field_name or 'form'}"

    def value(self, field_name: str, default: Any = "") -> str:
        if self.refused is not None:
            return (self.refused.values.get(field_name) or [""])[0]
        return "" if default is None else str(default)

    def values(self, field_name: str, default: Any = ()) -> list[str]:
        if self.refused is not None:
            return list(self.refused.values.get(field_name, []))
        return [str(v) for v in default]

    def is_checked(self, field_name: str, value: str = "on", default: bool = False) -> bool:
        if self.refused is not None:
            return str(value) in self.refused.values.get(field_name, [])
        return bool(default)

    def checked(self, field_name: str, value: str = "on", default: bool = False) -> Markup:
        return Markup(" checked") if self.is_checked(field_name, value, default) else Markup("")

    def selected(self, field_name: str, value: Any, default: bool = False) -> Markup:
        return Markup(" selected") if self.is_checked(field_name, str(value), default) else Markup("")

    def message(self, field_name: str) -> str | None:
        return self.refused.errors.get(field_name) if self.refused else None

    def invalid(self, field_name: str) -> Markup:
        """The attributes of a refused field: marked invalid, described by its message, and the
        first one focused (so the keyboard lands where the fix is)."""
        if not self.message(field_name):
            return Markup("")
        attrs = Markup(' aria-invalid="true" aria-describedby="{}"').format(self.error_id(field_name))
        if not self._focused:
            self._focused = True
            attrs += Markup(" autofocus")
        return attrs

    def error(self, field_name: str) -> Markup:
        message = self.message(field_name)
        if not message:
            return Markup("")
        self.shown.add(field_name)
        return Markup('<span class="field-error" id="{}">{}</span>').format(
            self.error_id(field_name), message
        )


# -- settings-derived values -----------------------------------------------------------------
def base_url(event: APIGatewayProxyEventV2, settings: Settings) -> str:
    """The site's absolute URL (for the OAuth redirect URI): configured, or from the request."""
    if settings.admin_base_url:
        return settings.admin_base_url.rstrip("/")
    headers = event.headers or {}
    proto = headers.get("x-forwarded-proto", "http").split(",")[0].strip()
    host = headers.get("host", "localhost")
    return f"{proto}://{host}{PREFIX}"


def is_https(event: APIGatewayProxyEventV2, settings: Settings) -> bool:
    return base_url(event, settings).startswith("https://")


def cookie_name(https: bool) -> str:
    # __Host- makes the browser insist on Secure, Path=/ and no Domain: no subdomain can set it.
    return "__Host-pointsbot_admin" if https else "pointsbot_admin"


def device_cookie_name(https: bool) -> str:
    """The device cookie's name (auth.issue_device_cookie: a browser that signed in before)."""
    return "__Host-pointsbot_device" if https else "pointsbot_device"


def event_cookie(event: APIGatewayProxyEventV2, name: str) -> str | None:
    """The value of the request's cookie `name`, if it sent one."""
    found = None
    for cookie in event.cookies or []:
        key, _, value = cookie.partition("=")
        if key.strip() == name:
            found = value.strip()
    return found


def security_headers(settings: Settings) -> dict[str, str]:
    authorize = urlsplit(settings.discord_oauth_authorize_url)
    # Chromium checks form-action on the redirect after a form POST, so the sign-in button's
    # way to Discord's authorize page must be allowed here.
    authorize_origin = f"{authorize.scheme}://{authorize.netloc}" if authorize.netloc else ""
    csp = (
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data: {profiles.CDN}; "
        f"connect-src 'self'; form-action 'self' {authorize_origin}; frame-ancestors 'none'; "
        "base-uri 'none'"
    ).replace("  ", " ")
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
    }


# -- the request -----------------------------------------------------------------------------
@dataclass
class AdminRequest:
    event: APIGatewayProxyEventV2
    settings: Settings
    db: Database
    session: Session | None
    guild_id: int | None = None
    new_cookie: str | None = None
    clear_cookie: bool = False
    new_device_cookie: str | None = None  # set after a local sign-in (auth.issue_device_cookie)
    back: str | None = None  # the page a refused POST is shown on again (see RefusedForm)
    # Which form field a refusal raised without one is about (AdminRequest.back_to).
    fields_by_error: FieldsOf = field(default_factory=dict)
    refused: RefusedForm | None = None  # set on the page shown again after a refusal
    _form: dict[str, list[str]] | None = None
    _files: dict[str, bytes] = field(default_factory=dict)

    def back_to(self, path: str, fields: FieldsOf | None = None) -> None:
        """If a rule refuses this POST, show the page at `path` again with what was typed and the
        message next to its field: the error's own `field`; else the first key of `fields` that
        is the error's class (or a parent) or words its message holds (case aside), in order;
        else the form as a whole. The words are for the domain's refusals that are plain
        sentences only ("The reason is too long"): the field is a page's concern, not the rule's.
        `fields` may also be a function of the message giving the field (or None)."""
        self.back = url(path)
        if fields:
            self.fields_by_error = fields

    @contextmanager
    def about(self, field_name: str) -> Iterator[None]:
        """A refusal raised inside is about this form field (unless it names one itself)."""
        try:
            yield
        except DomainError as exc:
            if getattr(exc, "field", None) is None:
                exc.field = field_name
            raise

    def refusal(self, exc: DomainError) -> RefusedForm:
        """This POST's form as the page shows it again after `exc`."""
        name = getattr(exc, "field", None)
        if name == WHOLE_FORM:
            name = None
        elif name is None and callable(self.fields_by_error):
            name = self.fields_by_error(exc.message)
        elif name is None:
            text = exc.message.lower()
            name = next(
                (
                    f
                    for key, f in self.fields_by_error.items()
                    if (key.lower() in text if isinstance(key, str) else isinstance(exc, key))
                ),
                None,
            )
        self._parse_form()
        assert self._form is not None
        kept = {k: v for k, v in self._form.items()
                if k not in NOT_KEPT and not any(w in k.lower() for w in SECRET_WORDS)}  # fmt: skip
        problems = getattr(exc, "problems", None)
        if problems:  # several fields at once (FieldProblems)
            errors = {key or WHOLE_FORM: in_words(message, key) for key, message in problems.items()}
        else:
            errors = {name or WHOLE_FORM: refusal_message(exc, name)}
        return RefusedForm(self.form(FORM_NAME), kept, errors)

    # who and where
    @property
    def identity(self) -> Identity:
        if self.session is None or self.session.identity is None:
            raise SignInNeeded()
        return self.session.identity

    @property
    def method(self) -> str:
        return self.event.request_context.http.method.upper()

    @property
    def path(self) -> str:
        return self.event.raw_path

    @property
    def client_address(self) -> str:
        return self.event.request_context.http.source_ip or "unknown"

    @property
    def https(self) -> bool:
        return is_https(self.event, self.settings)

    # input
    def query(self, name: str, default: str = "") -> str:
        return (self.event.query_string_parameters or {}).get(name, default)

    @property
    def query_dict(self) -> dict[str, str]:
        return dict(self.event.query_string_parameters or {})

    def _parse_form(self) -> None:
        if self._form is not None:
            return
        self._form = {}
        ctype = (self.event.headers or {}).get("content-type", "")
        raw: bytes
        if self.event.body is None:
            raw = b""
        elif self.event.is_base64_encoded:
            import base64

            raw = base64.b64decode(self.event.body)
        else:
            raw = self.event.body.encode("utf-8")
        if len(raw) > MAX_UPLOAD:
            raise Refused(413, "That upload is too large (at most 2 MB).")
        if ctype.startswith("multipart/form-data"):
            message = BytesParser(policy=email_policy.HTTP).parsebytes(
                b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + raw
            )
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if not name:
                    continue
                payload = part.get_payload(decode=True) or b""
                if part.get_filename() is not None:
                    self._files[name] = payload
                else:
                    self._form.setdefault(name, []).append(payload.decode("utf-8", "replace"))
        else:
            for key, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
                self._form.setdefault(key, []).append(value)

    def form(self, name: str, default: str = "") -> str:
        self._parse_form()
        assert self._form is not None
        values = self._form.get(name)
        return values[0] if values else default

    def form_list(self, name: str) -> list[str]:
        self._parse_form()
        assert self._form is not None
        return list(self._form.get(name, []))

    def form_lists(self) -> dict[str, list[str]]:
        """Every field of the form, each with all its values (as RefusedForm keeps them)."""
        self._parse_form()
        assert self._form is not None
        return {k: list(v) for k, v in self._form.items()}

    def form_dict(self) -> dict[str, str]:
        self._parse_form()
        assert self._form is not None
        return {k: v[0] for k, v in self._form.items()}

    def file_text(self, name: str) -> str:
        self._parse_form()
        data = self._files.get(name, b"")
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput("The uploaded file is not UTF-8 text (save it as CSV UTF-8).") from None

    def form_int(self, name: str, what: str, *, required: bool = True) -> int | None:
        text = self.form(name).strip()
        if not text:
            if required:
                raise InvalidInput(f"{what} is required.", field=name)
            return None
        with self.about(name):
            return parse_whole_number(text, what)

    def form_id(self, name: str, what: str) -> int:
        with self.about(name):
            return parse_snowflake(self.form(name).strip(), what)

    def checkbox(self, name: str) -> bool:
        return self.form(name) in ("on", "true", "1", "yes")

    # output
    def flash(self, kind: str, message: str) -> None:
        if self.session is not None:
            self.db.run(sessions.add_flash, self.session, kind, message)


def load_request(event: APIGatewayProxyEventV2, settings: Settings | None = None) -> AdminRequest:
    settings = settings or get_settings()
    db = runtime.get_database()
    token = event_cookie(event, cookie_name(is_https(event, settings)))
    session = None
    if token:
        session = db.run(sessions.load, token, idle=timedelta(minutes=settings.admin_session_idle_minutes))
    if session is not None:  # a Discord session's rights are Discord's to say, every few minutes
        session = auth.recheck_discord_rights(db, session, settings)
        if session is None:  # the rights are gone: the session has ended
            return AdminRequest(event, settings, db, None, clear_cookie=True)
    return AdminRequest(event, settings, db, session)


def ensure_session(req: AdminRequest) -> Session:
    """An anonymous session for pages that post forms before sign-in (sign-in itself)."""
    if req.session is None:
        req.session = req.db.run(sessions.create, identity=None, max_age=sessions.ANONYMOUS_LIFETIME)
        req.new_cookie = req.session.token
    return req.session


def check_csrf(req: AdminRequest) -> None:
    if req.session is None:
        raise Refused(403, "Your session has ended. Sign in again.")
    if not req.session.csrf_ok(req.form("csrf_token")):
        raise Refused(
            403, "This form has expired or did not come from this site. Reload the page and try again."
        )


def canonical_id(raw: str, digits: int = 19) -> bool:
    """Whether a number in a path is written as the site writes it: digits 0-9, no sign, no
    leading zero. Another spelling of the same id (/g/0300.../) is a page that does not exist,
    so every page has one address (and one entry in logs, caches and the audit trail)."""
    return raw.isascii() and raw.isdigit() and len(raw) <= digits and raw[0] != "0"


def check_guild(req: AdminRequest, raw_guild_id: str) -> int:
    try:
        if not canonical_id(raw_guild_id):
            raise DomainError("not an id as the site writes it")
        guild_id = parse_snowflake(raw_guild_id, "guild id")
    except DomainError:
        raise Refused(404, "There is no such server.") from None
    if not req.identity.may_manage(guild_id):
        raise Refused(403, "You do not manage this server.")
    req.guild_id = guild_id
    return guild_id


def _cookie(req: AdminRequest) -> list[Cookie]:
    name = cookie_name(req.https)
    cookies = []
    if req.new_cookie:
        hours = req.settings.admin_session_max_hours
        cookies.append(Cookie(name, req.new_cookie, path="/", secure=req.https, http_only=True,
                              same_site=SameSite.LAX_MODE, max_age=hours * 3600))  # fmt: skip
    elif req.clear_cookie:
        cookies.append(
            Cookie(
                name, "", path="/", secure=req.https, http_only=True, same_site=SameSite.LAX_MODE, max_age=0
            )
        )
    if req.new_device_cookie:  # only ever sent back to the sign-in form, which is same-site
        cookies.append(Cookie(device_cookie_name(req.https), req.new_device_cookie, path="/", secure=req.https,
                              http_only=True, same_site=SameSite.STRICT_MODE,
                              max_age=auth.DEVICE_COOKIE_DAYS * 86400))  # fmt: skip
    return cookies


class UnsafeHeader(ValueError):
    """A response header would carry a character a header line cannot hold (CR, LF, any other
    control character, or non-ASCII): the response is refused rather than sent."""


def _check_header(name: str, value: str) -> None:
    # Printable ASCII only: a CR or LF would end the header line and start one the sender
    # chose (header injection); other control characters and non-ASCII are not valid either.
    for text in (name, value):
        if not all(" " <= c <= "~" for c in text):
            raise UnsafeHeader(f"refused a response header with an unsafe character: {name!r}")


def respond(
    req: AdminRequest | None,
    status: int,
    body: str | bytes,
    content_type: str = "text/html; charset=utf-8",
    headers: dict[str, str] | None = None,
    settings: Settings | None = None,
) -> Response:
    """Every answer of the site is built here, so every header is checked here."""
    settings = settings or (req.settings if req else get_settings())
    all_headers = {**security_headers(settings), "Cache-Control": "no-store", **(headers or {})}
    cookies = _cookie(req) if req else []
    for name, value in [
        *all_headers.items(),
        ("Content-Type", content_type),
        *(("Set-Cookie", str(c)) for c in cookies),
    ]:
        _check_header(name, value)
    return Response(status, content_type, body, all_headers, cookies=cookies)


def page(req: AdminRequest, template: str, status: int = 200, **context: Any) -> Response:
    identity = req.session.identity if req.session else None

    def load(conn):
        flashes = sessions.take_flashes(conn, req.session) if req.session else []
        guilds = auth.guild_names(conn, list(identity.guild_ids)) if identity and identity.guild_ids else []
        profile = profiles.guild_profile(conn, req.guild_id) if req.guild_id else None
        pending = (
            reward_store.count_redemptions(conn, req.guild_id, state="pending")
            if req.guild_id and identity
            else 0
        )  # the menu shows the purchases to hand over (and the dashboard's figure is this count)
        # and the webhooks the worker switched off after failures
        off = webhooks.disabled_by_failures(conn, req.guild_id) if req.guild_id and identity else 0
        zone = preferences.time_zone(conn, identity, req.guild_id)
        return flashes, guilds, profile, pending, off, zone

    flashes, guilds, guild_profile, pending, webhooks_off, zone = req.db.run(load)
    tz = timefmt.zone(zone.zone)
    people = People(req.guild_id)
    csrf_token = req.session.csrf_token if req.session else ""
    forms = _PageForms(req.refused, csrf_token)
    if req.refused is not None and status == 200:
        status = 422  # the page again, with the refused form: the POST did nothing
    html = render_template(
        template,
        req=req,
        identity=identity,
        csrf_token=csrf_token,
        form_for=forms.view,
        refused_marker=forms.marker,
        flashes=flashes,
        guild_id=req.guild_id,
        guilds=guilds,
        current_guild=next((g for g in guilds if g[0] == req.guild_id), None),
        guild_profile=guild_profile[0] if guild_profile else None,
        who=people.mark,
        pending_redemptions=pending,
        webhooks_off=webhooks_off,
        time_zone=tz,
        time_zone_label=timefmt.zone_now_label(tz),
        **context,
    )
    html = people.fill(req, forms.fill(html))
    if guild_profile and guild_profile[1]:  # missing or old: the worker asks Discord
        profiles.request_refresh(req.guild_id, [], guild=True)
    return respond(req, status, html)


class _PageForms:
    """The forms one page renders. A message the page did not place next to a field (a form
    without a name, a field the page does not show) is shown at the top of the page instead,
    where base.html leaves `refused_marker`: a refusal is never lost."""

    def __init__(self, refused: RefusedForm | None, csrf_token: str) -> None:
        self.refused, self.csrf_token = refused, csrf_token
        self.shown: set[str] = set()
        self.marker = Markup("\x02refused:{}\x03").format(secrets.token_hex(8))

    def view(self, name: str) -> FormView:
        return FormView(name, self.refused, self.csrf_token, self.shown)

    def fill(self, html: str) -> str:
        return html.replace(str(self.marker), str(self.summary()))

    def summary(self) -> Markup:
        """The refusal at the top of the page, announced by a screen reader (role=alert): that
        nothing was changed and every message, each linked to where it stands next to its field
        (a message no field shows is only here)."""
        if self.refused is None or not self.refused.errors:
            return Markup("")
        items = Markup("").join(
            Markup('<li><a href="#{}">{}</a></li>').format(
                FormView(self.refused.name, None, "").error_id(key), message
            )
            if key in self.shown
            else Markup("<li>{}</li>").format(message)
            for key, message in self.refused.errors.items()
        )
        n = len(self.refused.errors)
        head = "Nothing was changed: " + (
            "this needs another look." if n == 1 else f"{n} things need another look."
        )
        return Markup(
            '<div class="flash flash-error form-summary" id="form-summary" role="alert">'
            '<p class="form-summary-head">{}</p><ul>{}</ul></div>'
        ).format(head, items)


class People:
    """Names and avatars for every person a page shows, from one query however many rows.

    Templates write `{{ who(user_id) }}`; that leaves a marker (with a nonce no text on the page
    can guess), and once the page is rendered every marked id is looked up at once and the
    markers are replaced by the person: avatar, name, a link to the member, the id on hover.
    Members whose names are missing or old are claimed in the same transaction and the worker
    is asked to refresh them from Discord after it (the page never waits for Discord)."""

    def __init__(self, guild_id: int | None) -> None:
        self.guild_id = guild_id
        self.nonce = secrets.token_hex(8)
        self.ids: set[int] = set()

    def mark(self, user_id: Any, link: bool = True, plain: bool = False) -> Markup:
        if user_id in (None, ""):
            return Markup("")
        try:
            uid = int(user_id)
        except (TypeError, ValueError):
            return Markup.escape(str(user_id))
        self.ids.add(uid)
        style = "p" if plain else ("l" if link else "n")
        return Markup("\x02{}:{}:{}\x03").format(self.nonce, uid, style)

    def fill(self, req: AdminRequest, html: str) -> str:
        if not self.ids:
            return html
        guild_id = self.guild_id or 0

        def load(conn):
            found = profiles.people(conn, guild_id, self.ids)
            stale = profiles.claim_stale(conn, guild_id, self.ids) if self.guild_id else []
            return found, stale

        found, stale = req.db.run(load)
        if stale:
            profiles.request_refresh(guild_id, stale)
        pattern = re.compile("\x02" + self.nonce + r":(\d+):([lnp])\x03")

        def person(match: re.Match[str]) -> str:
            uid, style = int(match.group(1)), match.group(2)
            p = found.get(uid) or profiles.Person(uid, None, None, None)
            return str(
                person_html(p, self.guild_id if style == "l" and p.member else None, plain=style == "p")
            )

        return pattern.sub(person, html)


def person_html(p: profiles.Person, link_guild: int | None, plain: bool = False) -> Markup:
    """A person as the site shows one: avatar (or initial), name, the Discord id on hover and in
    the copied text; linked to their member page when they are a member of the guild."""
    sid = format_snowflake(p.user_id)
    if plain:
        return Markup.escape(p.label)
    picture = (
        Markup('<img class="avatar" src="{}" alt="" width="20" height="20" loading="lazy">').format(
            p.avatar_url
        )
        if p.avatar_url
        else Markup('<span class="avatar initial" aria-hidden="true">{}</span>').format(p.initial)
    )
    name = Markup("{}").format(p.label)
    if link_guild:
        name = Markup('<a href="{}">{}</a>').format(
            url(f"/g/{format_snowflake(link_guild)}/members/{sid}"), p.label
        )
    return Markup('<span class="person" title="Discord id {sid}" data-id="{sid}">{pic}{name}'
                  '<span class="sr"> (id {sid})</span></span>').format(sid=sid, pic=picture, name=name)  # fmt: skip


def guild_names(req: AdminRequest, guild_ids: tuple[int, ...]) -> list[tuple[int, str]]:
    return req.db.run(auth.guild_names, list(guild_ids)) if guild_ids else []


def redirect(req: AdminRequest | None, location: str, settings: Settings | None = None) -> Response:
    # 303: the browser follows with a GET, so a reload never re-posts the form.
    return respond(req, 303, "", headers={"Location": location}, settings=settings)


def sign_in_redirect(req: AdminRequest) -> Response:
    target = req.path
    if req.method == "GET" and req.event.raw_query_string:
        target += "?" + req.event.raw_query_string
    return redirect(req, url("/login", next=target))


def safe_next(target: str | None) -> str:
    """The one check of a redirect target that came from outside (`next=`): a path inside the
    site, or the site's home. No open redirect (another host, `//`, a backslash), no way out of
    the site's prefix (a dot segment, an encoded dot or slash), and no control
    character (nor a lone surrogate) at all, so nothing a browser sent can end a header line;
    characters beyond ASCII are percent-encoded, as a Location header holds ASCII only."""
    if not isinstance(target, str) or any(unicodedata.category(c) in ("Cc", "Cs") for c in target):
        return url("/")
    if not target.startswith(PREFIX + "/") or target.startswith("//") or "\\" in target:
        return url("/")
    if _leaves_by_dots(urlsplit(target).path):
        return url("/")
    # Keep what is already URL syntax (including %XX escapes); encode the rest.
    return quote(target, safe="/?#[]@!$&'()*+,;=:%-._~")


# Percent-encoded dot, slash and backslash: a browser resolves "%2e%2e" as "..", and a server
# or proxy that decodes once more turns "..%2f" into "../". No path of the site has them.
_ENCODED_STEPS = ("%2e", "%2f", "%5c")


def _leaves_by_dots(path: str) -> bool:
    """Whether a path could climb out of where it starts: a "." or ".." segment, or an encoded
    dot, slash or backslash. Refused rather than normalised: the site never links such a path,
    so only a crafted link has one."""
    lowered = path.lower()
    return any(step in lowered for step in _ENCODED_STEPS) or any(s in (".", "..") for s in path.split("/"))


def static_file(name: str) -> tuple[bytes, str] | None:
    path = (STATIC / name).resolve()
    if STATIC not in path.parents or not path.is_file():
        return None
    ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype == "application/javascript":
        ctype += "; charset=utf-8"
    return path.read_bytes(), ctype


def new_state() -> str:
    return secrets.token_urlsafe(24)
