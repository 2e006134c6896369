"""Earned achievements are shown with the bonus that was paid, not the one defined: at the
balance ceiling a bonus pays what fits, maybe nothing (member_achievements.transaction_id NULL),
and a definition edited later does not change what was paid then."""

from __future__ import annotations

import pytest
from _admin_browser import Browser
from _command_helpers import run, use_queue
from _ledger_checks import set_balance

from pointsbot.admin import auth
from pointsbot.community import achievements, members
from pointsbot.ledger import guilds
from pointsbot.platform import runtime
from pointsbot.platform.amounts import MAX_BALANCE
from pointsbot.platform.config import get_settings
from pointsbot.platform.db import Database

pytestmark = pytest.mark.integration
GUILD = 940000000000000001
AT_CEILING, NEAR_CEILING, ORDINARY = 940000000000000011, 940000000000000012, 940000000000000013


@pytest.fixture(autouse=True)
def _queue():
    yield from use_queue()


@pytest.fixture(scope="module")
def earned(db):
    """ "Rich" (balance at least 100, bonus 1,000) earned by a member at the ceiling (nothing fits),
    one 400 below it (400 fits) and one far below (all of it); then its bonus is edited to 5."""
    db.run(guilds.ensure_guild, GUILD, "Ceiling")
    db.run(guilds.update_guild_settings, GUILD, {"max_change": MAX_BALANCE})
    for user, name in ((AT_CEILING, "Topped"), (NEAR_CEILING, "Nearly"), (ORDINARY, "Plain")):
        db.run(members.remember, GUILD, user, name.lower(), name)
    settings = get_settings().with_overrides(max_change=MAX_BALANCE)
    set_balance(db, GUILD, AT_CEILING, MAX_BALANCE, settings)
    set_balance(db, GUILD, NEAR_CEILING, MAX_BALANCE - 400, settings)
    set_balance(db, GUILD, ORDINARY, 500, settings)
    rich = db.run(achievements.create_definition, GUILD, name="Rich", criterion="balance_at_least",
                  threshold=100, bonus_points=1_000)  # fmt: skip
    for user in (AT_CEILING, NEAR_CEILING, ORDINARY):
        assert [g.name for g in db.run(achievements.check_member, GUILD, user)] == ["Rich"]
    db.run(achievements.update_definition, GUILD, rich.id, bonus_points=5)
    return rich.id


def test_the_ceiling_paid_nothing_and_the_record_says_so(db, sql, earned):
    assert sql(
        "SELECT user_id, transaction_id IS NULL FROM member_achievements WHERE guild_id = %s ORDER BY user_id",
        (GUILD,),
    ) == [(AT_CEILING, True), (NEAR_CEILING, False), (ORDINARY, False)]
    paid = {user: [a.bonus_paid for a in db.run(achievements.earned_by, GUILD, user)]
            for user in (AT_CEILING, NEAR_CEILING, ORDINARY)}  # fmt: skip
    assert paid == {AT_CEILING: [0], NEAR_CEILING: [400], ORDINARY: [1_000]}
    # The DMs said the same when they were written
    dms = dict(sql("SELECT user_id, content FROM direct_messages WHERE guild_id = %s AND reason = 'achievement'",
                   (GUILD,)))  # fmt: skip
    assert "Bonus" not in dms[AT_CEILING]
    assert "Bonus: **400 points**" in dms[NEAR_CEILING] and "Bonus: **1,000 points**" in dms[ORDINARY]


def test_slash_achievements_shows_what_was_paid(db, settings, earned):
    def listed(user: int) -> str:
        return run(db, settings, "achievements", user_id=str(user), guild_id=str(GUILD)).reply.content

    # Nothing fitted at the ceiling: no bonus is claimed (it said "(+1,000)")
    assert "- **Rich** (<t:" in listed(AT_CEILING)
    assert "(+" not in listed(AT_CEILING)
    assert "**Rich** (+400)" in listed(NEAR_CEILING)
    # The bonus paid then, not the 5 the definition says now
    assert "**Rich** (+1,000)" in listed(ORDINARY)


def test_the_members_export_holds_what_was_paid(db, earned):
    exported = {
        user: [(a["name"], a["bonus_paid"]) for a in db.run(members.export, GUILD, user)["achievements"]]
        for user in (AT_CEILING, NEAR_CEILING, ORDINARY)
    }
    assert exported == {AT_CEILING: [("Rich", 0)], NEAR_CEILING: [("Rich", 400)], ORDINARY: [("Rich", 1_000)]}


@pytest.fixture
def admin(database_url, monkeypatch, earned) -> Browser:
    monkeypatch.delenv("ADMIN_BASE_URL", raising=False)
    runtime.reset()
    runtime.set_database(Database(database_url))
    runtime.get_database().run(auth.create_account, "ceiling-admin", "the ceiling admin's password", [GUILD])
    browser = Browser()
    assert browser.sign_in("ceiling-admin", "the ceiling admin's password")["statusCode"] == 303
    yield browser
    runtime.reset()


def test_the_admin_member_page_shows_what_was_paid(admin):
    def achievements_card(user: int) -> str:
        body = admin.request("GET", f"/admin/g/{GUILD}/members/{user}")["body"]
        return body[body.index("<strong>Rich</strong>") :].split("</li>", 1)[0]

    assert "+" not in achievements_card(AT_CEILING)
    assert "+400" in achievements_card(NEAR_CEILING)
    assert "+1,000" in achievements_card(ORDINARY)
