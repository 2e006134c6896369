"""The admin site's API section: a key is made with a name and scopes, shown once, stored only
as a hash, listed with its last use, and revoked; CSRF, guild rights and the CSP as on every
section. In chromium at a phone's 390 px and a laptop's 1366 px."""

from __future__ import annotations

import hashlib
import re

import pytest
from _admin_e2e import GUILD_A, GUILD_B, HttpClient, shot, sign_in_local

pytestmark = pytest.mark.e2e

G = f"/g/{GUILD_A}"


def _sql(site, query, params=()):
    return site.db.run(lambda conn: conn.execute(query, params).fetchall())


def _overflow(page) -> int:
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - window.innerWidth"
    )


@pytest.mark.parametrize("width", [390, 1366])
def test_make_a_key_see_it_once_and_revoke_it(site, browser, width):
    # Given an admin of guild A in a browser of this width
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    csp_headers = []
    page.on(
        "response",
        lambda r: csp_headers.append(r.headers.get("content-security-policy")) if "/api" in r.url else None,
    )
    sign_in_local(page, site)
    page.goto(site.admin(f"{G}/api"))
    assert _overflow(page) <= 0
    # When they make a read+write key named for this width
    name = f"website {width}"
    page.fill("#key-form input[name=name]", name)
    page.check("#key-form input[value=write]")
    with page.expect_navigation():
        page.click("#key-form button[type=submit]")
    # Then the key is shown, once, and only its hash is stored
    secret = page.locator("#new-key-secret").inner_text().strip()
    assert re.fullmatch(r"pbk_[A-Za-z0-9_-]{43}", secret)
    assert _overflow(page) <= 0
    shot(page, f"api-new-key-{width}")
    rows = _sql(site, "SELECT key_hash, scopes, prefix, created_by FROM api_keys WHERE guild_id=%s AND name=%s",
                (GUILD_A, name))  # fmt: skip
    assert len(rows) == 1
    key_hash, scopes, prefix, created_by = rows[0]
    assert bytes(key_hash) == hashlib.sha256(secret.encode()).digest()
    assert scopes == ["read", "write"] and secret.startswith(prefix) and created_by == "local:alice"
    stored = _sql(site, "SELECT row_to_json(k)::text FROM api_keys k WHERE name=%s", (name,))[0][0]
    assert secret not in stored and secret[4:] not in stored
    # And a fresh load of the page does not show it again
    page.goto(site.admin(f"{G}/api"))
    assert page.locator("#new-key-secret").count() == 0
    assert secret not in page.content()
    row = page.locator("#key-list tr", has_text=name)
    assert "read, write" in row.inner_text() and "never" in row.inner_text()
    # When they revoke it
    with page.expect_navigation():
        row.locator("button", has_text="Revoke").click()
    # Then it is marked revoked, and both are in the audit log
    assert "revoked" in page.locator("#key-list tr", has_text=name).inner_text()
    assert _sql(site, "SELECT revoked_by FROM api_keys WHERE name=%s", (name,))[0][0] == "local:alice"
    actions = [a for (a,) in _sql(site, "SELECT action FROM admin_audit WHERE guild_id=%s AND target=("
                                        "SELECT 'api_key:' || id FROM api_keys WHERE name=%s) ORDER BY id",
                                  (GUILD_A, name))]  # fmt: skip
    assert actions == ["api_key.create", "api_key.revoke"]
    assert _overflow(page) <= 0
    shot(page, f"api-keys-{width}")
    assert all(h and "script-src" in h for h in csp_headers if h is not None) and any(csp_headers)
    context.close()


def test_bad_forms_are_refused_and_write_nothing(site):
    client = HttpClient(site)
    token = client.sign_in()
    before = _sql(site, "SELECT count(*) FROM api_keys")[0][0]
    # No scope, no name, an unknown scope: refused with a message, nothing written
    # (the API page again in the answer, the name as typed: web.RefusedForm)
    for form in ({"name": "x"}, {"name": "", "scope": "read"}, {"name": "x", "scope": "admin"}):
        status, headers, body = client.request("POST", f"{G}/api/keys", {"csrf_token": token, "_form": "api-key",
                                                                         **form})  # fmt: skip
        assert status == 422 and "location" not in headers
        assert "Choose what the key may do" in body or "Give the key a name" in body
        assert f'name="name" value="{form["name"]}"' in body
    # Without the CSRF token: refused
    status, _, _ = client.request("POST", f"{G}/api/keys", {"name": "x", "scope": "read"})
    assert status == 403
    # Another guild's page and form: refused
    status, _, _ = client.request("GET", f"/g/{GUILD_B}/api")
    assert status in (403, 404)
    status, _, _ = client.request(
        "POST", f"/g/{GUILD_B}/api/keys", {"csrf_token": token, "name": "x", "scope": "read"}
    )
    assert status in (403, 404)
    assert _sql(site, "SELECT count(*) FROM api_keys")[0][0] == before


def test_revoking_another_guilds_key_is_refused(site):
    from pointsbot.community import api_keys

    other = site.db.run(
        api_keys.create_key, GUILD_B, name="theirs", scopes=["read"], actor_id=None, actor_name="t"
    )
    client = HttpClient(site)
    token = client.sign_in()
    # Through guild A's path (which the admin may manage), guild B's key id is not found
    status, _, body = client.request("POST", f"{G}/api/keys/{other.key.id}/revoke", {"csrf_token": token})
    assert status == 422 and "API keys" in body
    assert _sql(site, "SELECT revoked_at FROM api_keys WHERE id=%s", (other.key.id,))[0][0] is None
