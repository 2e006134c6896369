"""A stranger cannot lock an admin out of the sign-in (issue 16, verify report F2): 5 wrong
passwords from each of 20 addresses used to reach the name-wide limit (20 x the limit) and
refuse the admin's right password from everywhere. A browser that has signed in as the name
carries a device cookie (OWASP's "device cookies"), and its sign-ins are limited per device
only; without one, every limit holds as before.

In-process requests (tests/integration/_admin_browser.py), each browser from its own address."""

from __future__ import annotations

import pytest
from _admin_browser import Browser, admin_site_database

from pointsbot.admin import auth
from pointsbot.platform import runtime
from pointsbot.platform.config import reset_settings

pytestmark = pytest.mark.integration
GUILD = 772000000000000001
PASSWORD = "the admin's own password"
MAX_FAILURES = 2  # ADMIN_LOGIN_MAX_FAILURES: a name-wide limit of 40, reached from 20 addresses


@pytest.fixture
def site(database_url, monkeypatch):
    monkeypatch.delenv("ADMIN_BASE_URL", raising=False)
    monkeypatch.setenv("ADMIN_LOGIN_MAX_FAILURES", str(MAX_FAILURES))
    reset_settings()
    db = admin_site_database(database_url, GUILD)
    db.run(
        lambda conn: conn.execute("DELETE FROM admin_login_failures")
    )  # each test's attack from fresh addresses
    yield db
    runtime.reset()
    reset_settings()


def _account(site, name: str) -> str:
    site.run(auth.create_account, name, PASSWORD, [GUILD])
    return name


def _spread_out_attack(name: str, addresses: int = 20) -> None:
    """MAX_FAILURES wrong passwords from each of `addresses` addresses, each with its own session."""
    for n in range(addresses):
        stranger = Browser(f"203.0.113.{n + 3}")
        for attempt in range(MAX_FAILURES):
            stranger.sign_in(name, f"guess {n:02d}-{attempt}")


def _session_over(browser: Browser) -> Browser:
    """The browser after its session has ended (it keeps its other cookies, as a browser does)."""
    browser.cookie = None
    return browser


def _signed_in(result: dict) -> bool:
    return result["statusCode"] == 303 and result["headers"]["Location"] == "/admin/"


def test_the_admin_with_his_device_cookie_signs_in_after_a_spread_out_attack(site):
    # Given an admin who has signed in from his browser before (and signed out again)
    name = _account(site, "device-admin")
    admin = Browser("198.51.100.70")
    assert _signed_in(admin.sign_in(name, PASSWORD))
    assert admin.others.get("pointsbot_device")
    admin.request("POST", "/admin/logout", {"csrf_token": admin.csrf(f"/admin/g/{GUILD}/")})
    # When a stranger guesses his password from 20 addresses, up to every per-address limit
    _spread_out_attack(name)
    # Then a browser without the device cookie is refused his right password, from anywhere
    newcomer = Browser("198.51.100.99")
    refused = newcomer.sign_in(name, PASSWORD)
    assert not _signed_in(refused)
    assert "Too many failed sign-ins" in refused["body"]
    # And his own browser, even from a new address, gets in
    admin.address = "192.0.2.99"
    assert _signed_in(admin.sign_in(name, PASSWORD))
    assert admin.request("GET", f"/admin/g/{GUILD}/")["statusCode"] == 200


def test_a_device_cookie_is_limited_per_device_and_does_not_feed_the_name_wide_limit(site):
    name = _account(site, "typo-admin")
    admin = Browser("198.51.100.71")
    assert _signed_in(admin.sign_in(name, PASSWORD))
    _session_over(admin)
    # When the device's holder gets the password wrong as often as one device may
    for attempt in range(MAX_FAILURES):
        assert not _signed_in(admin.sign_in(name, f"typo {attempt}"))
    # Then that device waits, even with the right password and from another address
    admin.address = "192.0.2.71"
    assert not _signed_in(admin.sign_in(name, PASSWORD))
    # And its failures were its own: the name and the address are untouched
    assert _signed_in(Browser("198.51.100.71").sign_in(name, PASSWORD))


@pytest.mark.parametrize("forgery", ["other-name", "tampered", "garbage", "old-password"])
def test_a_device_cookie_that_is_not_this_names_own_is_no_way_around_the_limit(site, forgery):
    name = _account(site, f"forged-{forgery}")
    holder = Browser("198.51.100.72")
    if forgery == "other-name":  # a valid device cookie, but for another account
        other = _account(site, f"other-{forgery}")
        assert _signed_in(holder.sign_in(other, PASSWORD))
    else:
        assert _signed_in(holder.sign_in(name, PASSWORD))
    _session_over(holder)
    cookie = holder.others["pointsbot_device"]
    if forgery == "tampered":
        label, nonce, mac = cookie.split(".")
        holder.others["pointsbot_device"] = f"{label}.{nonce}x.{mac}"
    elif forgery == "garbage":
        holder.others["pointsbot_device"] = "not.a.cookie\u00e9"
    elif forgery == "old-password":  # a password change voids the name's device cookies
        site.run(auth.set_password, name, "a brand new password")
    _spread_out_attack(name)
    holder.address = "192.0.2.72"
    password = "a brand new password" if forgery == "old-password" else PASSWORD
    assert not _signed_in(holder.sign_in(name, password))
