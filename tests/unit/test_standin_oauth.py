"""The Discord stand-in's OAuth2 side, called in-process: codes are single-use and bound to the
client and redirect URI, the client secret is checked, tokens give the user and their guilds."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from pointsbot_local.discord_standin import PREFIX, standin
from pointsbot_local.discord_standin_oauth import MANAGE_GUILD, oauth_directory

pytestmark = pytest.mark.unit
REDIRECT = "http://127.0.0.1:9/admin/oauth/callback"


@pytest.fixture(autouse=True)
def client(monkeypatch):
    monkeypatch.setenv("DISCORD_APPLICATION_ID", "100000000000000001")
    monkeypatch.setenv("DISCORD_CLIENT_SECRET", "s3cret")
    oauth_directory.reset()
    oauth_directory.add_user("200000000000000002", "dora", "Dora")
    oauth_directory.join("200000000000000002", "300000000000000003", "Guild", permissions=MANAGE_GUILD)


def _call(method, path, body=b"", headers=None):
    return standin(method, PREFIX + path, headers or {}, body)


def _code(state="st") -> str:
    form = urlencode({"client_id": "100000000000000001", "redirect_uri": REDIRECT, "state": state,
                      "user_id": "200000000000000002"}).encode()  # fmt: skip
    answer = _call("POST", "/oauth2/authorize", form)
    assert answer.status == 302
    location = dict(answer.headers)["location"]
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(REDIRECT) and query["state"] == [state]
    return query["code"][0]


def _token(code, secret="s3cret", redirect=REDIRECT):  # noqa: S107 - the test client's secret
    basic = base64.b64encode(f"100000000000000001:{secret}".encode()).decode()
    body = urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect}).encode()
    return _call("POST", "/oauth2/token", body, {"Authorization": f"Basic {basic}"})


def test_code_for_token_then_user_and_guilds_as_discord_shapes_them():
    answer = _token(_code())
    assert answer.status == 200
    token = json.loads(answer.body)["access_token"]
    me = json.loads(_call("GET", "/users/@me", headers={"Authorization": f"Bearer {token}"}).body)
    assert me["id"] == "200000000000000002" and me["global_name"] == "Dora"
    guilds = json.loads(_call("GET", "/users/@me/guilds", headers={"Authorization": f"Bearer {token}"}).body)
    assert guilds == [{"id": "300000000000000003", "name": "Guild", "icon": None, "banner": None, "owner": False,
                       "permissions": str(MANAGE_GUILD), "features": []}]  # fmt: skip


def test_a_code_works_once_with_the_right_secret_and_redirect_only():
    assert _token(_code(), secret="wrong").status == 401
    assert _token(_code(), redirect="http://elsewhere/cb").status == 400
    code = _code()
    assert _token(code).status == 200
    assert _token(code).status == 400  # used up
    assert _call("GET", "/users/@me", headers={"Authorization": "Bearer made-up"}).status == 401


def test_the_authorize_page_lists_known_users_and_escapes_them():
    oauth_directory.add_user("200000000000000009", "<b>x</b>")
    query = urlencode({"response_type": "code", "client_id": "100000000000000001", "redirect_uri": REDIRECT,
                       "scope": "identify guilds", "state": "s"})  # fmt: skip
    page = _call("GET", f"/oauth2/authorize?{query}").body.decode()
    assert "Authorize as Dora" in page and "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert _call("GET", "/oauth2/authorize?response_type=code&client_id=999").status == 400
