"""The admin site's Lambda handler on its own: what it answers when the database is away, and
sign-in throttling by client address."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from pointsbot.admin import auth
from pointsbot.platform import runtime
from pointsbot.platform.db import Database
from pointsbot_local import apigw

pytestmark = pytest.mark.integration
GUILD = 760000000000000001


@pytest.fixture
def database_away():
    # Nothing listens on port 1: every connection is refused at once.
    runtime.set_database(Database("postgresql://postgres@127.0.0.1:1/none", connect_timeout_s=1))
    yield
    runtime.reset()


def test_database_away_is_a_503_page_not_a_stack_trace(database_away):
    from admin_site.app import lambda_handler

    # Given a browser with a session cookie, and no database
    event = apigw.to_event("GET", "/admin/g/1/members", {"cookie": "pointsbot_admin=abc", "host": "x"}, b"")
    # When it asks for a page
    result = lambda_handler(event, apigw.LambdaContext("admin_site"))
    # Then it gets a plain 503 page saying so
    assert result["statusCode"] == 503
    assert "The database is not answering right now" in result["body"]
    assert "Traceback" not in result["body"] and "psycopg" not in result["body"]
    assert "Content-Security-Policy" in result["headers"]


def test_unknown_paths_are_a_404_page(database_away):
    from admin_site.app import lambda_handler

    result = lambda_handler(
        apigw.to_event("GET", "/admin/nowhere", {}, b""), apigw.LambdaContext("admin_site")
    )
    assert result["statusCode"] == 404 and "There is no such page." in result["body"]


# -- a browser against the handler, in-process (any client address) ----------------------------
class Browser:
    """Keeps the session cookie like a browser and sends requests from one client address."""

    def __init__(self, address: str = "198.51.100.7") -> None:
        self.address = address
        self.cookie: str | None = None

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> dict:
        from admin_site.app import lambda_handler

        headers = {"host": "admin.test"}
        if self.cookie:
            headers["cookie"] = f"pointsbot_admin={self.cookie}"
        body = b""
        if form is not None:
            headers["content-type"] = "application/x-www-form-urlencoded"
            body = urlencode(form).encode()
        event = apigw.to_event(method, path, headers, body, source_ip=self.address)
        result = lambda_handler(event, apigw.LambdaContext("admin_site"))
        for cookie in result.get("cookies", []):
            name, _, rest = cookie.partition("=")
            if name == "pointsbot_admin":
                value = rest.split(";", 1)[0]
                self.cookie = value or None
        return result

    def csrf(self, path: str = "/admin/login") -> str:
        body = self.request("GET", path)["body"]
        match = re.search(r'name="csrf_token" value="([^"]+)"', body)
        assert match, body[:300]
        return match.group(1)

    def sign_in(self, name: str, password: str) -> dict:
        form = {"csrf_token": self.csrf(), "name": name, "password": password}
        return self.request("POST", "/admin/login", form)


@pytest.fixture
def site(database_url, monkeypatch):
    """The admin handler on this module's database, with the settings a fresh environment gives."""
    monkeypatch.delenv("ADMIN_BASE_URL", raising=False)
    runtime.reset()
    runtime.set_database(Database(database_url))
    yield runtime.get_database()
    runtime.reset()


def test_a_strangers_wrong_passwords_do_not_lock_the_admin_out(site):
    # Given an admin account, and a stranger guessing its password from one address
    site.run(
        lambda conn: conn.execute(
            "INSERT INTO guilds (guild_id) VALUES (%s) ON CONFLICT DO NOTHING", (GUILD,)
        )
    )
    site.run(auth.create_account, "root-admin", "the admin's own password", [GUILD])
    stranger = Browser("203.0.113.66")
    for attempt in range(12):
        stranger.sign_in("root-admin", f"guess number {attempt:04d}")
    # Then the stranger is stopped, even with the right password
    refused = stranger.sign_in("root-admin", "the admin's own password")
    assert refused["statusCode"] == 303 and refused["headers"]["Location"] == "/admin/login"
    assert "Too many failed sign-ins" in stranger.request("GET", "/admin/login")["body"]
    # When the admin signs in from their own address
    admin = Browser("198.51.100.7")
    answer = admin.sign_in("root-admin", "the admin's own password")
    # Then they are in
    assert answer["statusCode"] == 303 and answer["headers"]["Location"] == "/admin/"
    assert admin.request("GET", f"/admin/g/{GUILD}/")["statusCode"] == 200


def test_one_address_guessing_many_names_meets_the_address_limit(site):
    site.run(
        lambda conn: conn.execute(
            "INSERT INTO guilds (guild_id) VALUES (%s) ON CONFLICT DO NOTHING", (GUILD,)
        )
    )
    site.run(auth.create_account, "second-admin", "second admin password", [GUILD])
    sprayer = Browser("203.0.113.99")
    for attempt in range(20):  # 4x the per-name limit, spread over names
        sprayer.sign_in(f"name-{attempt}", "some password 1234")
    refused = sprayer.sign_in("second-admin", "second admin password")
    assert refused["headers"]["Location"] == "/admin/login"
    admin = Browser("198.51.100.8")
    assert admin.sign_in("second-admin", "second admin password")["headers"]["Location"] == "/admin/"
    assert admin.request("GET", f"/admin/g/{GUILD}/")["statusCode"] == 200


def test_a_name_guessed_from_many_addresses_meets_the_far_higher_name_limit(site):
    # Given 100 failures for one name (20x the limit), 4 from each of 25 addresses
    for n in range(100):
        site.run(auth.record_failure, "spread-out", f"192.0.2.{n % 25}")
    # Then a further try is refused from a fresh address too, before any password is checked
    with pytest.raises(auth.TooManyAttempts):
        site.run(auth.sign_in_local, "spread-out", "any password at all", "198.51.100.200", 5)
