"""What the admin site accepts as a number, a date, an id in a path and a one-line name
(issue 16, findings F1 and F8 of the verify report): dates at the ends of a date picker are
filtered, not a 500; digits of other scripts are refused, not read as 0-9; an id spelled with a
leading zero is no page; control and bidi characters stay out of names.

In-process requests (tests/integration/_admin_browser.py)."""

from __future__ import annotations

import csv
import io

import pytest
from _admin_browser import Browser, admin_site_database

from pointsbot import ledger
from pointsbot.community import members
from pointsbot.platform import runtime

pytestmark = pytest.mark.integration
GUILD = 771000000000000001
MEMBER = 791000000000000001
ADMIN_NAME = "tolerance-admin"
ADMIN_PASSWORD = "tolerance admin's password"


@pytest.fixture(scope="module")
def site(database_url):
    """The admin handler on this module's database, a local admin of GUILD, one member with an entry."""
    db = admin_site_database(database_url, GUILD, (ADMIN_NAME, ADMIN_PASSWORD))
    db.run(members.remember, GUILD, MEMBER, "tolerant", "Tolerant Member")
    db.run(lambda conn: ledger.award(conn, guild_id=GUILD, user_id=MEMBER, amount=7, reason="dated entry",
                                     actor_id=None, actor_name="local:tolerance-admin", source="admin_site",
                                     idempotency_key="tolerance-1"))  # fmt: skip
    yield db
    runtime.reset()


@pytest.fixture
def admin(site, monkeypatch) -> Browser:
    monkeypatch.delenv("ADMIN_BASE_URL", raising=False)
    browser = Browser("198.51.100.41")
    assert browser.sign_in(ADMIN_NAME, ADMIN_PASSWORD)["statusCode"] == 303
    return browser


def _shown(admin: Browser, result: dict) -> str:
    """The page a POST led to: the redirect's target (with its flash), or the page itself."""
    if result["statusCode"] == 303:
        return admin.request("GET", result["headers"]["Location"])["body"]
    return result["body"]


def _entries(site) -> int:
    return site.run(lambda conn: conn.execute("SELECT count(*) FROM transactions WHERE guild_id = %s",
                                              (GUILD,)).fetchone()[0])  # fmt: skip


# -- F1: the ends of a date picker -------------------------------------------------------------
EXTREME_DATES = [{"from": "0001-01-01"}, {"to": "9999-12-31"}, {"from": "0001-01-01", "to": "9999-12-31"},
                 {"from": "9999-12-31"}, {"to": "0001-01-01"}, {"from": "9999-12-31", "to": "9999-12-31"}]  # fmt: skip


@pytest.mark.parametrize("dates", EXTREME_DATES, ids=lambda d: "&".join(f"{k}={v}" for k, v in d.items()))
def test_the_first_and_last_day_a_date_picker_offers_filter_the_ledger_not_a_500(admin, dates):
    query = "&".join(f"{k}={v}" for k, v in dates.items())
    # When the monitor and its CSV are asked for a range that starts in year 1 or ends in 9999
    page = admin.request("GET", f"/admin/g/{GUILD}/transactions?{query}")
    export = admin.request("GET", f"/admin/g/{GUILD}/transactions.csv?{query}")
    # Then both answer, and they select what the dates mean: today's entry is inside any range
    # that reaches from the past into the future, and outside one that lies wholly beyond it
    assert page["statusCode"] == 200, page["body"][:300]
    assert export["statusCode"] == 200, export["body"][:300]
    today_inside = (
        dates.get("from", "0001-01-01") == "0001-01-01" and dates.get("to", "9999-12-31") == "9999-12-31"
    )
    rows = list(csv.DictReader(io.StringIO(export["body"])))
    assert [r["reason"] for r in rows] == (["dated entry"] if today_inside else [])
    assert ("dated entry" in page["body"]) == today_inside


# -- F8: digits 0-9 only ------------------------------------------------------------------------
OTHER_DIGITS = [
    "\u0661\u0660",
    "\uff11\uff10",
    "\u0967\u0966",
    "1\u0660",
]  # Arabic-Indic, full-width, Devanagari, mixed


@pytest.mark.parametrize("amount", OTHER_DIGITS)
def test_an_amount_in_other_digits_is_refused_on_the_points_form(admin, site, amount):
    before = _entries(site)
    csrf = admin.csrf(f"/admin/g/{GUILD}/points")
    result = admin.request("POST", f"/admin/g/{GUILD}/points", {
        "csrf_token": csrf, "member": str(MEMBER), "operation": "award", "amount": amount, "reason": "digits",
        "form_token": f"digits-{amount}"})  # fmt: skip
    assert "Amount must be a whole number, written with the digits 0-9." in _shown(admin, result)
    assert _entries(site) == before


def test_settings_in_other_digits_are_refused_and_nothing_is_saved(admin, site):
    csrf = admin.csrf(f"/admin/g/{GUILD}/settings")
    result = admin.request("POST", f"/admin/g/{GUILD}/settings", {
        "csrf_token": csrf, "currency_name": "points", "max_change": "\uff11\uff10", "daily_cap": "0"})  # fmt: skip
    assert "largest single change must be a whole number, written with the digits 0-9." in _shown(
        admin, result
    )
    stored = site.run(
        lambda conn: conn.execute("SELECT settings FROM guilds WHERE guild_id = %s", (GUILD,)).fetchone()[0]
    )
    assert "max_change" not in stored


def test_a_csv_amount_in_other_digits_is_that_rows_refusal(admin):
    csrf = admin.csrf(f"/admin/g/{GUILD}/points")
    result = admin.request("POST", f"/admin/g/{GUILD}/bulk/preview", {
        "csrf_token": csrf, "operation": "award", "form_token": "digits-csv", "reason": "csv",
        "csv_text": f"{MEMBER},5,fine\n{MEMBER + 1},\u0661\u0660,arabic"})  # fmt: skip
    assert result["statusCode"] == 200
    assert "must be a whole number, written with the digits 0-9." in result["body"]


@pytest.mark.parametrize(
    ("field", "label"), [("min_amount", "Smallest amount"), ("max_amount", "Largest amount")]
)
def test_a_filter_in_other_digits_is_refused_with_the_plain_message(admin, field, label):
    result = admin.request("GET", f"/admin/g/{GUILD}/transactions?{field}=%D9%A1%D9%A0")
    assert result["statusCode"] == 200
    assert f"{label} must be a whole number, written with the digits 0-9." in result["body"]


@pytest.mark.parametrize(
    ("path", "label"),
    [("transactions?min_amount=", "That is out of range"), ("members?min_balance=", "That is out of range")],
)
def test_a_filter_of_thousands_of_digits_is_shown_out_of_range_beside_the_form(admin, path, label):
    result = admin.request("GET", f"/admin/g/{GUILD}/{path}{'9' * 5000}")
    assert result["statusCode"] == 200 and label in result["body"]


def test_thousands_separators_and_signs_are_still_read(admin, site):
    before = _entries(site)
    csrf = admin.csrf(f"/admin/g/{GUILD}/points")
    admin.request("POST", f"/admin/g/{GUILD}/points", {
        "csrf_token": csrf, "member": str(MEMBER), "operation": "award", "amount": " 1,000 ", "reason": "sep",
        "form_token": "digits-separators"})  # fmt: skip
    assert _entries(site) == before + 1
    listed = admin.request("GET", f"/admin/g/{GUILD}/transactions?min_amount=%2B1_000&max_amount=1,000")[
        "body"
    ]
    assert "sep" in listed and "dated entry" not in listed


# -- F8: one address per page --------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [f"/admin/g/0{GUILD}/", f"/admin/g/00{GUILD}/members", f"/admin/g/{GUILD}/members/0{MEMBER}",
     f"/admin/g/\u0667{str(GUILD)[1:]}/", f"/admin/g/{GUILD}/bulk/\u0661", f"/admin/g/{GUILD}/bulk/01"],
)  # fmt: skip
def test_an_id_in_a_path_spelled_otherwise_than_the_site_writes_it_is_no_page(admin, path):
    result = admin.request("GET", path)
    assert result["statusCode"] == 404, (path, result["statusCode"])


def test_the_guild_and_member_pages_still_answer_at_their_own_address(admin):
    assert admin.request("GET", f"/admin/g/{GUILD}/")["statusCode"] == 200
    assert admin.request("GET", f"/admin/g/{GUILD}/members/{MEMBER}")["statusCode"] == 200


# -- F8: one-line names --------------------------------------------------------------------------
HOSTILE_NAMES = ["Rich\x1b[31m", "two\r\nlines", "tab\there", "\u202eevil", "zero\u200bwidth", "bom\ufeff",
                 "line\u2028sep", "bell\x07"]  # fmt: skip


def _names(site) -> tuple:
    return site.run(lambda conn: conn.execute(
        "SELECT (SELECT string_agg(name, ',') FROM achievements WHERE guild_id = %(g)s),"
        " (SELECT settings::text FROM guilds WHERE guild_id = %(g)s),"
        " (SELECT string_agg(coalesce(display_name, ''), ',') FROM members WHERE guild_id = %(g)s)",
        {"g": GUILD}).fetchone())  # fmt: skip


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: n.encode("unicode_escape").decode())
def test_control_and_bidi_characters_are_refused_in_every_one_line_name(admin, site, name):
    before = _names(site)
    csrf = admin.csrf(f"/admin/g/{GUILD}/points")
    forms = [
        ("/achievements", {"name": name, "criterion": "balance_at_least", "threshold": "1", "bonus_points": "0",
                           "active": "on"}),
        ("/settings", {"currency_name": name, "max_change": "1000", "daily_cap": "0"}),
        ("/settings", {"currency_name": "points", "currency_singular": name, "max_change": "1000", "daily_cap": "0"}),
        (f"/members/{MEMBER}", {"display_name": name, "email": "", "notes": ""}),
        ("/members", {"user_id": str(MEMBER + 50), "display_name": name}),
    ]  # fmt: skip
    for path, fields in forms:
        result = admin.request("POST", f"/admin/g/{GUILD}{path}", {"csrf_token": csrf, **fields})
        shown = _shown(admin, result)
        assert "which a one-line name cannot hold. Remove it and try again." in shown, (path, shown[:400])
    assert _names(site) == before
    assert site.run(lambda conn: conn.execute("SELECT count(*) FROM members WHERE user_id = %s",
                                              (MEMBER + 50,)).fetchone()[0]) == 0  # fmt: skip


def test_names_with_emoji_sequences_and_accents_are_kept(admin, site):
    csrf = admin.csrf(f"/admin/g/{GUILD}/achievements")
    name = "Famille \U0001f468\u200d\U0001f469\u200d\U0001f467 Zo\u00eb"  # joined by U+200D, as emoji are
    admin.request("POST", f"/admin/g/{GUILD}/achievements", {
        "csrf_token": csrf, "name": name, "criterion": "balance_at_least", "threshold": "1", "bonus_points": "0",
        "active": "on"})  # fmt: skip
    assert name in (_names(site)[0] or "")
