"""The admin site's forms after a refusal (issue 12, item 4): the page comes back in the answer
to the POST (422) with what was typed and the message next to its field, in words; nothing is
written; a password is never echoed; the typed values live in that one answer only.

In-process requests (tests/integration/_admin_browser.py)."""

from __future__ import annotations

import re

import pytest
from _admin_browser import Browser, admin_site_database

from pointsbot.platform import runtime

pytestmark = pytest.mark.integration
GUILD = 771000000000000001
MEMBER = 781000000000000005
ADMIN_NAME = "forms-admin"
ADMIN_PASSWORD = "forms admin's password"


@pytest.fixture(scope="module")
def site(database_url):
    db = admin_site_database(database_url, GUILD, (ADMIN_NAME, ADMIN_PASSWORD))
    yield db
    runtime.reset()


@pytest.fixture
def admin(site, monkeypatch) -> Browser:
    monkeypatch.delenv("ADMIN_BASE_URL", raising=False)
    browser = Browser()
    assert browser.sign_in(ADMIN_NAME, ADMIN_PASSWORD)["statusCode"] == 303
    return browser


def _entries(site) -> int:
    return site.run(lambda conn: conn.execute("SELECT count(*) FROM transactions").fetchone()[0])


def _field(body: str, name: str, form_id: str) -> str:
    """The input `name` of the form with id `form_id`, as HTML."""
    form = body.split(f'id="{form_id}"', 1)[1].split("</form>", 1)[0]
    match = re.search(rf'<input[^>]*name="{name}"[^>]*>', form)
    assert match, form[:500]
    return match.group(0)


def _error_of(body: str, form: str, field: str) -> str:
    match = re.search(rf'<span class="field-error" id="error-{form}-{field}">([^<]*)</span>', body)
    assert match, body[body.find("<main>") : body.find("<main>") + 3000]
    return match.group(1)


def test_a_refused_change_keeps_what_was_typed_and_says_why_next_to_the_field(admin, site):
    # Given the points page and an amount beyond the largest single change
    csrf = admin.csrf(f"/admin/g/{GUILD}/points")
    before = _entries(site)
    form = {"csrf_token": csrf, "_form": "points-one", "form_token": "forms-1", "member": str(MEMBER),
            "operation": "deduct", "amount": "999999999", "reason": "typed <b>reason</b>", "silent": "on"}  # fmt: skip
    # When the admin submits it
    result = admin.request("POST", f"/admin/g/{GUILD}/points", form)
    body = result["body"]
    # Then the points page comes back in the answer: 422, nothing written
    assert result["statusCode"] == 422 and _entries(site) == before
    assert "<h1>Points</h1>" in body
    # And every value typed is in its field (escaped), the radio and the checkbox as chosen
    assert f'value="{MEMBER}"' in _field(body, "member", "single-change")
    assert 'value="999999999"' in _field(body, "amount", "single-change")
    assert 'value="typed &lt;b&gt;reason&lt;/b&gt;"' in _field(body, "reason", "single-change")
    assert "checked" in _field(body, "silent", "single-change")
    single = body.split('id="single-change"', 1)[1].split("</form>", 1)[0]
    assert 'value="deduct" checked' in single and 'value="award" checked' not in single
    # And the message is next to the amount, in words, and the amount is marked and focused
    assert "largest single change" in _error_of(body, "points-one", "amount")
    amount = _field(body, "amount", "single-change")
    assert 'aria-invalid="true"' in amount and "autofocus" in amount
    assert 'aria-describedby="error-points-one-amount"' in amount
    # And the other forms of the page are as they were (not filled with this one's values)
    assert 'value=""' in _field(body, "reason", "revert-form")


def test_a_refusal_names_the_field_by_its_label_not_its_internal_name(admin, site):
    # Given the achievement form with a number of days that is not one
    csrf = admin.csrf(f"/admin/g/{GUILD}/achievements")
    form = {"csrf_token": csrf, "_form": "achievement", "name": "Steady", "criterion": "earned_within_days",
            "threshold": "10", "window_days": "ten", "bonus_points": "0", "active": "on"}  # fmt: skip
    # When it is saved
    result = admin.request("POST", f"/admin/g/{GUILD}/achievements", form)
    # Then the message is beside "D (days)", in words, and the rest is as typed
    assert result["statusCode"] == 422
    assert "whole number" in _error_of(result["body"], "achievement", "window_days")
    assert 'value="Steady"' in result["body"] and 'value="earned_within_days" selected' in result["body"]
    assert "window_days must" not in result["body"]


def test_a_failed_sign_in_keeps_the_name_and_never_echoes_the_password(site, monkeypatch):
    monkeypatch.delenv("ADMIN_BASE_URL", raising=False)
    browser = Browser("198.51.100.61")
    csrf = browser.csrf()
    secret = "the-wrong-password-4711"
    result = browser.request("POST", "/admin/login", {"csrf_token": csrf, "_form": "login", "name": "nobody-here",
                                                     "password": secret})  # fmt: skip
    assert result["statusCode"] == 422
    assert 'value="nobody-here"' in result["body"] and secret not in result["body"]


def test_a_form_without_the_right_csrf_token_echoes_nothing(admin, site):
    result = admin.request("POST", f"/admin/g/{GUILD}/points", {"csrf_token": "forged", "_form": "points-one",
                                                                "member": str(MEMBER), "amount": "5",
                                                                "reason": "planted-by-another-site"})  # fmt: skip
    assert result["statusCode"] == 403 and "planted-by-another-site" not in result["body"]


def test_the_typed_values_are_in_the_answer_only_never_in_the_session(admin, site):
    # Given a refused form with a value no page has
    csrf = admin.csrf(f"/admin/g/{GUILD}/points")
    admin.request("POST", f"/admin/g/{GUILD}/points", {"csrf_token": csrf, "_form": "points-one",
                                                       "member": str(MEMBER), "operation": "award", "amount": "",
                                                       "reason": "only-in-that-answer"})  # fmt: skip
    # When the same admin opens the page again, and another admin opens it
    again = admin.request("GET", f"/admin/g/{GUILD}/points")["body"]
    other = Browser("198.51.100.62")
    other.sign_in(ADMIN_NAME, ADMIN_PASSWORD)
    theirs = other.request("GET", f"/admin/g/{GUILD}/points")["body"]
    # Then neither page has it, and no session row stores it
    assert "only-in-that-answer" not in again and "only-in-that-answer" not in theirs
    stored = site.run(lambda conn: conn.execute("SELECT count(*) FROM admin_sessions WHERE "
                                                "row_to_json(admin_sessions)::text LIKE '%only-in-that-answer%'").fetchone()[0])  # fmt: skip
    assert stored == 0


def test_a_refusal_whose_form_is_not_on_the_page_is_shown_at_the_top(admin, site):
    # A form that does not name itself (an old page, a script): the message is not lost
    csrf = admin.csrf(f"/admin/g/{GUILD}/points")
    result = admin.request("POST", f"/admin/g/{GUILD}/points", {"csrf_token": csrf, "member": "not-an-id",
                                                                "amount": "5", "reason": "x", "operation": "award"})  # fmt: skip
    assert result["statusCode"] == 422
    summary = re.search(r'<div class="flash flash-error form-summary" id="form-summary" role="alert">(.*?)</div>',
                        result["body"], flags=re.S)  # fmt: skip
    assert summary and re.search(r"<li>[^<]*Member", summary.group(1))
