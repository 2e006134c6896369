"""What a change costs in statements: the guild row read once, with the claim of the key; the
achievement check only where the guild defines an active achievement (sql/037's count, kept by
trigger); first contact of a member in one statement. Each statement is a round trip to the
database (bench/ledger_ops.py and bench/bench_interactions.py measure what that saves)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count

import psycopg
import pytest
from _command_helpers import ADMIN, GUILD_A, new_member, use_queue

from pointsbot import commands
from pointsbot.community import achievements, members, points
from pointsbot.discord import interactions
from pointsbot.ledger import guilds
from pointsbot.platform.db import Database, connection_kwargs
from pointsbot.platform.storable import CheckedCursor
from pointsbot_local.simulate import command_payload

pytestmark = pytest.mark.integration
GUILD = 900_000_000_000_003_701
OTHER = 900_000_000_000_003_702
_keys = count()


class _Counting(CheckedCursor):
    sent: list[str] = []

    def execute(self, query, params=None, **kwargs):  # type: ignore[override]
        _Counting.sent.append(" ".join(str(query).split()))
        return super().execute(query, params, **kwargs)


@contextmanager
def counted(database_url: str, prepare_threshold: int) -> Iterator[tuple[psycopg.Connection, list[str]]]:
    """A connection in one transaction whose statements are recorded."""
    kwargs = connection_kwargs(prepare_threshold=prepare_threshold)
    kwargs["cursor_factory"] = _Counting
    with psycopg.connect(database_url, **kwargs) as conn, conn.transaction():
        _Counting.sent = []
        yield conn, _Counting.sent


def _award(conn: psycopg.Connection, settings, guild: int, user: int, *, silent: bool = True):
    return points.award(
        conn, guild_id=guild, user_id=user, amount=5, reason="thanks", actor_id=1, source="system",
        idempotency_key=f"rt-{next(_keys)}", silent=silent, settings=settings,
    )  # fmt: skip


def test_a_change_reads_the_guild_once_and_skips_the_check_without_achievements(
    db, settings, database_url, prepare_threshold, sql
):
    # Given a guild without achievements and a member it knows
    db.run(members.remember, GUILD, 11)
    # When a silent credit is made
    with counted(database_url, prepare_threshold) as (conn, sent):
        result = _award(conn, settings, GUILD, 11)
    # Then it took one statement: the guild row, the claim of the key and the guarded apply
    assert result.balance == 5
    assert len(sent) == 1, sent
    assert "FROM guilds" in sent[0] and "INSERT INTO operations" in sent[0] and "UPDATE points" in sent[0]
    # and with the DM (not silent) one more: the DM itself, the guild's name read with the claim
    with counted(database_url, prepare_threshold) as (conn, sent):
        _award(conn, settings, GUILD, 11, silent=False)
    assert len(sent) == 2, sent
    assert "INSERT INTO direct_messages" in sent[1]
    assert sql("SELECT count(*) FROM direct_messages WHERE guild_id = %s AND user_id = 11", (GUILD,)) == [
        (1,)
    ]


def test_an_active_achievement_brings_the_check_back_and_pays(db, settings, database_url, prepare_threshold):
    # Given a guild with an achievement for a balance of 10
    db.run(members.remember, OTHER, 12)
    defined = db.run(
        achievements.create_definition, OTHER, name="Ten", criterion="balance_at_least", threshold=10,
        bonus_points=1,
    )  # fmt: skip
    # When a member passes it with two credits
    with counted(database_url, prepare_threshold) as (conn, sent):
        _award(conn, settings, OTHER, 12)
    assert any("member_achievements" in s for s in sent)  # checked: one active achievement
    result = db.run(_award, settings, OTHER, 12)
    # Then the second credit earned it, bonus included
    assert result.balance == 10
    assert db.run(points.ledger.balance, OTHER, 12) == 11
    assert [a.achievement_id for a in db.run(achievements.earned_by, OTHER, 12)] == [defined.id]


def test_the_kept_count_follows_create_switch_and_delete(db, settings, sql):
    guild = 900_000_000_000_003_703
    db.run(members.remember, guild, 1)

    def kept() -> int:
        return sql("SELECT active_achievements FROM guilds WHERE guild_id = %s", (guild,))[0][0]

    def actual() -> int:
        return sql("SELECT count(*) FROM achievements WHERE guild_id = %s AND active", (guild,))[0][0]

    a = db.run(achievements.create_definition, guild, name="A", criterion="balance_at_least", threshold=5)
    b = db.run(achievements.create_definition, guild, name="B", criterion="member_days", window_days=3)
    c = db.run(achievements.create_definition, guild, name="C", criterion="top_k", threshold=3, active=False)
    assert kept() == actual() == 2
    db.run(achievements.update_definition, guild, a.id, active=False)
    db.run(achievements.update_definition, guild, b.id, name="B2", threshold=0)  # no change of the count
    assert kept() == actual() == 1
    db.run(achievements.update_definition, guild, c.id, active=True)
    db.run(achievements.update_definition, guild, c.id, active=True)  # already active
    assert kept() == actual() == 2
    db.run(achievements.delete_definition, guild, b.id)
    db.run(achievements.delete_definition, guild, a.id)  # inactive: the count stays
    assert kept() == actual() == 1
    # and the policy read with a change carries it
    policy = db.run(guilds.guild_policy, settings, guild)
    assert policy.active_achievements == 1


def test_first_contact_is_one_statement_with_the_names(db, database_url, prepare_threshold, sql):
    guild = 900_000_000_000_003_704
    # A guild and a member never seen: one statement makes the guild, the member with its names
    with counted(database_url, prepare_threshold) as (conn, sent):
        members.remember(conn, guild, 21, "ada", "Ada L")
    assert len(sent) == 1
    assert sql(
        "SELECT username, display_name FROM members WHERE guild_id = %s AND user_id = 21", (guild,)
    ) == [("ada", "Ada L")]
    assert sql("SELECT member_count FROM guilds WHERE guild_id = %s", (guild,)) == [(1,)]
    assert sql("SELECT balance FROM points WHERE guild_id = %s AND user_id = 21", (guild,)) == [(0,)]
    assert sql("SELECT transaction_count FROM user_stats WHERE guild_id = %s AND user_id = 21", (guild,)) == [
        (0,)
    ]
    # Known: a new name replaces the old, a missing one keeps it
    db.run(members.remember, guild, 21, None, "Ada Lovelace")
    assert sql(
        "SELECT username, display_name FROM members WHERE guild_id = %s AND user_id = 21", (guild,)
    ) == [("ada", "Ada Lovelace")]
    # An erased member's names are not written back
    sql("UPDATE members SET erased_at = now(), username = NULL, display_name = NULL "
        "WHERE guild_id = %s AND user_id = 21", (guild,))  # fmt: skip
    db.run(members.remember, guild, 21, "ada", "Ada")
    assert sql(
        "SELECT username, display_name FROM members WHERE guild_id = %s AND user_id = 21", (guild,)
    ) == [(None, None)]
    assert sql("SELECT member_count FROM guilds WHERE guild_id = %s", (guild,)) == [(1,)]


@pytest.fixture
def task_queue():
    yield from use_queue()


def test_points_add_through_dispatch_is_five_statements(
    database_url, prepare_threshold, settings, sql, task_queue
):
    # Given the interactions function's path: a Database whose statements are recorded
    db = Database(database_url, prepare_threshold=prepare_threshold)
    db._kwargs["cursor_factory"] = _Counting
    target = new_member()
    payload = command_payload(
        "points add",
        {"member": target, "amount": 7, "reason": "helped"},
        user_id=ADMIN,
        admin=True,
        guild_id=GUILD_A,
    )
    try:
        # (the server's language is recorded once, by the first interaction that brings it)
        _Counting.sent = []
        first = commands.execute(
            db, interactions.parse(command_payload("balance", user_id=ADMIN, guild_id=GUILD_A)), settings
        )
        assert first.status == "ok"
        assert sum("jsonb_build_object('locale'" in s for s in _Counting.sent) <= 1
        _Counting.sent = []
        # When an admin adds points (not silent: the member's DM is queued)
        outcome = commands.execute(db, interactions.parse(payload), settings)
        sent = list(_Counting.sent)
        # and the same interaction arrives again
        _Counting.sent = []
        again = commands.execute(db, interactions.parse(payload), settings)
        replay = list(_Counting.sent)
    finally:
        db.close()
    # Then one statement each: the guild row with the interaction's claim, the admin's and the
    # member's first contact (one statement for both), the ledger's claim and apply (guild row
    # again, with the key), the DM, and the stored answer with the audit row (and whether a DM or
    # role change was queued)
    assert outcome.status == "ok", outcome.reply.content
    assert len(sent) == 5, sent
    assert "INSERT INTO interaction_replies" in sent[0] and "FROM guilds" in sent[0]
    assert sent[1].startswith("WITH i AS ( SELECT * FROM unnest(") and "INSERT INTO guilds" in sent[1]
    assert "INSERT INTO operations" in sent[2] and "UPDATE points" in sent[2]
    assert "INSERT INTO direct_messages" in sent[3]
    assert "INSERT INTO admin_audit" in sent[4] and "UPDATE interaction_replies" in sent[4]
    # both people are known with their names, and the change is audited once, naming the interaction
    assert sql(
        "SELECT user_id FROM members WHERE guild_id = %s AND user_id IN (%s, %s) ORDER BY user_id",
        (int(GUILD_A), int(ADMIN), int(target)),
    ) == sorted([(int(ADMIN),), (int(target),)])
    assert sql(
        "SELECT action, target, after->>'via', after->>'interaction', after->>'amount' FROM admin_audit "
        "WHERE guild_id = %s AND target = %s",
        (int(GUILD_A), f"member:{target}"),
    ) == [("points.add", f"member:{target}", "slash", payload["id"], "7")]
    assert not any("member_achievements" in s for s in sent)  # no achievement defined here
    assert not any("jsonb_build_object('locale'" in s for s in sent)  # the language is known now
    assert task_queue.sent  # delivery of the DM was asked for
    # and the replay answers the first answer from two statements, writing nothing
    assert again.status == "replayed" and again.reply.content == outcome.reply.content
    assert len(replay) == 2, replay
    assert sql(
        "SELECT count(*) FROM transactions WHERE guild_id = %s AND user_id = %s", (int(GUILD_A), int(target))
    ) == [(1,)]


def test_the_caller_and_the_member_a_write_names_are_remembered_in_one_statement(
    db, database_url, prepare_threshold, sql
):
    guild = 900_000_000_000_003_705
    db.run(members.remember, guild, 31, "old", "Old Name")
    sql("UPDATE members SET erased_at = now(), username = NULL, display_name = NULL "
        "WHERE guild_id = %s AND user_id = 31", (guild,))  # fmt: skip
    db.run(members.remember, guild, 32, "bea", None)
    # Given a new member, a known one with a new display name, an erased one, and one named twice
    with counted(database_url, prepare_threshold) as (conn, sent):
        members.remember_people(conn, guild, [
            (33, "cy", "Cy", "avatars/33/a.png"), (32, None, "Bea B", None), (31, "back", "Back", None),
            (34, "dee", None, None), (34, None, "Dee D", None),
        ])  # fmt: skip
    # Then one statement made and named them all, in user id order, each once
    assert len(sent) == 1
    assert sql(
        "SELECT user_id, username, display_name, avatar FROM members WHERE guild_id = %s ORDER BY user_id",
        (guild,),
    ) == [(31, None, None, None), (32, "bea", "Bea B", None), (33, "cy", "Cy", "avatars/33/a.png"),
          (34, "dee", "Dee D", None)]  # fmt: skip
    assert sql("SELECT member_count FROM guilds WHERE guild_id = %s", (guild,)) == [(4,)]
    assert sql("SELECT count(*) FROM points WHERE guild_id = %s", (guild,)) == [(4,)]
    assert sql("SELECT count(*) FROM user_stats WHERE guild_id = %s", (guild,)) == [(4,)]
    # and nobody at all sends nothing
    with counted(database_url, prepare_threshold) as (conn, sent):
        members.remember_people(conn, guild, [])
    assert sent == []
