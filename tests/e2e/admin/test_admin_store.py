"""The admin site's Rewards and Redemptions sections in chromium at 390 and 1366 px: a reward is
made through the form, bought through the community function, fulfilled and refunded from the
queue, exported as CSV (formula-safe); bad input (price 0, negative stock, a role the bot cannot
give, bad codes files) gets a plain message next to the field, keeps what was typed and writes
nothing. No page is wider than the screen."""

from __future__ import annotations

import csv
import io

import pytest
from _admin_e2e import GUILD_A, shot, sign_in_local

pytestmark = pytest.mark.e2e

G = f"/g/{GUILD_A}"
MEMBER = 730000000000000777


def _sql(site, query, params=()):
    return site.db.run(lambda conn: conn.execute(query, params).fetchall())


def _overflow(page) -> int:
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - window.innerWidth"
    )


def _counts(site):
    return _sql(site, "SELECT (SELECT count(*) FROM rewards), (SELECT count(*) FROM reward_codes), "
                      "(SELECT count(*) FROM admin_audit), (SELECT count(*) FROM role_changes)")[0]  # fmt: skip


def _submit(page, form: str) -> None:
    with page.expect_navigation():
        page.click(f"{form} button[type=submit]")


def _buy(site, reward_id: int, interaction_id: int):
    from pointsbot.community import store
    from pointsbot.platform.config import get_settings

    return site.db.run(store.purchase, guild_id=GUILD_A, user_id=MEMBER, reward_id=reward_id,
                       interaction_id=interaction_id, actor_name="buyer", settings=get_settings())  # fmt: skip


@pytest.fixture(scope="module")
def member_with_points(site):
    from pointsbot import ledger
    from pointsbot.platform.config import get_settings
    from pointsbot_local.discord_standin_rest import state as discord_state

    site.db.run(ledger.award, guild_id=GUILD_A, user_id=MEMBER, amount=10_000, reason="seed", actor_id=1,
                source="system", idempotency_key="store-site-seed", settings=get_settings())  # fmt: skip
    discord_state.add_role(str(GUILD_A), "Helper", position=1)
    discord_state.add_role(str(GUILD_A), "Moderators", position=12)  # above the bot's own role (10)
    return MEMBER


@pytest.mark.parametrize("width", [390, 1366])
def test_rewards_and_redemptions(site, browser, member_with_points, width):
    # Given an admin of guild A in a browser of this width, on the Rewards page
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in_local(page, site)
    page.goto(site.admin(f"{G}/rewards"))
    assert _overflow(page) <= 0
    form = "#reward-form"
    before = _counts(site)

    # When they try price 0: the message is next to the price, what they typed stays, nothing is written
    page.select_option(f"{form} select[name=kind]", "item")
    page.fill(f"{form} input[name=name]", f"Mug {width}")
    page.fill(f"{form} textarea[name=description]", "A blue mug")
    page.fill(f"{form} input[name=price]", "0")
    _submit(page, form)
    assert "above zero" in page.locator("#error-reward-price").inner_text()
    assert page.input_value(f"{form} input[name=name]") == f"Mug {width}"
    assert page.input_value(f"{form} textarea[name=description]") == "A blue mug"
    assert _counts(site) == before
    # And a negative stock
    page.fill(f"{form} input[name=price]", "50")
    page.fill(f"{form} input[name=stock]", "-3")
    _submit(page, form)
    assert "stock" in page.locator("#error-reward-stock").inner_text().lower()
    assert page.input_value(f"{form} input[name=price]") == "50"
    assert _counts(site) == before
    assert _overflow(page) <= 0
    shot(page, f"rewards-error-{width}")
    # And a role the bot cannot give (chosen by name from Discord's roles): Discord's reason in words
    page.select_option(f"{form} select[name=kind]", "role")
    page.fill(f"{form} input[name=name]", f"Mod role {width}")
    page.fill(f"{form} input[name=stock]", "")
    page.select_option(f"{form} select[name=role_id]", label="Moderators")
    _submit(page, form)
    message = page.locator("#error-reward-role_id").inner_text()
    assert "bot" in message.lower() and "Traceback" not in page.content()
    assert page.locator(f"{form} select[name=role_id] option:checked").inner_text() == "Moderators"
    assert _counts(site) == before

    # When they make a role reward the bot can give, then the item reward
    page.select_option(f"{form} select[name=role_id]", label="Helper")
    page.fill(f"{form} input[name=duration_days]", "30")
    _submit(page, form)
    assert _sql(site, "SELECT kind, duration_days FROM rewards WHERE name=%s", (f"Mod role {width}",)) == [
        ("role", 30)
    ]
    page.goto(site.admin(f"{G}/rewards"))
    page.select_option(f"{form} select[name=kind]", "item")
    page.fill(f"{form} input[name=name]", f"Mug {width}")
    page.fill(f"{form} input[name=price]", "50")
    page.fill(f"{form} input[name=stock]", "3")
    _submit(page, form)
    mug = _sql(site, "SELECT id, stock FROM rewards WHERE name=%s", (f"Mug {width}",))
    assert len(mug) == 1 and mug[0][1] == 3
    mug_id = mug[0][0]
    assert f"Mug {width}" in page.locator("h1").inner_text()

    # And a code reward, with bad codes files refused whole and a good one taken
    page.goto(site.admin(f"{G}/rewards"))
    page.select_option(f"{form} select[name=kind]", "code")
    page.fill(f"{form} input[name=name]", f"Game key {width}")
    page.fill(f"{form} input[name=price]", "20")
    _submit(page, form)
    codes_before = _counts(site)
    for data, words in ((b"", "empty"), (b"AAA-1\nAAA-1\n", "twice"), (b"\xff\xfe\xfa bad\n", "UTF-8")):
        page.set_input_files("#codes-form input[name=codes_file]",
                             files=[{"name": "codes.txt", "mimeType": "text/plain", "buffer": data}])  # fmt: skip
        _submit(page, "#codes-form")
        assert words.lower() in page.locator(".flash-error, .field-error").first.inner_text().lower(), words
        assert _counts(site) == codes_before
    page.set_input_files("#codes-form input[name=codes_file]",
                         files=[{"name": "codes.txt", "mimeType": "text/plain", "buffer": f"K{width}-1\nK{width}-2\n".encode()}])  # fmt: skip
    _submit(page, "#codes-form")
    assert "2 codes added" in page.content()
    assert _overflow(page) <= 0
    shot(page, f"reward-code-{width}")

    # When a member buys the mug twice through the community function
    first = _buy(site, mug_id, 990000000000000000 + width).purchase
    second = _buy(site, mug_id, 990000000000001000 + width).purchase
    assert first.state == second.state == "pending"
    # Then the menu and the dashboard show purchases to hand over
    page.goto(site.admin(f"{G}/"))
    assert int(page.locator("#pending-redemptions-flag .value").inner_text()) >= 2
    assert page.locator("#nav-pending-redemptions").count() == 1
    # When the admin fulfils the first with a note from the pending queue
    page.goto(site.admin(f"{G}/redemptions?state=pending&reward={mug_id}"))
    assert _overflow(page) <= 0
    row = page.locator(f"#redemption-list tr[data-purchase='{first.id}']")
    row.locator("input[name=note]").fill("At the front desk")
    with page.expect_navigation():
        row.locator("button", has_text="Fulfil").click()
    assert "fulfilled" in page.locator(".flash").first.inner_text()
    # And refunds the second with a reason that looks like a spreadsheet formula
    row = page.locator(f"#redemption-list tr[data-purchase='{second.id}']")
    row.locator("input[name=reason]").fill('=HYPERLINK("http://x")')
    with page.expect_navigation():
        row.locator("button", has_text="Refund").click()
    states = dict(_sql(site, "SELECT id, state FROM purchases WHERE id IN (%s, %s)", (first.id, second.id)))
    assert states == {first.id: "fulfilled", second.id: "refunded"}
    assert _sql(site, "SELECT note FROM purchases WHERE id=%s", (first.id,))[0][0] == "At the front desk"
    assert _sql(site, "SELECT stock FROM rewards WHERE id=%s", (mug_id,))[0][0] == 2  # 3 - 2 sold + 1 back
    actions = {a for (a,) in _sql(site, "SELECT action FROM admin_audit WHERE target IN (%s, %s)",
                                  (f"purchase:{first.id}", f"purchase:{second.id}"))}  # fmt: skip
    assert actions == {"redemption.fulfil", "redemption.refund"}
    # And a second refund is a plain message, nothing written
    page.goto(site.admin(f"{G}/redemptions?reward={mug_id}&state=refunded"))
    assert page.locator(f"#redemption-list tr[data-purchase='{second.id}'] .refund-form").count() == 0
    # And the filters: a bad member id is a plain message
    page.goto(site.admin(f"{G}/redemptions?member=abc"))
    assert "member" in page.locator("#filter-error").inner_text().lower()
    page.goto(site.admin(f"{G}/redemptions?kind=item&flagged=no&member={MEMBER}"))
    assert page.locator(f"#redemption-list tr[data-purchase='{first.id}']").count() == 1
    assert _overflow(page) <= 0
    shot(page, f"redemptions-{width}")

    # When they download the CSV of the mug's purchases
    response = page.request.get(site.admin(f"{G}/redemptions.csv?reward={mug_id}"))
    assert response.status == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text())))
    by_id = {r["id"]: r for r in rows}
    assert (
        by_id[str(first.id)]["state"] == "fulfilled" and by_id[str(first.id)]["note"] == "At the front desk"
    )
    # Then the formula is text, not a formula
    assert by_id[str(second.id)]["note"] == '\'=HYPERLINK("http://x")'

    # When they disable the mug from the list
    page.goto(site.admin(f"{G}/rewards"))
    with page.expect_navigation():
        page.locator(f"#reward-list tr[data-reward='{mug_id}'] button", has_text="Disable").click()
    assert _sql(site, "SELECT enabled FROM rewards WHERE id=%s", (mug_id,))[0][0] is False
    # And edit it with a bad price: the message is next to the field, nothing changes
    page.goto(site.admin(f"{G}/rewards/{mug_id}"))
    page.fill("#reward-form input[name=price]", "0")
    _submit(page, "#reward-form")
    assert "above zero" in page.locator("#error-reward-price").inner_text()
    assert _sql(site, "SELECT price FROM rewards WHERE id=%s", (mug_id,))[0][0] == 50
    page.fill("#reward-form input[name=price]", "75")
    _submit(page, "#reward-form")
    assert _sql(site, "SELECT price, enabled FROM rewards WHERE id=%s", (mug_id,))[0] == (75, False)
    assert _overflow(page) <= 0
    context.close()


def test_csv_cells_cannot_start_a_formula():
    from admin_site.sections.store import csv_cell

    assert [csv_cell(v) for v in ("=1+2", "+1", "-1", "@SUM(A1)", "\tx", "plain", None, 5)] == [
        "'=1+2", "'+1", "'-1", "'@SUM(A1)", "'\tx", "plain", "", "5"]  # fmt: skip
