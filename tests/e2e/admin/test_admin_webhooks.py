"""The admin site's Webhooks section, end to end in chromium at 390 and 1366 px: add an endpoint
(the local runtime's recording receiver), see its secret once, a change reaches the receiver
through the in-process worker, the delivery log shows it and Resend sends it again; switch off
and on, reveal and roll the secret, delete. Refusals (not https, a private address) are shown
next to the form with nothing written; the flag of an endpoint switched off after failures."""

from __future__ import annotations

import itertools
import re
import time

import pytest
from _admin_e2e import GUILD_A, GUILD_B, HttpClient, shot, sign_in_local

from pointsbot.community import points, webhooks
from pointsbot.delivery import outbox
from pointsbot_local import webhook_receiver

pytestmark = pytest.mark.e2e

G = f"/g/{GUILD_A}"
MEMBER = 731000000000000001
_keys = itertools.count(1)


def _sql(site, query, params=()):
    return site.db.run(lambda conn: conn.execute(query, params).fetchall())


def _overflow(page) -> int:
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - window.innerWidth"
    )


def _settled(site, hook_id: int) -> None:
    """Until the worker has written down every answer the receiver gave (it records after the POST)."""
    for _ in range(200):
        if not _sql(site, "SELECT 1 FROM webhook_deliveries WHERE webhook_id = %s AND status IN ('pending', "
                          "'sending')", (hook_id,)):  # fmt: skip
            return
        time.sleep(0.05)
    raise AssertionError("deliveries still waiting")


def _award(site, amount: int = 5) -> int:
    result = site.db.run(points.award, guild_id=GUILD_A, user_id=MEMBER, amount=amount, reason="webhook test",
                         actor_id=1, actor_name="admin", source="admin_site",
                         idempotency_key=f"wh-e2e-{next(_keys)}")  # fmt: skip
    outbox.request_delivery()  # as every change does after COMMIT: the worker takes it from here
    return result.entries[0].id


@pytest.mark.parametrize("width", [390, 1366])
def test_add_a_webhook_see_deliveries_resend_switch_and_delete(site, browser, width):
    receiver = webhook_receiver.current
    assert receiver is not None, "the local runtime starts a recording receiver"
    receiver.clear()
    # Given an admin of guild A in a browser of this width
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in_local(page, site)
    page.goto(site.admin(f"{G}/webhooks"))
    assert _overflow(page) <= 0
    # When they add the local receiver for entries
    url = f"{receiver.url}/{width}"
    page.fill("#webhook-form input[name=url]", url)
    page.fill("#webhook-form input[name=description]", f"receiver {width}")
    page.uncheck("#webhook-form input[value='entry.reverted']")
    with page.expect_navigation():
        page.click("#webhook-form button[type=submit]")
    # Then the secret is shown, and stored for signing
    secret = page.locator("#new-webhook-secret").inner_text().strip()
    assert re.fullmatch(r"whsec_[A-Za-z0-9_-]{43}", secret)
    shot(page, f"webhooks-new-{width}")
    ((hook_id, events, created_by),) = _sql(
        site, "SELECT id, events, created_by FROM webhooks WHERE url = %s", (url,)
    )
    assert events == ["entry.created"] and created_by == "local:alice"
    page.goto(site.admin(f"{G}/webhooks"))
    assert secret not in page.content()  # not again on a plain load
    # When a member's points change
    entry_id = _award(site)
    # Then the worker delivers it, signed with that secret
    (got,) = receiver.wait_for(1, where=lambda r: r.path == f"/hooks/{width}")
    assert webhooks.webhook_http.signature_header(secret, int(got.headers["Pointsbot-Signature"][2:12]), got.body) \
        == got.headers["Pointsbot-Signature"]  # fmt: skip
    assert got.json()["data"]["object"]["id"] == str(entry_id)
    # And the delivery log shows it; Resend sends the same event again
    _settled(site, hook_id)
    page.goto(site.admin(f"{G}/webhooks/{hook_id}"))
    row = page.locator("#delivery-log tbody tr").first
    assert "delivered" in row.inner_text() and "entry.created" in row.inner_text()
    assert _overflow(page) <= 0
    shot(page, f"webhook-log-{width}")
    with page.expect_navigation():
        row.locator("button", has_text="Resend").click()
    assert "queued again" in page.content()
    resent = receiver.wait_for(2, where=lambda r: r.path == f"/hooks/{width}")
    assert resent[0].json()["id"] == resent[1].json()["id"]
    _settled(site, hook_id)
    page.goto(site.admin(f"{G}/webhooks/{hook_id}"))
    assert page.locator("#delivery-log tbody tr").count() == 2
    assert "resent by local:alice" in page.locator("#delivery-log").inner_text()
    # When they reveal the secret, then roll it
    with page.expect_navigation():
        page.click("#reveal-secret")
    assert page.locator("#webhook-secret").inner_text().strip() == secret
    with page.expect_navigation():
        page.click("#roll-secret")
    rolled = page.locator("#webhook-secret").inner_text().strip()
    assert (
        rolled != secret
        and _sql(site, "SELECT secret FROM webhooks WHERE id = %s", (hook_id,))[0][0] == rolled
    )
    # When they switch it off, a change queues nothing for it; on again, it is back
    with page.expect_navigation():
        page.click("#webhook-switch")
    assert "off" in page.locator("main section.card").first.inner_text()
    before = _sql(site, "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = %s", (hook_id,))[0][0]
    _award(site)
    assert (
        _sql(site, "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = %s", (hook_id,))[0][0]
        == before
    )
    with page.expect_navigation():
        page.click("#webhook-switch")
    assert _sql(site, "SELECT enabled FROM webhooks WHERE id = %s", (hook_id,))[0][0] is True
    # When they delete it without ticking the box nothing happens; with it, it is gone
    with page.expect_navigation():
        page.click("#webhook-delete button")
    assert _sql(site, "SELECT count(*) FROM webhooks WHERE id = %s", (hook_id,))[0][0] == 1
    page.check("#webhook-delete input[name=confirm]")
    with page.expect_navigation():
        page.click("#webhook-delete button")
    assert _sql(site, "SELECT count(*) FROM webhooks WHERE id = %s", (hook_id,))[0][0] == 0
    actions = [a for (a,) in _sql(site, "SELECT action FROM admin_audit WHERE guild_id = %s AND target = %s "
                                        "ORDER BY id", (GUILD_A, f"webhook:{hook_id}"))]  # fmt: skip
    assert actions == ["webhook.created", "webhook.resent", "webhook.secret_revealed", "webhook.secret_rolled",
                       "webhook.disabled", "webhook.enabled", "webhook.deleted"]  # fmt: skip
    assert _overflow(page) <= 0
    context.close()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://example.org/hook", "must start with https://"),
        ("https://127.0.0.2/hook", "loopback"),
        ("https://10.0.0.1/hook", "private address"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://2130706434/", "loopback"),
        ("https://[::ffff:192.168.0.1]/", "private"),
        (
            "https://[::1]/hook",
            "loopback",
        ),  # (127.0.0.1 is the local receiver's, allowed in this runtime only)
    ],
)
def test_unsafe_urls_are_refused_next_to_the_form_and_nothing_is_written(site, admin_page, url, words):
    page = admin_page
    page.goto(site.admin(f"{G}/webhooks"))
    before = _sql(site, "SELECT count(*) FROM webhooks")[0][0]
    page.fill("#webhook-form input[name=url]", url)
    with page.expect_navigation():
        page.click("#webhook-form button[type=submit]")
    assert words in page.locator("#error-webhook-url").inner_text()
    assert page.locator("#webhook-form input[name=url]").input_value() == url  # what was typed is kept
    assert _sql(site, "SELECT count(*) FROM webhooks")[0][0] == before


def test_a_webhook_switched_off_after_failures_is_flagged_in_the_menu_and_on_its_page(site, browser):
    made, _ = site.db.run(webhooks.create_webhook, guild_id=GUILD_A, url=webhook_receiver.current.url + "/dead",
                          events=["entry.created"], actor_id=None, actor_name="t")  # fmt: skip
    site.db.run(lambda c: c.execute("UPDATE webhooks SET enabled = FALSE, disabled_reason = 'failures', "
                                    "disabled_at = now(), failures_in_row = 20 WHERE id = %s", (made.id,)))  # fmt: skip
    for width in (390, 1366):
        context = browser.new_context(viewport={"width": width, "height": 900})
        page = context.new_page()
        sign_in_local(page, site)
        page.goto(site.admin(f"{G}/"))
        assert "1 off" in page.locator("#nav-webhooks-off").inner_text()
        page.goto(site.admin(f"{G}/webhooks"))
        assert "switched off after failures" in page.locator(f"#webhook-{made.id}-flag").inner_text()
        page.goto(site.admin(f"{G}/webhooks/{made.id}"))
        assert "20 failed deliveries in a row" in page.locator("#webhook-flag").inner_text()
        assert _overflow(page) <= 0
        shot(page, f"webhook-flagged-{width}")
        context.close()
    site.db.run(webhooks.delete_webhook, guild_id=GUILD_A, webhook_id=made.id, actor_id=None, actor_name="t")


def test_another_guilds_webhook_and_delivery_are_not_reachable(site):
    theirs, _ = site.db.run(webhooks.create_webhook, guild_id=GUILD_B, url=webhook_receiver.current.url + "/b",
                            events=["entry.created"], actor_id=None, actor_name="t")  # fmt: skip
    client = HttpClient(site)
    token = client.sign_in()
    status, _, body = client.request("GET", f"{G}/webhooks/{theirs.id}")
    assert status == 400 and "no such webhook in this server" in body  # the site's page for a NotFound
    for path in (f"{G}/webhooks/{theirs.id}/disable", f"{G}/webhooks/{theirs.id}/delete",
                 f"{G}/webhooks/{theirs.id}/secret"):  # fmt: skip
        client.request("POST", path, {"csrf_token": token, "confirm": "yes"})
    (enabled,) = _sql(site, "SELECT enabled FROM webhooks WHERE id = %s", (theirs.id,))[0]
    assert enabled is True
    status, _, _ = client.request("GET", f"/g/{GUILD_B}/webhooks")
    assert status in (403, 404)
    audited = _sql(site, "SELECT count(*) FROM admin_audit WHERE target = %s AND action <> 'webhook.created'",
                   (f"webhook:{theirs.id}",))  # fmt: skip
    assert audited == [(0,)]
