"""Admin commands on a real Postgres: rights decided per interaction, changes with audit rows,
exactly-once delivery, and a database connection killed mid-command."""

from __future__ import annotations

import json
import threading

import pytest
from _command_helpers import (
    ADMIN,
    GUILD_A,
    GUILD_B,
    admin,
    counts,
    new_member,
    payload,
    run,
    run_payload,
    seed,
    use_queue,
)

from pointsbot.commands import endpoint
from pointsbot.commands.deferred import TRY_AGAIN
from pointsbot.discord import interactions
from pointsbot.ledger import guilds
from pointsbot.platform.db import DatabaseUnavailable

pytestmark = pytest.mark.integration

ADMIN_COMMANDS = [
    ("points add", {"amount": 5, "reason": "r"}),
    ("points remove", {"amount": 5, "reason": "r"}),
    ("points set", {"amount": 5, "reason": "r"}),
    ("points revert", {"entry": 1}),
    ("emails pending", {}),
    ("emails approve", {}),
    ("emails reject", {}),
    ("member info", {}),
]


@pytest.fixture
def task_queue():
    yield from use_queue()


def _options(path: str, options: dict, member: str) -> dict:
    return {**options, "member": member} if path not in ("points revert", "emails pending") else options


@pytest.mark.parametrize(("path", "options"), ADMIN_COMMANDS, ids=[p for p, _ in ADMIN_COMMANDS])
def test_a_member_without_rights_is_refused_and_nothing_changes(db, settings, sql, path, options):
    # Given a member with a pending email and points, and a plain member who is no admin
    target = new_member()
    seed(db, settings, GUILD_A, target, 50)
    run(db, settings, "email submit", {"address": "t@example.com"}, user_id=target)
    before = counts(sql)
    # When the plain member sends an admin command (as if Discord had shown it to them)
    outcome = run(db, settings, path, _options(path, options, target), user_id=new_member())
    # Then a private refusal, and not a row anywhere changed
    assert outcome.status == "denied" and outcome.reply.ephemeral
    assert "Only admins" in outcome.reply.content
    assert counts(sql) == before


@pytest.mark.parametrize("bit", [1 << 3, 1 << 5], ids=["administrator", "manage-guild"])
def test_administrator_or_manage_guild_may(db, settings, bit):
    target = new_member()
    outcome = run(db, settings, "points add", {"member": target, "amount": 3, "reason": "r"},
                  user_id=new_member(), permissions=(1 << 10) | bit)  # fmt: skip
    assert outcome.status == "ok", outcome.reply.content


def test_a_guild_admin_role_gives_rights_in_that_guild_only(db, settings):
    role = "730000000000000001"
    db.run(guilds.update_guild_settings, int(GUILD_B), {"admin_role_ids": [role]})
    helper, target = new_member(), new_member()
    options = {"member": target, "amount": 3, "reason": "r"}
    assert (
        run(db, settings, "points add", options, user_id=helper, roles=[role], guild_id=GUILD_B).status
        == "ok"
    )
    assert (
        run(db, settings, "points add", options, user_id=helper, roles=[role], guild_id=GUILD_A).status
        == "denied"
    )


def test_points_add_remove_set_with_audit(db, settings, sql, task_queue):
    target = new_member()
    added = admin(db, settings, "points add", {"member": target, "amount": 50, "reason": "helped"})
    assert added.status == "ok" and added.reply.ephemeral
    assert (
        f"Added **50 points** to <@{target}>" in added.reply.content
        and "Balance now **50 points**" in added.reply.content
    )
    removed = admin(db, settings, "points remove", {"member": target, "amount": 20, "reason": "oops"})
    assert "Balance now **30 points**" in removed.reply.content
    set_to = admin(
        db, settings, "points set", {"member": target, "amount": 100, "reason": "fix", "silent": True}
    )
    assert "change +70" in set_to.reply.content and "Silent: no DM." in set_to.reply.content
    entries = sql("SELECT kind, amount, actor_id, source, silent FROM transactions WHERE user_id = %s ORDER BY id",
                  (int(target),))  # fmt: skip
    assert entries == [("award", 50, int(ADMIN), "slash", False), ("deduct", -20, int(ADMIN), "slash", False),
                       ("set", 70, int(ADMIN), "slash", True)]  # fmt: skip
    audit = sql(
        "SELECT action, actor_id FROM admin_audit WHERE target = %s ORDER BY id", (f"member:{target}",)
    )
    assert audit == [("points.add", int(ADMIN)), ("points.remove", int(ADMIN)), ("points.set", int(ADMIN))]
    # The member is DMed about the two loud changes, not about the silent one
    dms = sql("SELECT count(*) FROM direct_messages WHERE user_id = %s", (int(target),))
    assert dms == [(2,)]


@pytest.mark.parametrize(
    ("path", "options", "message"),
    [
        ("points add", {"amount": 2_000_000, "reason": "r"}, "largest single change"),
        ("points remove", {"amount": 10_000, "reason": "r"}, "Not enough points"),
        ("points add", {"amount": 5, "reason": "   "}, "reason is required"),
        ("points set", {"amount": -5, "reason": "r"}, "below zero"),
    ],
)
def test_admin_changes_that_break_a_rule_write_nothing(db, settings, sql, path, options, message):
    target = new_member()
    seed(db, settings, GUILD_A, target, 10)
    admin(db, settings, "balance")  # the admin is already known: their first contact writes rows
    before = counts(sql)
    outcome = admin(db, settings, path, {"member": target, **options})
    assert outcome.status == "refused" and message in outcome.reply.content
    assert counts(sql) == before


def test_revert_reverses_an_entry_once(db, settings, sql):
    target = new_member()
    added = admin(db, settings, "points add", {"member": target, "amount": 40, "reason": "by mistake"})
    entry = int(added.reply.content.split("entry #")[1].split(")")[0])
    reverted = admin(db, settings, "points revert", {"entry": entry})
    assert reverted.status == "ok" and "balance now **0 points**" in reverted.reply.content
    again = admin(db, settings, "points revert", {"entry": entry})
    assert again.status == "refused" and "already been reverted" in again.reply.content
    assert sql("SELECT sum(amount) FROM transactions WHERE user_id = %s", (int(target),)) == [(0,)]


def test_an_admin_of_guild_a_cannot_reach_guild_bs_entries_or_emails(db, settings, sql):
    # Given an entry and a pending email in guild B
    target = new_member()
    added = admin(
        db, settings, "points add", {"member": target, "amount": 40, "reason": "r"}, guild_id=GUILD_B
    )
    entry = int(added.reply.content.split("entry #")[1].split(")")[0])
    run(db, settings, "email submit", {"address": "b@example.com"}, user_id=target, guild_id=GUILD_B)
    admin(db, settings, "balance", guild_id=GUILD_A)
    before = counts(sql)
    # When guild A's admin tries to revert it, approve it, or look the member up
    revert = admin(db, settings, "points revert", {"entry": entry}, guild_id=GUILD_A)
    approve = admin(db, settings, "emails approve", {"member": target}, guild_id=GUILD_A)
    # Then guild B's data is out of reach and nothing changed
    assert revert.status == "refused" and f"no entry #{entry}" in revert.reply.content
    assert approve.status == "refused" and "no email submission waiting" in approve.reply.content
    assert counts(sql) == before
    info = admin(db, settings, "member info", {"member": target}, guild_id=GUILD_A)
    assert "no points record in this server" in info.reply.content
    assert "b@example.com" not in admin(db, settings, "emails pending", guild_id=GUILD_A).reply.content


def test_email_review_flow(db, settings, sql):
    guild = "910000000000000011"
    first, second = new_member(), new_member()
    run(db, settings, "email submit", {"address": "one@example.com"}, user_id=first, guild_id=guild)
    run(db, settings, "email submit", {"address": "two@example.com"}, user_id=second, guild_id=guild)
    pending = admin(db, settings, "emails pending", guild_id=guild).reply.content
    assert pending.index("one@example.com") < pending.index("two@example.com")  # oldest first
    approved = admin(
        db, settings, "emails approve", {"member": first, "bonus": 25, "note": "thanks"}, guild_id=guild
    )
    assert approved.status == "ok" and "with a bonus of **25 points**" in approved.reply.content
    rejected = admin(db, settings, "emails reject", {"member": second, "note": "typo?"}, guild_id=guild)
    assert rejected.status == "ok"
    assert sql(
        "SELECT email FROM members WHERE guild_id = %s AND user_id = %s", (int(guild), int(first))
    ) == [("one@example.com",)]
    bonus = sql(
        "SELECT kind, amount FROM transactions WHERE guild_id = %s AND user_id = %s", (int(guild), int(first))
    )
    assert bonus == [("email_bonus", 25)]
    dms = sql("SELECT user_id, reason, content FROM direct_messages WHERE guild_id = %s AND reason = 'email' ORDER BY id",
              (int(guild),))  # fmt: skip
    assert [d[0] for d in dms] == [int(first), int(second)]
    assert "approved" in dms[0][2] and "thanks" in dms[0][2] and "typo?" in dms[1][2]
    assert (
        "No email submissions are waiting"
        in admin(db, settings, "emails pending", guild_id=guild).reply.content
    )


def test_member_info(db, settings):
    target = new_member()
    admin(db, settings, "points add", {"member": target, "amount": 12, "reason": "welcome"})
    run(db, settings, "balance", user_id=target, username="grace")  # names as Discord last showed them
    info = admin(db, settings, "member info", {"member": target}).reply
    assert info.ephemeral
    assert (
        "**grace**" in info.content and "Balance **12 points**" in info.content and "welcome" in info.content
    )


def test_the_same_interaction_delivered_twice_writes_once(db, settings, sql):
    target = new_member()
    raw = payload("points add", {"member": target, "amount": 9, "reason": "r"}, user_id=ADMIN, admin=True)
    first, second = run_payload(db, settings, raw), run_payload(db, settings, raw)
    assert (first.status, second.status) == ("ok", "replayed") and first.reply == second.reply
    assert sql("SELECT count(*), sum(amount) FROM transactions WHERE user_id = %s", (int(target),)) == [
        (1, 9)
    ]
    assert sql("SELECT count(*) FROM admin_audit WHERE target = %s", (f"member:{target}",)) == [(1,)]


def test_concurrent_twins_write_once(db, settings, sql):
    # Discord retrying while the first delivery is still running: both answers agree.
    target = new_member()
    raw = payload("points add", {"member": target, "amount": 4, "reason": "r"}, user_id=ADMIN, admin=True)
    outcomes, start = [], threading.Barrier(4)

    def deliver() -> None:
        start.wait()
        outcomes.append(run_payload(db, settings, raw))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.status for o in outcomes) == ["ok", "replayed", "replayed", "replayed"]
    assert len({json.dumps(o.reply.to_json(), sort_keys=True) for o in outcomes}) == 1
    assert sql("SELECT count(*) FROM transactions WHERE user_id = %s", (int(target),)) == [(1,)]


@pytest.fixture
def killer(sql):
    """A trigger that kills its own database session right after a ledger entry is written,
    for entries whose reason is 'pull the plug': a connection lost mid-command."""
    sql("""
        CREATE OR REPLACE FUNCTION test_pull_the_plug() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.reason = 'pull the plug' THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER test_pull_the_plug AFTER INSERT ON transactions
            FOR EACH ROW EXECUTE FUNCTION test_pull_the_plug();
    """)
    yield
    sql("DROP TRIGGER test_pull_the_plug ON transactions; DROP FUNCTION test_pull_the_plug();")


def test_connection_killed_mid_command_leaves_no_trace(db, settings, sql, killer):
    target = new_member()
    admin(db, settings, "balance")
    before = counts(sql)
    with pytest.raises(DatabaseUnavailable):
        admin(db, settings, "points add", {"member": target, "amount": 5, "reason": "pull the plug"})
    assert counts(sql) == before


def test_endpoint_gives_the_friendly_answer_when_it_cannot_even_defer(db, settings, sql, killer):
    # The database drops the connection mid-command and the queue is unreachable too.
    target = new_member()
    admin(db, settings, "balance")
    before = counts(sql)
    raw = payload(
        "points add", {"member": target, "amount": 5, "reason": "pull the plug"}, user_id=ADMIN, admin=True
    )
    queue = use_queue(fail=True)
    next(queue)
    try:
        answer = endpoint.run_command(interactions.parse(raw), settings, db)
    finally:
        queue.close()
    assert answer.status == 200 and answer.outcome == "unavailable"
    assert answer.body == {
        "type": 4,
        "data": {"content": TRY_AGAIN, "allowed_mentions": {"parse": []}, "flags": 64},
    }
    assert counts(sql) == before


def test_endpoint_defers_when_the_database_fails_and_the_queue_works(db, settings, sql, killer, task_queue):
    target = new_member()
    raw = payload(
        "points add", {"member": target, "amount": 5, "reason": "pull the plug"}, user_id=ADMIN, admin=True
    )
    answer = endpoint.run_command(interactions.parse(raw), settings, db)
    assert answer.outcome == "deferred" and answer.body == {"type": 5, "data": {"flags": 64}}
    assert [t.kind for t in task_queue.sent] == ["interaction"]
    assert task_queue.sent[0].payload["interaction"]["id"] == raw["id"]


def test_old_stored_answers_are_pruned(db, settings, sql):
    from pointsbot.commands.dispatch import prune_replies

    raw = payload(
        "points add", {"member": new_member(), "amount": 1, "reason": "r"}, user_id=ADMIN, admin=True
    )
    run_payload(db, settings, raw)
    sql("UPDATE interaction_replies SET created_at = now() - interval '2 days' WHERE interaction_id = %s",
        (int(raw["id"]),))  # fmt: skip
    assert db.run(prune_replies) >= 1
    assert sql("SELECT count(*) FROM interaction_replies WHERE interaction_id = %s", (int(raw["id"]),)) == [
        (0,)
    ]
    assert (
        sql("SELECT count(*) FROM interaction_replies WHERE created_at > now() - interval '1 hour'")[0][0] > 0
    )
