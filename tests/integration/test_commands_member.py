"""Member commands on a real Postgres: what each answers, what it writes, what it refuses."""

from __future__ import annotations

import pytest
from _command_helpers import (
    GUILD_A,
    GUILD_B,
    board_page,
    board_rows,
    click,
    counts,
    nav,
    new_member,
    row_line,
    run,
    seed,
    use_queue,
)

from pointsbot.community import achievements
from pointsbot.ledger import guilds

pytestmark = pytest.mark.integration


@pytest.fixture
def task_queue():
    yield from use_queue()


def test_balance_of_self_and_of_another_member(db, settings):
    me, other = new_member(), new_member()
    seed(db, settings, GUILD_A, other, 70)
    mine = run(db, settings, "balance", user_id=me)
    theirs = run(db, settings, "balance", {"member": other}, user_id=me)
    assert mine.reply.content == "### Balance\nYou have **0 points**." and not mine.reply.ephemeral
    assert theirs.reply.content.splitlines()[1] == f"<@{other}> has **70 points**."
    assert mine.reply.v2 and mine.reply.as_response()["data"]["flags"] == 1 << 15


def test_a_guild_never_sees_another_guilds_balance(db, settings):
    # Given a member with points in guild B only
    member = new_member()
    seed(db, settings, GUILD_B, member, 500)
    # When anyone asks about them from guild A
    outcome = run(db, settings, "balance", {"member": member}, guild_id=GUILD_A)
    # Then guild A's data answers: nothing
    assert "**0 points**" in outcome.reply.content
    assert (
        "**500 points**" in run(db, settings, "balance", {"member": member}, guild_id=GUILD_B).reply.content
    )


def test_leaderboard_pages_and_buttons(make_database, settings):
    from pointsbot.platform.db import Database

    db = Database(make_database(), pooled=True, pool_max=4)  # a guild of this test's own
    try:
        members = [new_member() for _ in range(25)]
        for index, member in enumerate(members):
            seed(db, settings, GUILD_A, member, 1000 - index * 10)
        seed(db, settings, GUILD_B, new_member(), 999_999)  # never shown in guild A
        first = run(db, settings, "leaderboard", user_id=members[0])
        rows = board_rows(first.reply)
        assert board_page(first.reply) == "Page 1 of 3"
        assert rows[0] == row_line(1, members[0], 1000, members[0]) and len(rows) == 10
        assert rows[3] == row_line(4, members[3], 970)
        assert "999,999" not in first.reply.content
        buttons = nav(first.reply)
        assert buttons["prev"].get("disabled") is True and not buttons["next"].get("disabled")
        # When Next is clicked, the same message is updated in place with page 2
        second = click(db, settings, buttons["next"]["custom_id"], user_id=members[3])
        assert second.reply.update and second.reply.as_response()["type"] == 7
        assert board_rows(second.reply)[0] == row_line(11, members[10], 900)
        # The asker is not on page 2: the card says where they are
        assert "Your place: #4 with 970 points" in second.reply.content
        last = click(db, settings, "leaderboard:3:next", user_id=members[0])
        assert len(board_rows(last.reply)) == 5
        assert nav(last.reply)["next"]["disabled"] is True and nav(last.reply)["last"]["disabled"] is True
        # A page past the end (a stale button) shows the last page instead of nothing
        assert board_page(run(db, settings, "leaderboard", {"page": 9}).reply) == "Page 3 of 3"
        # Last and First lead by page number; Me to the page that starts with the asker
        assert board_rows(click(db, settings, nav(first.reply)["last"]["custom_id"]).reply)[0] == row_line(
            21, members[20], 800
        )
        me = click(db, settings, nav(second.reply)["me"]["custom_id"], user_id=members[13])
        assert board_rows(me.reply)[0] == row_line(14, members[13], 870, members[13])
    finally:
        db.close()


def test_leaderboard_buttons_walk_the_board_by_keyset_and_old_buttons_still_work(make_database, settings):
    from pointsbot.platform.db import Database

    db = Database(make_database(), pooled=True, pool_max=4)
    try:
        # Given 23 members with many ties (ranks 1, 1, 1, 4, ...)
        members = sorted((new_member() for _ in range(23)), key=int)
        for index, member in enumerate(members):
            seed(db, settings, GUILD_A, member, 100 - index // 3)
        expected = [row_line(1 + 3 * (i // 3), m, 100 - i // 3, members[0]) for i, m in enumerate(members)]
        shown, outcome = [], run(db, settings, "leaderboard", user_id=members[0])
        # When Next is clicked to the end, then Previous back to the start
        for _ in range(3):
            shown.extend(board_rows(outcome.reply))
            buttons = nav(outcome.reply)
            assert all(len(b["custom_id"]) <= 100 for b in buttons.values())
            if buttons["next"].get("disabled"):
                break
            outcome = click(db, settings, buttons["next"]["custom_id"], user_id=members[0])
        # Then every member was listed once, in order, with its competition rank
        assert shown == expected
        assert board_page(outcome.reply) == "Page 3 of 3"
        back = click(db, settings, nav(outcome.reply)["prev"]["custom_id"], user_id=members[0])
        assert board_rows(back.reply) == expected[10:20]
        # A button posted before the keyset (page only) and one with a cursor this code never
        # wrote both lead to the page they name
        for custom_id in (
            "leaderboard:2:next",
            "leaderboard:2:next:x:1",
            "leaderboard:2:prev:5:-3",
            "leaderboard:2:next:1:2:3",
        ):
            assert board_rows(click(db, settings, custom_id, user_id=members[0]).reply) == expected[10:20]
    finally:
        db.close()


def test_leaderboard_custom_ids_fit_at_the_extremes():
    from pointsbot import ledger
    from pointsbot.commands.member import leaderboard_buttons

    row = ledger.LeaderboardRow(rank=1, user_id=2**63 - 1, balance=-(10**12), display_name=None)
    board = ledger.LeaderboardPage((row,), page=2**63 - 2, page_size=10, total_members=2**63 - 1)
    buttons = leaderboard_buttons(board.page, board.pages, board)[0]["components"]
    assert max(len(b["custom_id"]) for b in buttons) <= 100
    assert len({b["custom_id"] for b in buttons}) == len(buttons)  # Discord refuses twins


def test_leaderboard_of_a_new_guild_lists_the_asker(db, settings):
    # Asking makes the asker a member of the guild's points table, at zero.
    member = new_member()
    board = run(db, settings, "leaderboard", user_id=member, guild_id="910000000000000077").reply
    assert board_rows(board) == [row_line(1, member, 0, member)]


def test_rank_uses_competition_ranking(db, settings):
    guild = "910000000000000003"
    a, b, c = new_member(), new_member(), new_member()
    seed(db, settings, guild, a, 50)
    seed(db, settings, guild, b, 50)
    seed(db, settings, guild, c, 10)
    assert "ranked **#1** of 3" in run(db, settings, "rank", user_id=b, guild_id=guild).reply.content
    assert (
        "ranked **#3** of 3"
        in run(db, settings, "rank", {"member": c}, user_id=a, guild_id=guild).reply.content
    )


def test_history_is_private_and_newest_first(db, settings):
    member = new_member()
    seed(db, settings, GUILD_A, member, 5)
    seed(db, settings, GUILD_A, member, 7)
    outcome = run(db, settings, "history", user_id=member)
    lines = outcome.reply.content.splitlines()
    assert outcome.reply.ephemeral
    assert lines[:2] == ["### Your history", "Page 1 of 1"]
    assert "**+7**" in lines[2] and "**+5**" in lines[3]
    assert "no points history" in run(db, settings, "history", user_id=new_member()).reply.content


def test_achievements_lists_what_was_earned(db, settings):
    guild = "910000000000000004"
    member = new_member()
    db.run(lambda conn: guilds.ensure_guild(conn, int(guild)))
    db.run(achievements.create_definition, int(guild), name="First steps", criterion="balance_at_least",
           threshold=10, bonus_points=5, description="Reach 10 points")  # fmt: skip
    assert (
        "no achievements yet"
        in run(db, settings, "achievements", user_id=member, guild_id=guild).reply.content
    )
    seed(db, settings, guild, member, 20)  # the change makes the achievement true
    listed = run(db, settings, "achievements", user_id=member, guild_id=guild).reply.content
    assert "**First steps** (+5) - Reach 10 points" in listed
    # Another guild's member with the same id has none there
    assert (
        "no achievements" in run(db, settings, "achievements", user_id=member, guild_id=GUILD_B).reply.content
    )


def test_email_submit_validates_and_allows_one_pending(db, settings, sql):
    member = new_member()
    bad = run(db, settings, "email submit", {"address": "not an address"}, user_id=member)
    assert (
        bad.status == "refused" and bad.reply.ephemeral and "does not look like an email" in bad.reply.content
    )
    good = run(db, settings, "email submit", {"address": "Ada@Example.ORG"}, user_id=member)
    assert good.status == "ok" and good.reply.ephemeral and "Ada@example.org" in good.reply.content
    again = run(db, settings, "email submit", {"address": "other@example.org"}, user_id=member)
    assert again.status == "refused" and "already have Ada@example.org waiting" in again.reply.content
    rows = sql("SELECT email, status FROM email_submissions WHERE user_id = %s", (int(member),))
    assert rows == [("Ada@example.org", "pending")]


def test_give_moves_points_between_members(db, settings, sql, task_queue):
    giver, receiver = new_member(), new_member()
    seed(db, settings, GUILD_A, giver, 100)
    outcome = run(
        db, settings, "give", {"member": receiver, "amount": 30, "reason": "for the help"}, user_id=giver
    )
    assert outcome.status == "ok", outcome.reply.content
    assert f"<@{giver}> gave **30 points** to <@{receiver}>: for the help" in outcome.reply.content
    balances = dict(sql("SELECT user_id, balance FROM points WHERE guild_id = %s AND user_id IN (%s, %s)",
                        (int(GUILD_A), int(giver), int(receiver))))  # fmt: skip
    assert balances == {int(giver): 70, int(receiver): 30}
    # The receiver's DM was queued, and delivery was asked for after COMMIT
    assert any(t.kind == "deliver_dms" for t in task_queue.sent)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"amount": 500}, "Not enough points"),
        ({"amount": 5, "self": True}, "cannot give points to yourself"),
        ({"amount": 5, "bot": True}, "Bots cannot hold points"),
    ],
)
def test_give_refusals_write_nothing(db, settings, sql, options, message):
    giver = new_member()
    seed(db, settings, GUILD_A, giver, 100)
    receiver = giver if options.pop("self", False) else new_member()
    bots = {receiver} if options.pop("bot", False) else set()
    before = counts(sql)
    outcome = run(db, settings, "give", {"member": receiver, **options}, user_id=giver, bots=bots)
    assert outcome.status == "refused" and outcome.reply.ephemeral and message in outcome.reply.content
    assert counts(sql) == before


def test_give_when_the_guild_switched_transfers_off(db, settings, sql):
    guild = "910000000000000005"
    giver = new_member()
    seed(db, settings, guild, giver, 100)
    db.run(guilds.update_guild_settings, int(guild), {"transfers_enabled": False})
    before = counts(sql)
    outcome = run(db, settings, "give", {"member": new_member(), "amount": 5}, user_id=giver, guild_id=guild)
    assert outcome.status == "refused" and "switched off" in outcome.reply.content
    assert counts(sql) == before


def test_the_same_give_delivered_twice_moves_points_once(db, settings, sql):
    giver, receiver = new_member(), new_member()
    seed(db, settings, GUILD_A, giver, 100)
    from _command_helpers import payload, run_payload

    raw = payload("give", {"member": receiver, "amount": 10}, user_id=giver)
    first = run_payload(db, settings, raw)
    second = run_payload(db, settings, raw)
    assert (first.status, second.status) == ("ok", "replayed")
    assert second.reply == first.reply
    assert sql("SELECT count(*) FROM transactions WHERE user_id = %s", (int(receiver),)) == [(1,)]


def test_commands_outside_a_guild_are_refused(db, settings, sql):
    before = counts(sql)
    outcome = run(db, settings, "balance", guild_id=None)
    assert outcome.status == "refused" and "in a server" in outcome.reply.content
    assert counts(sql) == before


def test_a_member_is_remembered_with_their_name(db, settings, sql):
    member = new_member()
    run(db, settings, "balance", user_id=member, username="ada")
    assert sql(
        "SELECT username FROM members WHERE guild_id = %s AND user_id = %s", (int(GUILD_A), int(member))
    ) == [("ada",)]
