"""Who may reach what: signed out, without CSRF, in someone else's guild, after sign-out.

Plain HTTP is enough here (status codes and headers); the browser tests cover the pages.
"""

from __future__ import annotations

import re

import pytest
from _admin_e2e import ADMIN_NAME, GUILD_A, GUILD_B, HttpClient

from admin_site.app import ROUTES

pytestmark = pytest.mark.e2e

_SAMPLE = {"guild_id": str(GUILD_A), "user_id": "730000000000000003", "batch_id": "1", "submission_id": "1",
           "decision": "approve", "achievement_id": "1", "name": "site.css", "threshold_id": "1", "key_id": "1", "webhook_id": "1", "delivery_id": "1",
           "change_id": "1", "reward_id": "1", "purchase_id": "1", "season_id": "1"}  # fmt: skip


def _fill(path: str, **override: str) -> str:
    values = {**_SAMPLE, **override}
    return re.sub(r"<(\w+)>", lambda m: values[m.group(1)], path)


PROTECTED = [r for r in ROUTES if r.access != "public"]
GUILD_ROUTES = [r for r in ROUTES if r.access == "guild"]


def test_the_route_table_is_what_the_app_serves():
    # Given the route table the tests walk; Then it holds every section, so none is skipped
    paths = {r.path for r in ROUTES}
    for section in ("/g/<guild_id>/", "/g/<guild_id>/points", "/g/<guild_id>/transactions", "/g/<guild_id>/members",
                    "/g/<guild_id>/emails", "/g/<guild_id>/achievements", "/g/<guild_id>/dms",
                    "/g/<guild_id>/audit", "/g/<guild_id>/settings", "/g/<guild_id>/seasons"):  # fmt: skip
        assert section in paths
    assert len(PROTECTED) > 25


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: f"{r.method} {r.path}")
def test_signed_out_every_route_redirects_or_refuses(site, route):
    # Given a browser with no session
    client = HttpClient(site)
    # When it asks for the route
    status, headers, body = client.request(
        route.method, _fill(route.path), {"x": "1"} if route.method == "POST" else None
    )
    # Then a page sends it to sign in, and a form is refused without changing anything
    if route.method == "GET":
        assert status == 303
        assert headers["location"].startswith("/admin/login?next=")
    else:
        assert status == 403
        assert "sign in" in body.lower()


@pytest.mark.parametrize("route", [r for r in GUILD_ROUTES], ids=lambda r: f"{r.method} {r.path}")
def test_admin_of_guild_a_is_refused_on_guild_b(site, route):
    # Given the admin of guild A, signed in
    client = HttpClient(site)
    csrf = client.sign_in()
    # When they open or submit guild B's page (with a valid CSRF token even)
    data = {"csrf_token": csrf, "member": "730000000000000003", "amount": "5", "reason": "x", "operation": "award",
            "form_token": "guild-b-attempt", "csv_text": "730000000000000003,5,x", "content": "hi",
            "to": "730000000000000003"} if route.method == "POST" else None  # fmt: skip
    status, _, body = client.request(route.method, _fill(route.path, guild_id=str(GUILD_B)), data)
    # Then 403, and nothing of guild B changed
    assert status == 403, body[:300]
    assert "do not manage this server" in body
    counts = site.db.run(lambda conn: conn.execute(
        "SELECT (SELECT count(*) FROM transactions WHERE guild_id = %(b)s),"
        " (SELECT count(*) FROM direct_messages WHERE guild_id = %(b)s),"
        " (SELECT count(*) FROM members WHERE guild_id = %(b)s)", {"b": GUILD_B}).fetchone())  # fmt: skip
    assert counts == (0, 0, 0)


def test_a_form_without_csrf_token_is_refused(site):
    # Given a signed-in admin
    client = HttpClient(site)
    client.sign_in()
    before = site.db.run(lambda conn: conn.execute("SELECT count(*) FROM transactions").fetchone()[0])
    # When a form arrives without the token, or with a wrong one
    for token in (None, "forged"):
        data = {"member": "730000000000000009", "operation": "award", "amount": "5", "reason": "csrf",
                "form_token": f"csrf-{token}"}  # fmt: skip
        if token:
            data["csrf_token"] = token
        status, _, body = client.request("POST", f"/g/{GUILD_A}/points", data)
        # Then it is refused and nothing is written
        assert status == 403
        assert "did not come from this site" in body
    assert site.db.run(lambda conn: conn.execute("SELECT count(*) FROM transactions").fetchone()[0]) == before


def test_security_headers_and_cookie_flags(site):
    client = HttpClient(site)
    status, headers, _ = client.request("GET", "/login")
    assert status == 200
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert headers["x-content-type-options"] == "nosniff"


def test_sign_in_issues_a_new_session_and_sign_out_ends_it_on_the_server(site):
    # Given an anonymous session (the sign-in form's)
    client = HttpClient(site)
    client.csrf("/login")
    anonymous = {c.name: c.value for c in client.jar}["pointsbot_admin"]
    # When the admin signs in
    csrf = client.sign_in()
    signed_in = {c.name: c.value for c in client.jar}["pointsbot_admin"]
    # Then the session id changed
    assert signed_in != anonymous
    assert client.request("GET", f"/g/{GUILD_A}/")[0] == 200
    # When they sign out, a copy of the old cookie is worth nothing
    assert client.request("POST", "/logout", {"csrf_token": csrf})[0] == 303
    replay = HttpClient(site)
    replay.opener.addheaders = [("Cookie", f"pointsbot_admin={signed_in}")]
    status, headers, _ = replay.request("GET", f"/g/{GUILD_A}/")
    assert status == 303 and headers["location"].startswith("/admin/login")


def test_sign_in_attempts_are_throttled(site):
    # Given someone guessing passwords for an account
    client = HttpClient(site)
    name = "throttled"
    from pointsbot.admin import auth

    site.db.run(auth.create_account, name, "the right password 123", [GUILD_A])
    for _ in range(5):
        token = client.csrf("/login")
        client.request("POST", "/login", {"csrf_token": token, "name": name, "password": "wrong guess 1234"})
    # When the right password comes after too many failures
    token = client.csrf("/login")
    status, headers, body = client.request("POST", "/login", {"csrf_token": token, "_form": "login", "name": name,
                                                              "password": "the right password 123"})  # fmt: skip
    # Then it is refused for now: the sign-in page again, with the name kept
    assert status == 422 and "location" not in headers
    assert "Too many failed sign-ins" in body and f'value="{name}"' in body
    assert name != ADMIN_NAME


def test_over_https_the_cookie_is_secure_and_host_prefixed(site):
    # Given a request that came in over HTTPS (API Gateway says so in X-Forwarded-Proto)
    import urllib.request

    request = urllib.request.Request(site.admin("/login"), headers={"X-Forwarded-Proto": "https"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the local runtime
        cookie = response.headers["Set-Cookie"]
    # Then the session cookie can only be sent back over HTTPS, to this host, for every path
    assert cookie.startswith("__Host-pointsbot_admin=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/" in cookie and "Domain" not in cookie


def test_the_guild_switcher_works_without_javascript_and_only_for_managed_guilds(site):
    client = HttpClient(site)
    client.sign_in()
    status, headers, _ = client.request("GET", f"/guilds?to={GUILD_A}")
    assert status == 303 and headers["location"] == f"/admin/g/{GUILD_A}/"
    status, _, body = client.request("GET", f"/guilds?to={GUILD_B}")
    assert status == 200 and "Beta Guild" not in body


def test_a_poisoned_next_plants_no_header_over_http(site):
    # Given a signed-in admin talking HTTP to the local runtime
    client = HttpClient(site)
    client.sign_in()
    # When a link carries CR/LF and a header of its own in next=
    status, headers, _ = client.request(
        "GET", "/login?next=/admin/%0D%0ASet-Cookie:%20planted=1%0D%0AX-Planted:%201"
    )
    # Then the redirect goes home and the response has no header the link chose
    assert status == 303 and headers["location"] == "/admin/"
    assert "x-planted" not in headers and "planted" not in headers.get("set-cookie", "")


def test_the_only_public_pages_are_sign_in_static_files_and_the_public_leaderboard(site):
    # Given the route table; Then nothing of a guild is public but its public leaderboard
    public = {(r.method, r.path) for r in ROUTES if r.access == "public"}
    assert public == {("GET", "/static/<name>"), ("GET", "/"), ("GET", "/login"), ("POST", "/login"),
                      ("POST", "/oauth/start"), ("GET", "/oauth/callback"), ("GET", "/leaderboard/<guild_id>")}  # fmt: skip
    # And signed out, the public leaderboard of a guild that has not switched it on (A) and of an
    # unknown guild are the same 404 page, not a sign-in redirect, and set no cookie
    client = HttpClient(site)
    off = client.request("GET", f"/leaderboard/{GUILD_A}")
    unknown = client.request("GET", "/leaderboard/799999999999999999")
    assert off[0] == unknown[0] == 404 and off[2] == unknown[2]
    assert "set-cookie" not in off[1] and "location" not in off[1]
    # And the admin page of the same board still needs the signed-in admin of the guild
    status, headers, _ = client.request("GET", f"/g/{GUILD_A}/leaderboard")
    assert status == 303 and headers["location"].startswith("/admin/login?next=")
