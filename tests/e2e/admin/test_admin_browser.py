"""The admin site's pages in chromium: sign-in both ways and the main flow of every section.

The tests share one signed-in page (`admin_page`) and run in file order, each leaving the
data the next one builds on, like an admin working through the site.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from _admin_e2e import GUILD_A, GUILD_B, shot, sign_in_local

from pointsbot import ledger
from pointsbot_local.discord_standin_oauth import MANAGE_GUILD, oauth_directory
from pointsbot_local.discord_standin_rest import state as discord_state

pytestmark = pytest.mark.e2e

G = f"/g/{GUILD_A}"
EVIL = "<script>window.__pwned = 1</script>"
MEMBER_1 = 740000000000000001
MEMBER_2 = 740000000000000002
MEMBER_CLOSED = 740000000000000003  # does not accept DMs


def _sql(site, statement, params=()):
    return site.db.run(lambda conn: conn.execute(statement, params).fetchall())


def _flash(page) -> str:
    """The page's messages: flashes, and a refused form's messages next to its fields."""
    page.locator(".flash, .field-error").first.wait_for()
    return "\n".join(page.locator(".flash, .field-error").all_inner_texts())


def _submit(page, target) -> None:
    """Click what sends a form or follows a link, and wait for the page it leads to."""
    with page.expect_navigation():
        (page.locator(target) if isinstance(target, str) else target).click()


def _form_fields(page, selector: str) -> tuple[str, dict[str, str]]:
    """Where a form goes and the fields it would send, to send the very same form again."""
    return page.evaluate(
        f"() => {{ const f = document.querySelector({selector!r});"
        " return [f.getAttribute('action'), Object.fromEntries(new FormData(f))]; }"
    )


def _submit_again(page, site, form: tuple[str, dict[str, str]]) -> None:
    action, fields = form
    response = page.request.post(site.url + action, form=fields, max_redirects=0)
    assert response.status == 303, response.status


@pytest.fixture(scope="module", autouse=True)
def members(site):
    from pointsbot.community import members as members_mod

    def setup(conn):
        members_mod.remember(conn, GUILD_A, MEMBER_1, "evil_user", EVIL)
        members_mod.remember(conn, GUILD_A, MEMBER_2, "bob", "Bob")
        members_mod.remember(conn, GUILD_A, MEMBER_CLOSED, "carol", "Carol")

    site.db.run(setup)
    # Discord (the stand-in) knows them by the same names: the site refreshes names from it
    for user, username, nick in (
        (MEMBER_1, "evil_user", EVIL),
        (MEMBER_2, "bob", "Bob"),
        (MEMBER_CLOSED, "carol", "Carol"),
    ):
        discord_state.set_user(str(user), username)
        discord_state.set_member(str(GUILD_A), str(user), nick=nick)
    discord_state.set_user(str(MEMBER_CLOSED), "carol", accepts_dms=False)


def test_local_sign_in_lands_on_the_dashboard(site, browser):
    # Given a fresh browser
    context = browser.new_context()
    page = context.new_page()
    # When the admin signs in with the local account
    sign_in_local(page, site)
    # Then the dashboard of their only guild shows
    assert page.url.endswith(f"/admin{G}/")
    assert page.locator("h1").inner_text() == "Dashboard"
    assert "Signed in as alice" in _flash(page)
    context.close()


def test_wrong_password_says_so(site, browser):
    context = browser.new_context()
    page = context.new_page()
    page.goto(site.admin("/login"))
    shot(page, "login")
    sign_in_local(page, site, password="not the password!")
    assert page.url.endswith("/admin/login")
    assert "The name or the password is wrong." in _flash(page)
    context.close()


def test_discord_sign_in_through_the_stand_in(site, browser):
    # Given a Discord user who manages guild A (Manage Server) and guild B only as a member
    oauth_directory.add_user("750000000000000005", "dora", "Dora the Admin")
    oauth_directory.join("750000000000000005", str(GUILD_A), "Alpha Guild", permissions=MANAGE_GUILD)
    oauth_directory.join("750000000000000005", str(GUILD_B), "Beta Guild", permissions=0)
    context = browser.new_context()
    page = context.new_page()
    # When she signs in with Discord and authorizes on Discord's page
    page.goto(site.admin("/login"))
    _submit(page, "#discord-sign-in")
    assert "/oauth2/authorize" in page.url
    shot(page, "discord-authorize")
    _submit(page, "button[data-user='750000000000000005']")
    # Then she is signed in, for guild A only
    assert page.url.endswith(f"/admin{G}/"), page.url
    assert "Dora the Admin" in page.locator(".who").inner_text()
    response = page.goto(site.admin(f"/g/{GUILD_B}/"))
    assert response.status == 403
    # And a replayed callback (the state was used up) is refused
    response = page.goto(site.admin("/oauth/callback?code=x&state=y"))
    assert response.status == 403
    context.close()


def test_discord_user_without_rights_is_not_let_in(site, browser):
    oauth_directory.add_user("750000000000000006", "eve", "Eve")
    oauth_directory.join("750000000000000006", str(GUILD_A), "Alpha Guild", permissions=0)
    context = browser.new_context()
    page = context.new_page()
    page.goto(site.admin("/login"))
    _submit(page, "#discord-sign-in")
    _submit(page, "button[data-user='750000000000000006']")
    assert page.url.endswith("/admin/login")
    assert "You do not manage any server" in _flash(page)
    context.close()


def test_points_add_remove_set_and_double_submit(site, admin_page):
    page = admin_page
    page.goto(site.admin(f"{G}/points"))
    shot(page, "points")
    # When the admin adds 100 with a reason that contains markup
    page.fill("#single-change input[name=member]", str(MEMBER_1))
    page.fill("#single-change input[name=amount]", "100")
    page.fill("#single-change input[name=reason]", EVIL)
    fields = _form_fields(page, "#single-change")
    _submit(page, "#single-change button[type=submit]")
    # Then the member page shows the new balance and the reason as text, never run
    assert page.locator("#member-balance").inner_text() == "100"
    assert EVIL in page.locator("table.data").first.inner_text()
    assert page.evaluate("window.__pwned") is None
    shot(page, "member")
    # When the same form is submitted a second time (a double click, a resent request)
    _submit_again(page, site, fields)
    page.reload()
    # Then nothing changed the second time
    assert "already submitted" in _flash(page)
    assert site.db.run(ledger.balance, GUILD_A, MEMBER_1) == 100
    # Remove and set from the member page, silently
    for operation, amount, expected in (("deduct", "30", 70), ("set", "500", 500)):
        page.check(f"#member-points input[value={operation}]")
        page.fill("#member-points input[name=amount]", amount)
        page.fill("#member-points input[name=reason]", f"{operation} test")
        page.check("#member-points input[name=silent]")
        _submit(page, "#member-points button[type=submit]")
        assert page.locator("#member-balance").inner_text() == f"{expected:,}"
    silent = _sql(
        site,
        "SELECT silent FROM transactions WHERE guild_id=%s AND user_id=%s ORDER BY id",
        (GUILD_A, MEMBER_1),
    )
    assert [s[0] for s in silent] == [False, True, True]
    # A refused change says why and writes nothing
    page.check("#member-points input[value=deduct]")
    page.fill("#member-points input[name=amount]", "100000")
    page.fill("#member-points input[name=reason]", "too much")
    _submit(page, "#member-points button[type=submit]")
    assert "Not enough" in _flash(page)
    assert site.db.run(ledger.balance, GUILD_A, MEMBER_1) == 500


def test_bulk_csv_dry_run_then_apply_once(site, admin_page, tmp_path):
    page = admin_page
    page.goto(site.admin(f"{G}/points"))
    rows = f"user_id,amount,reason\n{MEMBER_2},25,bulk one\nnot-an-id,5,bad\n{MEMBER_1},7,\n760000000000000007,3,new member\n"
    upload = tmp_path / "batch.csv"
    upload.write_text(rows)
    page.set_input_files("#bulk-form input[name=csv_file]", str(upload))
    page.fill("#bulk-form input[name=reason]", "default reason")
    _submit(page, "#bulk-form button[type=submit]")
    # Then the dry run shows each row's outcome and changes nothing
    table = page.locator("#preview-rows").inner_text()
    assert "must be a Discord id" in table
    assert page.locator("#preview-rows tr.bad").count() == 1
    assert page.locator("#preview-rows tr.ok").count() == 3
    shot(page, "bulk-preview")
    assert site.db.run(ledger.balance, GUILD_A, MEMBER_2) == 0
    # When applied
    fields = _form_fields(page, "#bulk-apply")
    _submit(page, "#bulk-apply button[type=submit]")
    page.wait_for_selector("text=finished")
    shot(page, "bulk-progress")
    assert "3</span> applied" in page.content() or page.locator("[data-bulk=done]").inner_text() == "3"
    assert site.db.run(ledger.balance, GUILD_A, MEMBER_2) == 25
    assert site.db.run(ledger.balance, GUILD_A, MEMBER_1) == 507
    assert site.db.run(ledger.balance, GUILD_A, 760000000000000007) == 3
    # When the same confirmation form is submitted again
    _submit_again(page, site, fields)
    # Then nothing is applied twice
    assert site.db.run(ledger.balance, GUILD_A, MEMBER_2) == 25
    assert site.db.run(ledger.balance, GUILD_A, MEMBER_1) == 507


def test_bulk_from_a_member_search(site, admin_page):
    page = admin_page
    page.goto(site.admin(f"{G}/members?q=bob"))
    page.check(f"#member-results input[value='{MEMBER_2}']")
    page.select_option("#pick-form select[name=operation]", "award")
    page.fill("#pick-form input[name=amount]", "5")
    page.fill("#pick-form input[name=reason]", "picked")
    _submit(page, "#pick-form button[type=submit]")
    assert page.locator("#preview-rows tr.ok").count() == 1
    _submit(page, "#bulk-apply button[type=submit]")
    page.wait_for_selector("text=finished")
    assert site.db.run(ledger.balance, GUILD_A, MEMBER_2) == 30


def test_transactions_monitor_filters_pages_reverts_and_exports(site, admin_page):
    page = admin_page
    page.goto(site.admin(f"{G}/transactions?member={MEMBER_1}"))
    shot(page, "transactions")
    rows = page.locator("#tx-table tbody tr")
    assert rows.count() == 4  # award, deduct, set, bulk
    # Filter by kind
    page.select_option("#tx-filter select[name=kind]", "set")
    _submit(page, "#tx-filter button[type=submit]")
    assert page.locator("#tx-table tbody tr").count() == 1
    # Revert the set entry
    _submit(page, "#tx-table button:has-text('Revert')")
    assert "reverted" in _flash(page)
    assert site.db.run(ledger.balance, GUILD_A, MEMBER_1) == 77  # 70 before the set, +7 from bulk
    # Keyset paging: make more than a page of entries, then walk them
    from pointsbot.admin import bulk as bulk_mod
    from pointsbot.admin.sessions import Identity

    who = Identity("local", "alice", (GUILD_A,))
    for i in range(55):
        site.db.run(bulk_mod.change_points, who, guild_id=GUILD_A, user_id=MEMBER_2, operation="award", amount=1,
                    reason=f"page {i}", silent=True, form_token=f"paging-{i}")  # fmt: skip
    page.goto(site.admin(f"{G}/transactions?member={MEMBER_2}"))
    first = page.locator("#tx-table tbody tr").count()
    _submit(page, "#tx-next")
    second = page.locator("#tx-table tbody tr").count()
    assert (first, second) == (50, 57 - 50)
    # CSV export of the filter: ids as text, formula-looking text defused
    with page.expect_download() as download:
        page.goto(site.admin(f"{G}/transactions?member={MEMBER_1}"))
        page.click("#tx-export")
    with open(download.value.path(), encoding="utf-8") as f:
        text = f.read()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["user_id"] for r in rows} == {str(MEMBER_1)}
    assert any(r["reason"] == EVIL for r in rows)


def test_members_search_profile_edit_create_export_erase(site, admin_page):
    page = admin_page
    page.goto(site.admin(f"{G}/members?q=%3Cscr"))
    assert page.locator("#member-results tbody tr").count() == 1
    assert EVIL in page.locator("#member-results").inner_text()
    assert page.evaluate("window.__pwned") is None
    shot(page, "members")
    page.goto(site.admin(f"{G}/members?min_balance=80&max_balance=90"))
    assert str(MEMBER_2) in page.locator("#member-results").inner_text()
    assert str(MEMBER_1) not in page.locator("#member-results").inner_text()
    # Create a member who never used a command
    page.fill("#member-create input[name=user_id]", "770000000000000008")
    page.fill("#member-create input[name=display_name]", "Newcomer")
    _submit(page, "#member-create button[type=submit]")
    assert "created" in _flash(page)
    # Edit the profile
    page.fill("#profile-form input[name=email]", "new@example.org")
    page.fill("#profile-form textarea[name=notes]", "met at the meetup")
    page.check("#profile-form input[name=dm_opt_out]")
    _submit(page, "#profile-form button[type=submit]")
    assert "Profile saved" in _flash(page)
    assert _sql(site, "SELECT email, notes, dm_opt_out FROM members WHERE guild_id=%s AND user_id=%s",
                (GUILD_A, 770000000000000008)) == [("new@example.org", "met at the meetup", True)]  # fmt: skip
    # A bad email is refused with a clear message
    page.fill("#profile-form input[name=email]", "not an email")
    _submit(page, "#profile-form button[type=submit]")
    assert "does not look like an email address" in _flash(page)
    # Export one member's data
    with page.expect_download() as download:
        page.click("#member-export")
    with open(download.value.path(), encoding="utf-8") as f:
        data = json.load(f)
    assert data["member"]["user_id"] == "770000000000000008" and data["member"]["email"] == "new@example.org"
    # Erase: personal data goes, the ledger stays
    page.goto(site.admin(f"{G}/members/{MEMBER_2}"))
    balance = site.db.run(ledger.balance, GUILD_A, MEMBER_2)
    page.fill("#erase-form input[name=confirm]", str(MEMBER_2))
    _submit(page, "#erase-form button[type=submit]")
    assert "erased" in _flash(page)
    assert _sql(site, "SELECT username, display_name, email FROM members WHERE guild_id=%s AND user_id=%s",
                (GUILD_A, MEMBER_2)) == [(None, None, None)]  # fmt: skip
    assert site.db.run(ledger.balance, GUILD_A, MEMBER_2) == balance
    assert _sql(site, "SELECT sum(amount) FROM transactions WHERE guild_id=%s AND user_id=%s",
                (GUILD_A, MEMBER_2)) == [(balance,)]  # fmt: skip


def test_email_review_approve_with_bonus_and_reject(site, admin_page):
    from pointsbot.community import emails

    first = site.db.run(emails.submit, GUILD_A, MEMBER_1, "evil@example.org")
    second = site.db.run(emails.submit, GUILD_A, MEMBER_CLOSED, "carol@example.org")
    page = admin_page
    page.goto(site.admin(f"{G}/emails"))
    shot(page, "emails")
    before = site.db.run(ledger.balance, GUILD_A, MEMBER_1)
    card = page.locator(f"#submission-{first.id}")
    card.locator("input[name=bonus]").fill("40")
    card.locator("form").first.locator("input[name=note]").fill("welcome")
    fields = _form_fields(page, f"#submission-{first.id} form")
    _submit(page, card.locator("button:has-text('Approve')"))
    assert "approved" in _flash(page)
    assert site.db.run(ledger.balance, GUILD_A, MEMBER_1) == before + 40
    assert site.db.run(ledger.balance, GUILD_A, MEMBER_1) == before + 40
    # Approving with the same form again pays no second bonus
    page.goto(site.admin(f"{G}/emails"))
    _submit_again(page, site, fields)
    assert site.db.run(ledger.balance, GUILD_A, MEMBER_1) == before + 40
    card = page.locator(f"#submission-{second.id}")
    assert card.locator("input[name=note]").count() == 1  # one note, two buttons
    card.locator("input[name=note]").fill("typo in the address")
    _submit(page, card.locator("button:has-text('Reject')"))
    flashes = _flash(page)
    assert "was already approved; nothing changed" in flashes and "rejected" in flashes
    statuses = _sql(site, "SELECT status FROM email_submissions WHERE guild_id=%s ORDER BY id", (GUILD_A,))
    assert [s[0] for s in statuses] == ["approved", "rejected"]
    dms = _sql(site, "SELECT user_id, reason FROM direct_messages WHERE guild_id=%s AND reason='email' ORDER BY id",
               (GUILD_A,))  # fmt: skip
    assert [d[0] for d in dms] == [MEMBER_1, MEMBER_CLOSED]


def test_achievements_create_check_holders_switch_off(site, admin_page):
    page = admin_page
    page.goto(site.admin(f"{G}/achievements"))
    page.fill("#achievement-form input[name=name]", "Big spender <b>")
    page.select_option("#achievement-form select[name=criterion]", "balance_at_least")
    page.fill("#achievement-form input[name=threshold]", "50")
    page.fill("#achievement-form input[name=bonus_points]", "10")
    _submit(page, "#achievement-form button[type=submit]")
    assert "created" in _flash(page)
    _submit(page, "#run-check button")  # a preview first: nothing paid yet
    assert "1 achievement for 1 member" in page.locator("#check-preview").inner_text()
    _submit(page, "#check-confirm button")
    assert "1 achievement awarded" in _flash(page)  # one member over 50: singular
    shot(page, "achievements")
    _submit(page, "#achievement-list a:has-text('Big spender <b>')")
    holders = page.locator("#holders").inner_text()
    assert EVIL in holders  # MEMBER_1 (balance over 50) is shown by name, as text
    shot(page, "achievement")
    # Edit: a new bonus and description
    page.fill("#achievement-form input[name=bonus_points]", "25")
    page.fill("#achievement-form input[name=description]", "Hold 50 or more")
    _submit(page, "#achievement-form button[type=submit]")
    assert "saved" in _flash(page)
    assert _sql(site, "SELECT bonus_points, description, active FROM achievements WHERE guild_id=%s",
                (GUILD_A,)) == [(25, "Hold 50 or more", True)]  # fmt: skip
    page.goto(site.admin(f"{G}/achievements"))
    _submit(page, "#achievement-list button:has-text('Switch off')")
    assert "switched off" in _flash(page)
    assert _sql(site, "SELECT active FROM achievements WHERE guild_id=%s", (GUILD_A,)) == [(False,)]


def test_dms_compose_preview_queue_history_and_retry(site, admin_page):
    page = admin_page
    page.goto(site.admin(f"{G}/dms?to={MEMBER_CLOSED}"))
    page.fill("#dm-compose textarea[name=content]", "Hello <b>Carol</b>")
    _submit(page, "#dm-compose button[type=submit]")
    assert page.locator("#dm-preview-text").inner_text() == "Hello <b>Carol</b>"
    shot(page, "dm-preview")
    _submit(page, "#dm-send button[type=submit]")
    assert "1 message queued" in _flash(page)
    # Carol does not accept DMs: the worker records the failure with the reason
    for _ in range(150):  # the in-process worker delivers within seconds; CI may be slower
        rows = _sql(site, "SELECT status, last_error FROM direct_messages WHERE guild_id=%s AND user_id=%s "
                          "AND reason='admin'", (GUILD_A, MEMBER_CLOSED))  # fmt: skip
        if rows and rows[0][0] == "failed":
            break
        page.wait_for_timeout(200)
    assert rows[0][0] == "failed" and rows[0][1], rows
    page.goto(site.admin(f"{G}/dms?status=failed"))
    failed_row = page.locator("#dm-history tbody tr", has_text="Hello <b>Carol</b>")
    assert "failed" in failed_row.inner_text() and rows[0][1] in failed_row.inner_text()
    shot(page, "dms")
    # Retry: she opened her DMs in the meantime
    discord_state.set_user(str(MEMBER_CLOSED), "carol", accepts_dms=True)
    _submit(page, "#dm-retry button[type=submit]")
    assert "queued again" in _flash(page)
    for _ in range(150):  # the in-process worker delivers within seconds; CI may be slower
        sent = _sql(site, "SELECT count(*) FROM direct_messages WHERE guild_id=%s AND user_id=%s AND status='sent' "
                          "AND content LIKE 'Hello%%'", (GUILD_A, MEMBER_CLOSED))[0][0]  # fmt: skip
        if sent:
            break
        page.wait_for_timeout(200)
    assert sent == 1
    page.goto(site.admin(f"{G}/dms?status=failed"))
    retried = page.locator("#dm-history tbody tr", has_text="Hello <b>Carol</b>")
    assert "retried" in retried.inner_text()
    assert retried.locator("input[name=dm_id]").count() == 0  # nothing left to retry there
    # A filtered set: everyone with a balance of 1 or more (MEMBER_1 and the bulk-made member;
    # MEMBER_2 has points but was erased, Carol has none)
    page.goto(site.admin(f"{G}/dms"))
    page.check("#dm-compose input[value=filter]")
    page.fill("#dm-compose input[name=min_balance]", "1")
    page.fill("#dm-compose textarea[name=content]", "Thanks all")
    _submit(page, "#dm-compose button[type=submit]")
    preview = page.locator("main").inner_text()
    assert "To 2 members" in preview and "760000000000000007" in preview
    _submit(page, "#dm-send button[type=submit]")
    assert "2 messages queued" in _flash(page)


def test_dashboard_figures_chart_and_live_refresh(site, admin_page):
    page = admin_page
    page.goto(site.admin(f"{G}/"))
    figures = {k: page.locator(f"[data-stat={k}]").inner_text() for k in ("members", "transactions_today")}
    assert int(figures["members"]) >= 5
    assert page.locator("#chart-points svg.chart g.day").count() == 30
    # The JSON endpoint behind the live figures, and the page updating itself from it
    page.wait_for_selector("[data-live-note]:has-text('Updated')")
    from pointsbot.admin import bulk as bulk_mod
    from pointsbot.admin.sessions import Identity

    site.db.run(bulk_mod.change_points, Identity("local", "alice", (GUILD_A,)), guild_id=GUILD_A, user_id=MEMBER_1,
                operation="award", amount=1, reason="live", silent=True, form_token="live-1")  # fmt: skip
    expected = int(figures["transactions_today"].replace(",", "")) + 1
    page.wait_for_function(
        "n => document.querySelector('[data-stat=transactions_today]').textContent.replace(/,/g, '') == String(n)",
        arg=expected,
        timeout=30_000,
    )
    shot(page, "dashboard")


def test_audit_log_and_settings(site, admin_page):
    page = admin_page
    page.goto(site.admin(f"{G}/settings"))
    page.fill("#settings-form input[name=currency_name]", "stars")
    page.uncheck("#settings-form input[name=transfers_enabled]")
    _submit(page, "#settings-form button[type=submit]")
    assert "Settings saved" in _flash(page)
    shot(page, "settings")
    settings = _sql(site, "SELECT settings FROM guilds WHERE guild_id=%s", (GUILD_A,))[0][0]
    assert settings["currency_name"] == "stars" and settings["transfers_enabled"] is False
    page.fill("#settings-form input[name=max_change]", "0")
    _submit(page, "#settings-form button[type=submit]")
    # the refusal in words beside its field (never the internal "max_change"), the input kept
    assert (
        page.locator("#error-settings-max_change").inner_text()
        == "The largest single change must be above zero."
    )
    assert page.input_value("#settings-form input[name=max_change]") == "0"
    # Every kind of action so far is in the audit log, with who did it
    recorded = {
        r[0] for r in _sql(site, "SELECT DISTINCT action FROM admin_audit WHERE guild_id=%s", (GUILD_A,))
    }
    assert {"points.award", "points.deduct", "points.set", "points.revert", "bulk.award", "member.create",
            "member.edit", "member.export", "member.erase", "email.approve", "email.reject", "achievement.create",
            "achievement.edit", "achievement.check_now", "dm.send", "dm.retry", "guild.settings"} <= recorded  # fmt: skip
    page.goto(site.admin(f"{G}/audit"))
    assert "Settings changed" in page.locator("#audit-table tbody tr").first.inner_text()
    page.goto(site.admin(f"{G}/audit?action=member.erase"))
    text = page.locator("#audit-table").inner_text()
    # words, not internal names: the erased member (their id on hover) and the local account
    assert "Erased member" in text and "alice (local account)" in text and "member:" not in text
    assert page.locator(f"#audit-table .person[title='Discord id {MEMBER_2}']").count() == 1
    shot(page, "audit")


def test_guild_switcher_lists_only_managed_guilds(site, browser):
    from pointsbot.admin import auth

    site.db.run(auth.create_account, "twoguilds", "two guilds password", [GUILD_A, GUILD_B])
    context = browser.new_context()
    page = context.new_page()
    sign_in_local(page, site, "twoguilds", "two guilds password")
    assert page.url.endswith("/admin/guilds")
    shot(page, "guilds")
    _submit(page, "a:has-text('Beta Guild')")
    assert page.url.endswith(f"/admin/g/{GUILD_B}/")
    page.select_option("#guild-switch", str(GUILD_A))
    page.wait_for_url(f"**/admin/g/{GUILD_A}/")
    context.close()
