"""The admin site's forms in chromium at 390 and 1366 px (issue 12): a refused form keeps what
was typed and puts the message next to its field in words, the keyboard lands on that field,
nothing is written, and no page is wider than the screen. Screenshots in
test-artifacts/admin/forms-*."""

from __future__ import annotations

import pytest
from _admin_e2e import GUILD_A, shot, sign_in_local
from test_admin_layout import _pages, sample  # noqa: F401 - the layout walk's pages and its sample data

pytestmark = pytest.mark.e2e

G = f"/g/{GUILD_A}"
MEMBER = 731000000000000101
WIDTHS = (390, 1366)


def _sql(site, query, params=()):
    return site.db.run(lambda conn: conn.execute(query, params).fetchall())


def _overflow(page) -> int:
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth) - window.innerWidth"
    )


def _submit(page, form: str) -> None:
    with page.expect_navigation():
        page.click(f"{form} button[type=submit]")


def _message_next_to(page, field: str) -> str:
    """The message shown for the field: the element its aria-describedby names, which must sit in
    the same label as the field (next to it on the screen)."""
    target = page.locator(field)
    described = target.get_attribute("aria-describedby")
    assert described and target.get_attribute("aria-invalid") == "true"
    message = page.locator(f"#{described}")
    assert message.is_visible()
    same_label = page.evaluate(
        "([f, m]) => document.querySelector(f).closest('label, fieldset') === "
        "document.getElementById(m).closest('label, fieldset')",
        [field, described],
    )
    assert same_label, field
    return message.inner_text()


@pytest.fixture
def page_at(site, browser, request):
    context = browser.new_context(viewport={"width": request.param, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in_local(page, site)
    yield page
    context.close()


@pytest.mark.parametrize("page_at", WIDTHS, indirect=True)
def test_a_refused_points_change_keeps_what_was_typed_with_the_message_next_to_the_field(site, page_at):
    page = page_at
    width = page.viewport_size["width"]
    before = _sql(site, "SELECT count(*) FROM transactions WHERE guild_id = %s", (GUILD_A,))[0][0]
    # Given the points page, When the admin asks for more than the largest single change
    page.goto(site.admin(f"{G}/points"))
    page.fill("#single-change input[name=member]", str(MEMBER))
    page.check("#single-change input[name=operation][value=deduct]")
    page.fill("#single-change input[name=amount]", "99999999")
    page.fill("#single-change input[name=reason]", "Typed with care — “quotes” & <angles>")
    page.check("#single-change input[name=silent]")
    _submit(page, "#single-change")
    shot(page, f"forms-points-refused-{width}")
    # Then the same page is back with every value as typed
    assert page.locator("h1").inner_text() == "Points"
    assert page.title() == "Points · Alpha Guild · Pointsbot"  # where you are: section, server, site
    assert page.input_value("#single-change input[name=member]") == str(MEMBER)
    assert page.input_value("#single-change input[name=amount]") == "99999999"
    assert page.input_value("#single-change input[name=reason]") == "Typed with care — “quotes” & <angles>"
    assert page.is_checked("#single-change input[name=operation][value=deduct]")
    assert page.is_checked("#single-change input[name=silent]")
    # And the message is next to the amount, in words, and the keyboard is on the amount
    message = _message_next_to(page, "#single-change input[name=amount]")
    assert "largest single change" in message and "max_change" not in message
    assert page.evaluate("document.activeElement.name") == "amount"
    # And nothing was written; the page fits the screen
    assert _sql(site, "SELECT count(*) FROM transactions WHERE guild_id = %s", (GUILD_A,))[0][0] == before
    assert _overflow(page) <= 0
    # When the admin fixes it from the keyboard (the focused amount, then Enter)
    page.check("#single-change input[name=operation][value=award]")
    page.fill("#single-change input[name=amount]", "5")
    with page.expect_navigation():
        page.locator("#single-change input[name=amount]").press("Enter")
    # Then it is done, once
    assert _sql(site, "SELECT count(*) FROM transactions WHERE guild_id = %s", (GUILD_A,))[0][0] == before + 1


@pytest.mark.parametrize("page_at", WIDTHS, indirect=True)
def test_a_refused_setting_names_the_field_in_words(site, page_at):
    page = page_at
    width = page.viewport_size["width"]
    before = _sql(site, "SELECT settings FROM guilds WHERE guild_id = %s", (GUILD_A,))[0][0]
    page.goto(site.admin(f"{G}/settings"))
    page.fill("#settings-form input[name=currency_name]", "gems")
    page.fill("#settings-form input[name=max_change]", "0")
    _submit(page, "#settings-form")
    shot(page, f"forms-settings-refused-{width}")
    message = _message_next_to(page, "#settings-form input[name=max_change]")
    assert "largest single change must be above zero" in message.lower()
    assert "max_change" not in page.locator("main").inner_text()
    assert page.input_value("#settings-form input[name=currency_name]") == "gems"
    assert _sql(site, "SELECT settings FROM guilds WHERE guild_id = %s", (GUILD_A,))[0][0] == before
    assert _overflow(page) <= 0


@pytest.mark.parametrize("page_at", WIDTHS, indirect=True)
def test_refused_achievement_and_dm_forms_keep_their_text(site, page_at):
    page = page_at
    width = page.viewport_size["width"]
    # An achievement without a threshold: the name and description stay, the message by "N"
    page.goto(site.admin(f"{G}/achievements"))
    page.fill("#achievement-form input[name=name]", f"Kept name {width}")
    page.fill("#achievement-form input[name=description]", "Kept description")
    page.fill("#achievement-form input[name=threshold]", "lots")
    _submit(page, "#achievement-form")
    assert page.input_value("#achievement-form input[name=name]") == f"Kept name {width}"
    assert page.input_value("#achievement-form input[name=description]") == "Kept description"
    assert "whole number" in _message_next_to(page, "#achievement-form input[name=threshold]")
    assert _sql(site, "SELECT count(*) FROM achievements WHERE name = %s", (f"Kept name {width}",))[0][0] == 0
    assert _overflow(page) <= 0
    # A DM to an id that is not one: the message stays, line breaks and all
    page.goto(site.admin(f"{G}/dms"))
    page.fill("#dm-compose input[name=to]", "someone")
    page.fill("#dm-compose textarea[name=content]", "Line one\n**Line two**")
    _submit(page, "#dm-compose")
    shot(page, f"forms-dm-refused-{width}")
    assert page.input_value("#dm-compose textarea[name=content]") == "Line one\n**Line two**"
    assert _message_next_to(page, "#dm-compose input[name=to]")
    assert _overflow(page) <= 0


@pytest.mark.parametrize("page_at", WIDTHS, indirect=True)
def test_run_the_check_now_previews_and_pays_nothing_until_confirmed(site, page_at):
    from pointsbot import ledger
    from pointsbot.admin import actions
    from pointsbot.admin.sessions import Identity

    page = page_at
    width = page.viewport_size["width"]
    # Given members above a threshold before its achievement existed (nobody holds it yet)
    users = [731000000000000200 + width + i for i in range(2)]
    for n, user in enumerate(users):
        site.db.run(ledger.award, guild_id=GUILD_A, user_id=user, amount=5_000, reason="seed", actor_id=1,
                    source="system", idempotency_key=f"check-e2e-{width}-{n}")  # fmt: skip
    who = Identity("local", "alice", (GUILD_A,))
    aid = site.db.run(actions.create_achievement, who, GUILD_A, {
        "name": f"Rich {width}", "description": "", "criterion": "balance_at_least", "threshold": 4_500,
        "window_days": None, "bonus_points": 7, "active": True}).id  # fmt: skip

    def held() -> int:  # by this test's members (those of the other width qualify too)
        return _sql(site, "SELECT count(*) FROM member_achievements WHERE achievement_id = %s AND user_id = ANY(%s)",
                    (aid, users))[0][0]  # fmt: skip

    # When the admin clicks "Run the check now"
    page.goto(site.admin(f"{G}/achievements"))
    _submit(page, "#run-check")
    shot(page, f"forms-check-preview-{width}")
    # Then they see who and how much, and nothing is paid yet (in SQL)
    table = page.locator("#check-by-achievement").inner_text()
    assert f"Rich {width}" in table and "7" in table
    assert page.locator("#check-confirm button").is_visible()
    assert held() == 0
    assert _overflow(page) <= 0
    # When they confirm
    _submit(page, "#check-confirm")
    # Then it is paid, once
    assert held() == 2
    assert "awarded" in page.locator(".flash").first.inner_text()


@pytest.mark.parametrize("page_at", WIDTHS, indirect=True)
def test_the_audit_log_shows_changes_in_words_and_filters_from_a_list(site, page_at):
    page = page_at
    width = page.viewport_size["width"]
    # Given a points change made on the site
    page.goto(site.admin(f"{G}/points"))
    page.fill("#single-change input[name=member]", str(MEMBER + width))
    page.fill("#single-change input[name=amount]", "12")
    page.fill("#single-change input[name=reason]", f"audit {width}")
    _submit(page, "#single-change")
    # When the admin filters the audit log by "Points added" from the list
    page.goto(site.admin(f"{G}/audit"))
    page.select_option("#audit-filter select[name=action]", label="Points added")
    _submit(page, "#audit-filter")
    shot(page, f"forms-audit-{width}")
    # Then every row is that action, and the change reads "Balance: 0 → 12", no JSON
    rows = page.locator("#audit-table tbody tr")
    assert rows.count() >= 1
    assert set(page.locator("#audit-table tbody td:nth-child(3)").all_inner_texts()) == {"Points added"}
    changes = page.locator("#audit-table tbody td:nth-child(5)").first.inner_text()
    assert "Balance: 0 → 12" in changes and f"Reason: audit {width}" in changes
    assert "{" not in page.locator("#audit-table").inner_text()
    assert _overflow(page) <= 0


@pytest.mark.parametrize("page_at", WIDTHS, indirect=True)
def test_a_dm_preview_and_history_show_discord_markdown(site, page_at):
    from pointsbot.community import members

    page = page_at
    width = page.viewport_size["width"]
    user = MEMBER + 500 + width
    site.db.run(members.remember, GUILD_A, user, None, f"Dee {width}")
    text = "**Well done** __you__\n||a secret||\n[our site](https://example.org) [bad](javascript:alert(1))\n<b>raw</b>"
    page.goto(site.admin(f"{G}/dms"))
    page.fill("#dm-compose input[name=to]", str(user))
    page.fill("#dm-compose textarea[name=content]", text)
    _submit(page, "#dm-compose")
    shot(page, f"forms-dm-preview-{width}")
    preview = page.locator("#dm-preview-text")
    assert (
        preview.locator("strong").inner_text() == "Well done" and preview.locator("u").inner_text() == "you"
    )
    assert preview.locator(".spoiler").inner_text() == "a secret"
    assert (
        preview.locator("a").count() == 1
        and preview.locator("a").get_attribute("href") == "https://example.org"
    )
    assert "[bad](javascript:alert(1))" in preview.inner_text() and "<b>raw</b>" in preview.inner_text()
    assert preview.locator("br").count() == 3  # every line break kept
    _submit(page, "#dm-send")
    # And the history shows it the same way, line breaks kept
    page.goto(site.admin(f"{G}/dms"))
    row = page.locator("td.dm-content").first
    assert row.locator("strong").inner_text() == "Well done" and row.locator("br").count() == 3
    assert _overflow(page) <= 0


@pytest.mark.parametrize("page_at", WIDTHS, indirect=True)
def test_a_form_is_used_by_keyboard_alone_in_reading_order_with_a_visible_focus(site, page_at):
    page = page_at
    page.goto(site.admin(f"{G}/points"))
    page.focus("#single-change input[name=member]")
    order = []
    for _ in range(6):
        order.append(
            page.evaluate("document.activeElement.name || document.activeElement.textContent.trim()")
        )
        # every stop shows where it is (the stylesheet's :focus-visible outline)
        assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
        page.keyboard.press("Tab")
    # The fields in the order they are read (a radio group is one stop), then the button
    assert order == ["member", "operation", "amount", "reason", "silent", "Apply"]
    # And every field has a label a screen reader reads out
    unlabeled = page.evaluate(
        "() => [...document.querySelectorAll('main input:not([type=hidden]), main select, main textarea')]"
        ".filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.name)"
    )
    assert unlabeled == []


def test_every_field_of_every_page_has_a_label(site, browser, sample):  # noqa: F811 - the imported fixture
    # Given every page of the site (the layout walk's route table and sample data)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in_local(page, site)
    missing = {}
    for path in _pages(sample):
        page.goto(site.admin(path))
        # Then no field is without a label a screen reader reads out
        unlabeled = page.evaluate(
            "() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]"
            ".filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.name)"
        )
        if unlabeled:
            missing[path] = unlabeled
    context.close()
    assert missing == {}
