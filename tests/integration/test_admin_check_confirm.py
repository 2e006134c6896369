""" "Run the check now" on the admin site (issue 12, item 6): a preview of who gets which
achievement and how many points, with nothing paid; the confirm pays exactly what was
previewed, and only that: a state that changed in between is previewed again (409), nothing
paid, as is a confirm sent twice or with a token the site did not give. Checked in SQL."""

from __future__ import annotations

import re

import pytest
from _admin_browser import Browser, admin_site_database

from pointsbot import ledger
from pointsbot.admin import actions
from pointsbot.admin.sessions import Identity
from pointsbot.community import members
from pointsbot.platform import runtime

pytestmark = pytest.mark.integration
GUILD = 773000000000000001
ADMIN_NAME = "check-admin"
ADMIN_PASSWORD = "check admin's password"
RICH = [783000000000000001 + i for i in range(3)]  # balances 100, 101, 102
POOR = 783000000000000100  # balance 10


@pytest.fixture(scope="module")
def site(database_url):
    db = admin_site_database(database_url, GUILD, (ADMIN_NAME, ADMIN_PASSWORD))
    for n, user in enumerate([*RICH, POOR]):
        db.run(members.remember, GUILD, user, None, f"Member {n}")
        db.run(ledger.award, guild_id=GUILD, user_id=user, amount=10 if user == POOR else 100 + n, reason="seed",
               actor_id=1, source="system", idempotency_key=f"check-seed-{n}")  # fmt: skip
    yield db
    runtime.reset()


@pytest.fixture
def admin(site, monkeypatch) -> Browser:
    monkeypatch.delenv("ADMIN_BASE_URL", raising=False)
    browser = Browser()
    assert browser.sign_in(ADMIN_NAME, ADMIN_PASSWORD)["statusCode"] == 303
    return browser


def _paid(site) -> tuple[int, int, int]:
    """(achievements held, achievement bonus entries, their points) in the guild."""
    return site.run(lambda conn: conn.execute(
        "SELECT (SELECT count(*) FROM member_achievements WHERE guild_id = %(g)s),"
        " (SELECT count(*) FROM transactions WHERE guild_id = %(g)s AND kind = 'achievement'),"
        " (SELECT coalesce(sum(amount), 0) FROM transactions WHERE guild_id = %(g)s AND kind = 'achievement')",
        {"g": GUILD}).fetchone())  # fmt: skip


def _achievement(site, name: str, bonus: int) -> int:
    who = Identity("local", "check-admin", (GUILD,))
    fields = {"name": name, "description": "", "criterion": "balance_at_least", "threshold": 100,
              "window_days": None, "bonus_points": bonus, "active": True}  # fmt: skip
    return site.run(actions.create_achievement, who, GUILD, fields).id


def _preview(admin) -> tuple[dict, str]:
    csrf = admin.csrf(f"/admin/g/{GUILD}/achievements")
    result = admin.request("POST", f"/admin/g/{GUILD}/achievements-check", {"csrf_token": csrf})
    token = re.search(r'name="token" value="([0-9a-f]+)"', result["body"])
    assert token, result["body"][:500]
    return result, token.group(1)


def _confirm(admin, token: str) -> dict:
    csrf = admin.csrf(f"/admin/g/{GUILD}/achievements")
    return admin.request(
        "POST", f"/admin/g/{GUILD}/achievements-check/confirm", {"csrf_token": csrf, "token": token}
    )


def test_the_preview_says_who_and_how_much_and_pays_nothing(admin, site):
    # Given an achievement made after three members passed its threshold (nobody holds it yet)
    _achievement(site, "Centurion", 50)
    before = _paid(site)
    # When the admin asks to run the check now
    result, _ = _preview(admin)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", result["body"]))
    # Then they see who and how much, and nothing is paid
    assert result["statusCode"] == 200
    assert "3 achievements for 3 members, 150 bonus points in all" in text
    assert "Member 0" in text and "Member 2" in text and "Member 3" not in text  # POOR's name
    assert "Pay 150 points to 3 members" in text
    assert _paid(site) == before


def test_a_state_changed_since_the_preview_is_previewed_again_and_nothing_is_paid(admin, site):
    # Given a preview (3 members, 50 each)
    _, token = _preview(admin)
    before = _paid(site)
    # When another admin raises the bonus before the confirm
    aid = site.run(lambda conn: conn.execute(
        "SELECT id FROM achievements WHERE guild_id = %s AND name = 'Centurion'", (GUILD,)).fetchone()[0])  # fmt: skip
    who = Identity("local", "other-admin", (GUILD,))
    site.run(actions.edit_achievement, who, GUILD, aid, {"bonus_points": 75})
    result = _confirm(admin, token)
    # Then nothing is paid, and the new preview is shown with what it would pay now
    assert result["statusCode"] == 409 and _paid(site) == before
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", result["body"]))
    assert "changed since the preview" in text and "225 bonus points in all" in text
    # And a token the site never gave pays nothing either
    assert _confirm(admin, "0" * 64)["statusCode"] == 409 and _paid(site) == before


def test_the_confirm_pays_exactly_what_was_previewed_once(admin, site):
    held, entries, points = _paid(site)
    _, token = _preview(admin)
    # When the admin confirms the preview
    result = _confirm(admin, token)
    # Then the three members get it and 75 points each, audited once
    assert result["statusCode"] == 303
    assert _paid(site) == (held + 3, entries + 3, points + 225)
    audit = site.run(lambda conn: conn.execute(
        "SELECT after FROM admin_audit WHERE guild_id = %s AND action = 'achievement.check_now' ORDER BY id DESC",
        (GUILD,)).fetchall())  # fmt: skip
    assert audit[0][0] == {"awards": 3, "members": 3, "points": 225}
    # When the same confirm arrives again (a double click, a reload)
    again = _confirm(admin, token)
    # Then nothing more is paid: it is previewed again (now nothing to pay)
    assert again["statusCode"] == 409 and _paid(site) == (held + 3, entries + 3, points + 225)
    assert "pays nothing" in again["body"]
