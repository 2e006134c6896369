"""Points changes through the admin site over HTTP: the balance range's plain message on every
form that takes an amount or a limit, and the actor every entry names."""

from __future__ import annotations

import re

import pytest
from _admin_e2e import ADMIN_NAME, GUILD_A, HttpClient

from pointsbot.platform.amounts import MAX_BALANCE, OUT_OF_RANGE

pytestmark = pytest.mark.e2e

MEMBER = "730000000000000041"


def _count(site, statement: str, params: tuple = ()) -> int:
    return site.db.run(lambda conn: conn.execute(statement, params).fetchone()[0])


def _follow(client: HttpClient, status: int, headers: dict[str, str], body: str = "") -> str:
    """The page after a form: a refused one's page is in the answer itself (422, the form as
    typed with the message: web.RefusedForm); a done one redirects to a page with the flash."""
    if status == 422:
        return body
    assert status == 303, status
    location = headers["location"].removeprefix("/admin")
    page_status, _, body = client.request("GET", location)
    assert page_status == 200
    return body


@pytest.mark.parametrize(
    ("operation", "amount"),
    [
        ("award", str(2**64)),
        ("set", "9223372036854775807"),
        ("deduct", "1" + "0" * 40),
        ("set", str(-(2**63))),
    ],
)
def test_an_amount_out_of_range_on_the_points_form_is_the_plain_message(site, operation, amount):
    # Given a signed-in admin on the points form
    client = HttpClient(site)
    csrf = client.sign_in()
    before = _count(site, "SELECT count(*) FROM transactions")
    # When they submit an amount beyond the balance range (beyond bigint, even)
    status, headers, body = client.request(
        "POST", f"/g/{GUILD_A}/points",
        {"csrf_token": csrf, "member": MEMBER, "operation": operation, "amount": amount, "reason": "too much",
         "form_token": f"range-{operation}-{len(amount)}"},
    )  # fmt: skip
    # Then the form is back with the plain message (not a 500), nothing written
    assert OUT_OF_RANGE in _follow(client, status, headers, body)
    assert _count(site, "SELECT count(*) FROM transactions") == before


@pytest.mark.parametrize("field", ["max_change", "daily_cap"])
def test_settings_refuse_limits_beyond_the_range_with_the_plain_message(site, field):
    client = HttpClient(site)
    csrf = client.sign_in()
    before = _count(site, "SELECT settings::text FROM guilds WHERE guild_id = %s", (GUILD_A,))
    form = {
        "csrf_token": csrf,
        "_form": "settings",
        "currency_name": "points",
        "max_change": "1000",
        "daily_cap": "0",
    }
    form[field] = str(MAX_BALANCE + 1)
    status, _, body = client.request("POST", f"/g/{GUILD_A}/settings", form)
    # the page again, the plain message beside the field (issue 12: forms keep what was typed)
    assert status == 422 and f'<span class="field-error" id="error-settings-{field}">{OUT_OF_RANGE}' in body
    assert _count(site, "SELECT settings::text FROM guilds WHERE guild_id = %s", (GUILD_A,)) == before


def test_a_change_by_a_local_account_shows_the_account_in_the_transactions_monitor(site):
    # Given the local account signed in (it has no Discord id)
    client = HttpClient(site)
    csrf = client.sign_in()
    # When it awards points through the points form
    status, _, _ = client.request(
        "POST", f"/g/{GUILD_A}/points",
        {"csrf_token": csrf, "member": MEMBER, "operation": "award", "amount": "7", "reason": "actor shown",
         "form_token": "actor-e2e"},
    )  # fmt: skip
    assert status == 303
    # Then the monitor's Actor column names the account (the old code left it blank)
    status, _, body = client.request("GET", f"/g/{GUILD_A}/transactions")
    assert status == 200
    row = next(r for r in re.findall(r"<tr>.*?</tr>", body, re.S) if "actor shown" in r)
    assert f"<td>{ADMIN_NAME} (local account)</td>" in row
    # and the filter finds its entries by that name
    _, _, filtered = client.request("GET", f"/g/{GUILD_A}/transactions?actor=local%3A{ADMIN_NAME}")
    assert "actor shown" in filtered


def test_the_settings_page_names_the_currency_singular(site):
    client = HttpClient(site)
    csrf = client.sign_in()
    form = {"csrf_token": csrf, "currency_name": "geese", "currency_singular": "goose", "max_change": "1000",
            "daily_cap": "0"}  # fmt: skip
    status, headers, _ = client.request("POST", f"/g/{GUILD_A}/settings", form)
    body = _follow(client, status, headers)
    assert "Settings saved." in body and 'name="currency_singular" value="goose"' in body
    # An empty singular goes back to the rule (geese -> "geese"; points -> "point")
    form.update(currency_name="points", currency_singular="")
    body = _follow(client, *client.request("POST", f"/g/{GUILD_A}/settings", form)[:2])
    assert "now “point”" in body and 'name="currency_singular" value=""' in body
