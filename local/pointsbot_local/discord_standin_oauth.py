"""Discord's side of OAuth2 for the local stand-in: authorize page, token, users/@me, guilds.

The stand-in knows a few users and which guilds they are in with what permissions
(`oauth_directory`): tests set it directly, and change it (`join` with other permissions,
`leave`, `revoke`) to see the admin site re-check a session's rights; people add a user
(owner of a guild) with the small form on the authorize page. Codes are single-use and
expire; tokens are opaque.
"""

from __future__ import annotations

import base64
import html
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from .apigw import HttpResponse
from .discord_standin import Request, error_response, json_response, standin

ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
CODE_LIFETIME_S = 600


@dataclass
class StandInUser:
    id: str
    username: str
    global_name: str | None = None
    # guild id -> (guild name, owner?, permissions bit set)
    guilds: dict[str, tuple[str, bool, int]] = field(default_factory=dict)


class OAuthDirectory:
    """The stand-in's idea of who exists: users, their guilds, issued codes and tokens."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.users: dict[str, StandInUser] = {}
        self.codes: dict[str, tuple[str, str, str, float]] = {}  # code -> (user, client, redirect, expiry)
        self.tokens: dict[str, str] = {}  # access token -> user id

    def add_user(self, user_id: str, username: str, global_name: str | None = None) -> StandInUser:
        with self.lock:
            user = self.users.get(user_id) or StandInUser(user_id, username, global_name)
            user.username, user.global_name = username, global_name
            self.users[user_id] = user
            return user

    def join(
        self, user_id: str, guild_id: str, guild_name: str, *, owner: bool = False, permissions: int = 0
    ) -> None:
        with self.lock:
            self.users[user_id].guilds[guild_id] = (guild_name, owner, permissions)

    def leave(self, user_id: str, guild_id: str) -> None:
        with self.lock:
            self.users[user_id].guilds.pop(guild_id, None)

    def revoke(self, user_id: str) -> None:
        """The user de-authorized the application: their access tokens stop working."""
        with self.lock:
            for token in [t for t, u in self.tokens.items() if u == user_id]:
                del self.tokens[token]

    def reset(self) -> None:
        with self.lock:
            self.users.clear()
            self.codes.clear()
            self.tokens.clear()


oauth_directory = OAuthDirectory()


def _client_secret() -> str:
    return os.environ.get("DISCORD_CLIENT_SECRET", "")


def _client_id() -> str:
    return os.environ.get("DISCORD_APPLICATION_ID", "")


def _html(status: int, body: str) -> HttpResponse:
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Discord (local stand-in)</title></head>"
        f"<body style='font-family:sans-serif;max-width:36rem;margin:2rem auto'>{body}</body></html>"
    )
    return HttpResponse(status, [("content-type", "text/html; charset=utf-8")], page.encode())


def _redirect(location: str) -> HttpResponse:
    return HttpResponse(302, [("location", location)], b"")


@standin.route("GET", "/oauth2/authorize")
def authorize_page(request: Request) -> HttpResponse:
    """Discord asks "log in as whom and allow?"; here a list of known users to pick from."""
    q = request.query
    if q.get("response_type") != "code" or q.get("client_id") != _client_id() or not q.get("redirect_uri"):
        return _html(
            400, "<h1>Invalid OAuth2 request</h1><p>response_type, client_id or redirect_uri is wrong.</p>"
        )
    hidden = "".join(
        f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>"
        for k, v in q.items()
        if k in ("client_id", "redirect_uri", "state", "scope")
    )
    with oauth_directory.lock:
        users = list(oauth_directory.users.values())
    buttons = "".join(
        f"<p><button name='user_id' value='{html.escape(u.id)}' data-user='{html.escape(u.id)}'>"
        f"Authorize as {html.escape(u.global_name or u.username)}</button></p>"
        for u in users
    )
    body = (
        f"<h1>Authorize application {html.escape(q.get('client_id', ''))}</h1>"
        f"<p>Scopes: {html.escape(q.get('scope', ''))}</p>"
        f"<form method='post' action=''>{hidden}{buttons or '<p>No users known to the stand-in.</p>'}"
        "<p><button name='deny' value='1'>Cancel</button></p></form>"
        f"<form method='post' action=''>{hidden}<fieldset><legend>Or a new user</legend>"
        "<label>id <input name='new_user_id' required></label> <label>name <input name='new_username' required></label>"
        " <label>guild id (owner) <input name='new_guild_id'></label>"
        " <button>Authorize</button></fieldset></form>"
    )
    return _html(200, body)


@standin.route("POST", "/oauth2/authorize")
def authorize_submit(request: Request) -> HttpResponse:
    form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
    redirect_uri, state = form.get("redirect_uri", ""), form.get("state", "")
    if form.get("client_id") != _client_id() or not redirect_uri:
        return _html(400, "<h1>Invalid OAuth2 request</h1>")
    sep = "&" if "?" in redirect_uri else "?"
    if form.get("deny"):
        return _redirect(f"{redirect_uri}{sep}{urlencode({'error': 'access_denied', 'state': state})}")
    user_id = form.get("user_id") or form.get("new_user_id", "")
    if form.get("new_user_id"):
        oauth_directory.add_user(user_id, form.get("new_username") or user_id)
        if form.get("new_guild_id"):
            oauth_directory.join(user_id, form["new_guild_id"], "Local guild", owner=True)
    if user_id not in oauth_directory.users:
        return _html(400, "<h1>Unknown user</h1>")
    code = secrets.token_urlsafe(20)
    with oauth_directory.lock:
        oauth_directory.codes[code] = (
            user_id,
            form["client_id"],
            redirect_uri,
            time.time() + CODE_LIFETIME_S,
        )
    return _redirect(f"{redirect_uri}{sep}{urlencode({'code': code, 'state': state})}")


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            return client_id, secret
        except (ValueError, UnicodeDecodeError):
            return "", ""
    return form.get("client_id", ""), form.get("client_secret", "")


@standin.route("POST", "/oauth2/token")
def token(request: Request) -> HttpResponse:
    form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
    client_id, secret = _client_credentials(request, form)
    if client_id != _client_id() or not secret or secret != _client_secret():
        return json_response(401, {"error": "invalid_client"})
    if form.get("grant_type") != "authorization_code":
        return json_response(400, {"error": "unsupported_grant_type"})
    with oauth_directory.lock:
        issued = oauth_directory.codes.pop(form.get("code", ""), None)  # single use
    if (
        issued is None
        or issued[3] < time.time()
        or issued[1] != client_id
        or issued[2] != form.get("redirect_uri")
    ):
        return json_response(
            400, {"error": "invalid_grant", "error_description": 'Invalid "code" in request.'}
        )
    access = secrets.token_urlsafe(24)
    with oauth_directory.lock:
        oauth_directory.tokens[access] = issued[0]
    return json_response(
        200,
        {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": 604800,
            "refresh_token": secrets.token_urlsafe(24),
            "scope": "identify guilds",
        },
    )


def _bearer_user(request: Request) -> StandInUser | None:
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        return None
    with oauth_directory.lock:
        user_id = oauth_directory.tokens.get(header[7:])
        return oauth_directory.users.get(user_id) if user_id else None


@standin.route("GET", "/users/@me")
def current_user(request: Request) -> HttpResponse:
    user = _bearer_user(request)
    if user is None:
        return error_response(401, 0, "401: Unauthorized")
    return json_response(
        200,
        {"id": user.id, "username": user.username, "global_name": user.global_name, "discriminator": "0",
         "avatar": None, "public_flags": 0, "flags": 0, "mfa_enabled": False, "locale": "en-US"},
    )  # fmt: skip


@standin.route("GET", "/users/@me/guilds")
def current_user_guilds(request: Request) -> HttpResponse:
    user = _bearer_user(request)
    if user is None:
        return error_response(401, 0, "401: Unauthorized")
    guilds = [
        {
            "id": gid,
            "name": name,
            "icon": None,
            "banner": None,
            "owner": owner,
            "permissions": str(perms),
            "features": [],
        }
        for gid, (name, owner, perms) in sorted(user.guilds.items())
    ]
    return json_response(200, guilds)


def directory_json() -> str:
    """What the stand-in knows, for people poking at it."""
    with oauth_directory.lock:
        return json.dumps(
            {u.id: {"username": u.username, "guilds": u.guilds} for u in oauth_directory.users.values()}
        )
