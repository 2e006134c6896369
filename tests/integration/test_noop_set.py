"""A "set" to the balance a member already has changes nothing, so it writes nothing: no ledger
entry (an entry is a transaction: it moved transaction counts and "at least N transactions"
achievements), no audit line, no DM. Every path says so plainly, and says it again on a replay.
Adding or removing 0 is refused."""

from __future__ import annotations

import itertools

import pytest
from _admin_browser import Browser
from _command_helpers import admin as admin_command
from _command_helpers import counts, new_member, seed, use_queue
from _ledger_checks import key, set_balance

from pointsbot import ledger
from pointsbot.admin import auth
from pointsbot.community import achievements
from pointsbot.ledger import guilds
from pointsbot.platform import runtime
from pointsbot.platform.db import Database
from pointsbot.platform.errors import IdempotencyConflict
from pointsbot_local.simulate import snowflake

pytestmark = pytest.mark.integration
SITE_GUILD = 950000000000000001
_site_members = itertools.count(950000000000000101)


@pytest.fixture(autouse=True)
def _queue():
    yield from use_queue()


def _stats(sql, guild: int, user: int) -> list[tuple]:
    return sql(
        "SELECT p.balance, s.transaction_count FROM points p JOIN user_stats s USING (guild_id, user_id) "
        "WHERE p.guild_id = %s AND p.user_id = %s",
        (guild, user),
    )


# -- the ledger ----------------------------------------------------------------------------------
def test_a_set_to_the_current_balance_writes_no_entry_and_replays_the_same(db, settings, sql):
    guild, user = 950000000000000002, 950000000000000003
    db.run(guilds.ensure_guild, guild, "Ledger")
    set_balance(db, guild, user, 70, settings)
    before = counts(sql)
    # When the balance is set to what it is
    the_key = key("noop-set")
    result = set_balance(db, guild, user, 70, settings, idempotency_key=the_key)
    # Then nothing changed and nothing was written but the key's record
    assert counts(sql) == {**before, "operations": before["operations"] + 1}
    assert _stats(sql, guild, user) == [(70, 1)]
    assert (result.changed, result.entries, result.replayed) == (False, (), False)
    # A replay of the key answers the same; the key is still bound to its request
    replay = set_balance(db, guild, user, 70, settings, idempotency_key=the_key)
    assert (replay.changed, replay.replayed) == (False, True)
    with pytest.raises(IdempotencyConflict):
        set_balance(db, guild, user, 71, settings, idempotency_key=the_key)
    # A set to 0 for a member never seen does not make them a member either
    stranger = 950000000000000004
    assert not set_balance(db, guild, stranger, 0, settings).changed
    assert sql("SELECT count(*) FROM members WHERE guild_id = %s AND user_id = %s", (guild, stranger)) == [
        (0,)
    ]


# -- /points set -----------------------------------------------------------------------------------
def test_slash_set_to_the_current_balance_says_so_and_moves_no_count(db, settings, sql):
    # Given a member with 40 points from one entry, and "at least 2 transactions"
    guild = "950000000000000005"
    db.run(guilds.ensure_guild, int(guild), "Slash")
    db.run(achievements.create_definition, int(guild), name="Regular", criterion="transactions_at_least",
           threshold=2, bonus_points=0)  # fmt: skip
    member = new_member()
    seed(db, settings, guild, member, 40)
    admin_command(db, settings, "balance", guild_id=guild)  # the admin's own first contact, made now
    before = counts(sql)
    # When an admin sets the member to 40
    interaction = snowflake()
    options = {"member": member, "amount": 40, "reason": "tidy up"}
    answer = admin_command(db, settings, "points set", options, guild_id=guild, interaction_id=interaction)
    # Then a plain answer, and nothing written: no entry, no count moved, no achievement, no DM
    text = answer.reply.content
    assert f"<@{member}> already has **40 points** - nothing to change." == text
    assert "entry" not in text and "+0" not in text
    after = counts(sql)
    assert {t: n for t, n in after.items() if n != before[t]} == {
        "operations": before["operations"] + 1,
        "interaction_replies": before["interaction_replies"] + 1,
    }
    assert _stats(sql, int(guild), int(member)) == [(40, 1)]
    # The same interaction again (Discord's retry, the deferred worker) gets the same answer
    again = admin_command(db, settings, "points set", options, guild_id=guild, interaction_id=interaction)
    assert again.reply.content == text
    assert counts(sql) == after


def test_adding_or_removing_zero_is_refused_and_writes_nothing(db, settings, sql):
    member = new_member()
    seed(db, settings, "910000000000000001", member, 10)
    before = counts(sql)
    for path in ("points add", "points remove"):
        answer = admin_command(db, settings, path, {"member": member, "amount": 0, "reason": "nothing"})
        assert answer.reply.content == "The amount must be above zero."
    assert counts(sql) == before


# -- the admin site ------------------------------------------------------------------------------
@pytest.fixture
def site(database_url, monkeypatch) -> Browser:
    monkeypatch.delenv("ADMIN_BASE_URL", raising=False)
    runtime.reset()
    runtime.set_database(Database(database_url))
    db = runtime.get_database()
    db.run(guilds.ensure_guild, SITE_GUILD, "Site")
    if not db.fetchone("SELECT 1 FROM admin_accounts WHERE name = 'noop-admin'"):
        db.run(auth.create_account, "noop-admin", "the no-op admin's password", [SITE_GUILD])
    browser = Browser()
    assert browser.sign_in("noop-admin", "the no-op admin's password")["statusCode"] == 303
    yield browser
    runtime.reset()


def _points_form(browser: Browser, member: int, operation: str, amount: str, token: str) -> str:
    """Submit the points form; the message it leaves on the member page it leads to."""
    csrf = browser.csrf(f"/admin/g/{SITE_GUILD}/points")
    form = {"csrf_token": csrf, "member": str(member), "operation": operation, "amount": amount,
            "reason": "form", "form_token": token}  # fmt: skip
    result = browser.request("POST", f"/admin/g/{SITE_GUILD}/points", form)
    if operation != "set" and amount == "0":
        # A refused form is shown again, with its values and the reason, as 422
        assert result["statusCode"] == 422, result["body"][:300]
        return result["body"]
    assert result["statusCode"] == 303, result["body"][:300]
    return browser.request("GET", result["headers"]["Location"])["body"]


def test_the_points_form_set_to_minus_zero_on_zero_changes_nothing(site, sql):
    # Given a member whose balance is 0
    member = next(_site_members)
    runtime.get_database().run(ledger.ensure_member, SITE_GUILD, member)
    before = counts(sql)
    # When an admin sets it to -0 (the same number), twice with the same form
    first = _points_form(site, member, "set", "-0", "noop-form-1")
    again = _points_form(site, member, "set", "-0", "noop-form-1")
    # Then both times a plain "nothing to change", and no entry, audit line or DM
    for page in (first, again):
        assert f"{member} already has 0 points - nothing to change." in page
    assert counts(sql) == {**before, "operations": before["operations"] + 1}
    # Adding or removing 0 is refused as before
    for operation in ("award", "deduct"):
        assert "The amount must be above zero." in _points_form(
            site, member, operation, "0", f"zero-{operation}"
        )
    assert counts(sql) == {**before, "operations": before["operations"] + 1}


def _bulk(browser: Browser, step: str, csv_text: str, token: str) -> dict:
    csrf = browser.csrf(f"/admin/g/{SITE_GUILD}/points")
    form = {
        "csrf_token": csrf,
        "operation": "set",
        "csv_text": csv_text,
        "reason": "bulk",
        "form_token": token,
    }
    return browser.request("POST", f"/admin/g/{SITE_GUILD}/bulk/{step}", form)


def test_bulk_set_rows_at_their_balance_show_as_unchanged_and_write_nothing(site, sql, settings):
    # Given a member at 25 and one at 0
    db = runtime.get_database()
    same, other = next(_site_members), next(_site_members)
    db.run(ledger.ensure_member, SITE_GUILD, other)
    set_balance(db, SITE_GUILD, same, 25, settings)
    rows = f"{same},25,already there\n{other},30,new balance"
    # When a bulk set to 25 and 30 is checked
    preview = _bulk(site, "preview", rows, "noop-bulk-1")["body"]
    # Then the dry run shows the first row as unchanged, and only the second as a change
    assert "1 row</strong> can be applied, <strong>1</strong> unchanged" in preview
    unchanged_row = preview[preview.index(f">{same}") :].split("</tr>", 1)[0]
    assert "unchanged" in unchanged_row and "ok" not in unchanged_row
    assert "Apply 1 row" in preview
    # When it is applied, only the change is written
    before = counts(sql)
    applied = _bulk(site, "apply", rows, "noop-bulk-1")
    assert applied["statusCode"] == 303
    assert sql("SELECT user_id, amount, kind FROM transactions WHERE guild_id = %s AND user_id = ANY(%s) ORDER BY id",
               (SITE_GUILD, [same, other])) == [(same, 25, "set"), (other, 30, "set")]  # fmt: skip
    assert counts(sql)["transactions"] == before["transactions"] + 1
    # And a batch in which nothing would change is not started: it says so
    nothing = _bulk(site, "preview", f"{same},25,again\n{other},30,again", "noop-bulk-2")["body"]
    assert "Nothing to change: every row is at that balance already." in nothing
    assert 'id="bulk-apply"' not in nothing
