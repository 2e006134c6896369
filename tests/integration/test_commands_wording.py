"""Counts in what members and admins read are grammatical: "1 point", "There is only 1 page"."""

from __future__ import annotations

import itertools

import pytest
from _command_helpers import admin, new_member, run, seed, use_queue

from pointsbot.community import emails
from pointsbot.ledger import guilds

pytestmark = pytest.mark.integration

_guilds = itertools.count(950_000_000_000_000_001)


@pytest.fixture
def task_queue():
    yield from use_queue()


@pytest.fixture
def guild() -> str:
    return str(next(_guilds))


def test_one_point_is_singular_in_answers_and_dms(db, settings, sql, guild, task_queue):
    # Given a member with 1 point and another with 2
    member, giver = new_member(), new_member()
    seed(db, settings, guild, member, 1)
    seed(db, settings, guild, giver, 2)
    # Then /balance, /rank, /leaderboard and /give say "1 point"
    assert (
        "\nYou have **1 point**."
        in run(db, settings, "balance", user_id=member, guild_id=guild).reply.content
    )
    assert "with **1 point**." in run(db, settings, "rank", user_id=member, guild_id=guild).reply.content
    board = run(db, settings, "leaderboard", user_id=member, guild_id=guild).reply.content
    assert f"<@{member}> · **1 point**" in board and f"<@{giver}> · **2 points**" in board
    given = run(db, settings, "give", {"member": member, "amount": 1}, user_id=giver, guild_id=guild)
    assert "gave **1 point** to" in given.reply.content and "has 1 point left." in given.reply.content
    # and the DM the receiver gets
    dm = sql("SELECT content FROM direct_messages WHERE guild_id = %s AND user_id = %s ORDER BY id DESC LIMIT 1",
             (int(guild), int(member)))[0][0]  # fmt: skip
    assert "gave you **1 point**" in dm and "now **2 points**" in dm


def test_a_page_past_the_end_says_there_is_only_one_page(db, settings, guild, task_queue):
    member = new_member()
    seed(db, settings, guild, member, 5)
    history = run(db, settings, "history", {"page": 9}, user_id=member, guild_id=guild)
    assert history.reply.content == "There is only 1 page of history."
    db.run(emails.submit, int(guild), int(member), "one@example.org")
    pending = admin(db, settings, "emails pending", {"page": 3}, guild_id=guild)
    assert pending.reply.content == "There is only 1 page of pending submissions."


def test_member_info_counts_one_entry(db, settings, guild):
    member = new_member()
    seed(db, settings, guild, member, 5)
    info = admin(db, settings, "member info", {"member": member}, guild_id=guild).reply.content
    assert "1 entry;" in info and "Balance **5 points**" in info


def test_a_guild_currency_with_its_own_singular(db, settings, guild, task_queue):
    # Given a guild whose currency is "geese", one of which is a "goose"
    db.run(guilds.update_guild_settings, int(guild), {"currency_name": "geese", "currency_singular": "goose"})
    member = new_member()
    seed(db, settings, guild, member, 1)
    assert (
        "\nYou have **1 goose**."
        in run(db, settings, "balance", user_id=member, guild_id=guild).reply.content
    )
    # and a limit message counts in it too
    db.run(guilds.update_guild_settings, int(guild), {"max_change": 1})
    refused = admin(
        db, settings, "points add", {"member": member, "amount": 2, "reason": "r"}, guild_id=guild
    )
    assert refused.reply.content.endswith("(1 goose).")
    assert db.run(guilds.guild_policy, settings, int(guild)).points(2) == "2 geese"
