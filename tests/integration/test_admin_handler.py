"""The admin site's Lambda handler on its own: what it answers when the database is away, and
sign-in throttling by client address, and a Discord session's rights re-checked against
Discord (the stand-in, over HTTP)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from _admin_browser import Browser

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


# -- a browser against the handler, in-process (any client address): tests/integration/_admin_browser.py
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
    # (the sign-in page again, in the refused POST's answer: web.RefusedForm)
    assert refused["statusCode"] == 422 and "Too many failed sign-ins" in refused["body"]
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
    assert refused["statusCode"] == 422 and "Too many failed sign-ins" in refused["body"]
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


# -- a Discord session's rights are re-checked against Discord ---------------------------------
GUILD_2 = 760000000000000002
DORA = "780000000000000008"


@pytest.fixture
def discord_site(site, standin_url, monkeypatch):
    """The admin handler signing in through the Discord stand-in (over HTTP), which knows Dora:
    Manage Server in two guilds the bot serves."""
    from pointsbot.platform.config import reset_settings
    from pointsbot_local.discord_standin import standin
    from pointsbot_local.discord_standin_oauth import MANAGE_GUILD, oauth_directory

    for key, value in {"DISCORD_API_BASE_URL": standin_url, "DISCORD_APPLICATION_ID": "100000000000000001",
                       "DISCORD_CLIENT_SECRET": "handler-test-secret",
                       "DISCORD_OAUTH_AUTHORIZE_URL": standin_url + "/oauth2/authorize"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    reset_settings()
    site.run(lambda conn: conn.execute(
        "INSERT INTO guilds (guild_id) VALUES (%s), (%s) ON CONFLICT DO NOTHING", (GUILD, GUILD_2)))  # fmt: skip
    oauth_directory.reset()
    standin.clear()
    oauth_directory.add_user(DORA, "dora", "Dora")
    oauth_directory.join(DORA, str(GUILD), "Alpha", permissions=MANAGE_GUILD)
    oauth_directory.join(DORA, str(GUILD_2), "Beta", permissions=MANAGE_GUILD)
    yield site
    oauth_directory.reset()
    standin.clear()


def _discord_sign_in(browser: Browser, user_id: str) -> dict:
    """The browser's way through Discord's authorize page (the stand-in's) and back."""
    from pointsbot_local.discord_standin import PREFIX, standin

    started = browser.request("POST", "/admin/oauth/start", {"csrf_token": browser.csrf()})
    query = parse_qs(urlsplit(started["headers"]["Location"]).query)
    form = {k: query[k][0] for k in ("client_id", "redirect_uri", "state")}
    approved = standin(
        "POST", PREFIX + "/oauth2/authorize", {}, urlencode({**form, "user_id": user_id}).encode()
    )
    callback = urlsplit(dict(approved.headers)["location"])
    return browser.request("GET", f"{callback.path}?{callback.query}")


def _rights_checked_minutes_ago(db, minutes: int) -> None:
    db.run(lambda conn: conn.execute(
        "UPDATE admin_sessions SET rights_checked_at = now() - %s * interval '1 minute' "
        "WHERE identity->>'kind' = 'discord'", (minutes,)))  # fmt: skip


def test_a_discord_admin_who_loses_manage_server_loses_the_guild_then_the_session(discord_site):
    from pointsbot_local.discord_standin_oauth import oauth_directory

    # Given Dora signed in with Discord, managing both guilds
    browser = Browser()
    assert _discord_sign_in(browser, DORA)["headers"]["Location"] == "/admin/"
    assert browser.request("GET", f"/admin/g/{GUILD_2}/")["statusCode"] == 200
    # When Discord takes Manage Server in guild 2 away, and the last check is 6 minutes old
    oauth_directory.join(DORA, str(GUILD_2), "Beta", permissions=0)
    _rights_checked_minutes_ago(discord_site, 6)
    # Then guild 2 is refused, guild 1 still works
    refused = browser.request("GET", f"/admin/g/{GUILD_2}/")
    assert refused["statusCode"] == 403 and "You do not manage this server" in refused["body"]
    assert browser.request("GET", f"/admin/g/{GUILD}/")["statusCode"] == 200
    # When she leaves guild 1 in Discord too
    oauth_directory.leave(DORA, str(GUILD))
    _rights_checked_minutes_ago(discord_site, 6)
    # Then the session is over: pages send her to sign in, forms are refused
    answer = browser.request("GET", f"/admin/g/{GUILD}/")
    assert answer["statusCode"] == 303 and answer["headers"]["Location"].startswith("/admin/login")
    assert discord_site.run(lambda c: c.execute("SELECT count(*) FROM admin_sessions WHERE identity->>'kind' = 'discord'").fetchone()[0]) == 0  # fmt: skip
    actions = discord_site.run(lambda c: [r[0] for r in c.execute(
        "SELECT action FROM admin_audit WHERE actor_id = %s ORDER BY id", (int(DORA),))])  # fmt: skip
    assert actions == ["session.sign_in", "session.rights_narrowed", "session.rights_gone"]


def test_rights_are_asked_of_discord_only_when_the_last_answer_is_old(discord_site):
    from pointsbot_local.discord_standin import standin

    browser = Browser()
    _discord_sign_in(browser, DORA)
    asked = len(standin.sent("GET", "/users/@me/guilds"))
    for _ in range(3):
        assert browser.request("GET", f"/admin/g/{GUILD}/")["statusCode"] == 200
    assert len(standin.sent("GET", "/users/@me/guilds")) == asked
    _rights_checked_minutes_ago(discord_site, 6)
    browser.request("GET", f"/admin/g/{GUILD}/")
    browser.request("GET", f"/admin/g/{GUILD}/")
    assert len(standin.sent("GET", "/users/@me/guilds")) == asked + 1


def test_with_discord_unreachable_a_session_runs_on_for_the_grace_only(discord_site):
    from pointsbot_local.discord_standin import standin

    # Given a signed-in Discord admin, and Discord answering 502 from now on
    browser = Browser()
    _discord_sign_in(browser, DORA)
    standin.inject("GET", "/users/@me/guilds", 502, {"message": "Bad Gateway", "code": 0}, times=100)
    # When the rights are due a check 6 minutes after the last answer: the session goes on
    _rights_checked_minutes_ago(discord_site, 6)
    assert browser.request("GET", f"/admin/g/{GUILD}/")["statusCode"] == 200
    # When 16 minutes have passed without an answer (the grace is 15): it ends
    _rights_checked_minutes_ago(discord_site, 16)
    answer = browser.request("GET", f"/admin/g/{GUILD}/")
    assert answer["statusCode"] == 303 and answer["headers"]["Location"].startswith("/admin/login")


def test_a_token_discord_refuses_ends_the_session_at_once(discord_site):
    from pointsbot_local.discord_standin_oauth import oauth_directory

    browser = Browser()
    _discord_sign_in(browser, DORA)
    oauth_directory.revoke(DORA)  # Dora de-authorized the application in Discord
    _rights_checked_minutes_ago(discord_site, 6)
    answer = browser.request("POST", f"/admin/g/{GUILD}/points", {"csrf_token": "x"})
    assert answer["statusCode"] == 403 and "not signed in" in answer["body"]


def test_the_access_token_is_kept_sealed(discord_site):
    from pointsbot_local.discord_standin_oauth import oauth_directory

    _discord_sign_in(Browser(), DORA)
    (issued,) = oauth_directory.tokens
    rows = discord_site.run(lambda c: c.execute("SELECT t::text FROM admin_sessions t").fetchall())
    assert rows and not any(issued in r[0] for r in rows)
    sealed = discord_site.run(lambda c: c.execute(
        "SELECT discord_token FROM admin_sessions WHERE discord_token IS NOT NULL").fetchone()[0])  # fmt: skip
    assert issued.encode() not in bytes(sealed)


def test_local_account_sessions_are_not_asked_of_discord(discord_site):
    from pointsbot_local.discord_standin import standin

    discord_site.run(auth.create_account, "local-one", "a long local password", [GUILD])
    browser = Browser()
    browser.sign_in("local-one", "a long local password")
    assert browser.request("GET", f"/admin/g/{GUILD}/")["statusCode"] == 200
    assert standin.sent("GET", "/users/@me/guilds") == []
