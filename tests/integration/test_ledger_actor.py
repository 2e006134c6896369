"""Every ledger entry names who made it: local admin accounts (no Discord id), Discord admins,
bulk batches, email approvals, achievement bonuses and slash commands."""

from __future__ import annotations

import psycopg
import pytest
from _command_helpers import ADMIN, GUILD_A, admin, new_member

from pointsbot import ledger
from pointsbot.admin import actions as admin_actions
from pointsbot.admin import bulk, monitor
from pointsbot.admin.sessions import Identity
from pointsbot.community import achievements, emails
from pointsbot.ledger import guilds
from pointsbot.platform.errors import InvalidInput

pytestmark = pytest.mark.integration
GUILD = 940_000_000_000_000_001
LOCAL = Identity("local", "alice", (GUILD,))
DISCORD = Identity("discord", "bob", (GUILD,), user_id=610_000_000_000_000_007)


@pytest.fixture(scope="module", autouse=True)
def guild(db):
    db.run(guilds.ensure_guild, GUILD, "Actors")


def _actors(sql, user: int) -> list[tuple]:
    return sql(
        "SELECT kind, actor_id, actor_name FROM transactions WHERE guild_id = %s AND user_id = %s ORDER BY id",
        (GUILD, user),
    )


def test_a_local_account_is_named_on_its_entries_and_in_the_monitor(db, settings, sql):
    # Given a local admin account (it has no Discord id)
    user = 7_001
    # When it awards points and reverts the award on the admin site
    change = db.run(bulk.change_points, LOCAL, guild_id=GUILD, user_id=user, operation="award", amount=5,
                    reason="helped", silent=True, form_token="actor-1", settings=settings)  # fmt: skip
    db.run(bulk.revert_entry, LOCAL, guild_id=GUILD, entry_id=change.result.entry.id, reason="oops",
           silent=True, form_token="actor-2", settings=settings)  # fmt: skip
    # Then both entries record the account (the old code recorded nobody)
    assert _actors(sql, user) == [("award", None, "local:alice"), ("revert", None, "local:alice")]
    # and the transactions monitor shows it, and can filter by it
    page = db.run(
        monitor.transactions_page, GUILD, monitor.TransactionFilter.from_form({"actor": "local:alice"})
    )
    assert [row.entry.actor for row in page.rows] == ["local:alice", "local:alice"]
    assert {row.entry.user_id for row in page.rows} == {user}


def test_a_discord_admin_is_named_by_id_and_name(db, settings, sql):
    user = 7_002
    db.run(bulk.change_points, DISCORD, guild_id=GUILD, user_id=user, operation="set", amount=9,
           reason="fix", silent=True, form_token="actor-3", settings=settings)  # fmt: skip
    assert _actors(sql, user) == [("set", DISCORD.user_id, "bob")]


def test_bulk_batches_name_the_admin_who_started_them(db, settings, sql):
    users = [7_101, 7_102]
    preview = db.run(bulk.check_rows, GUILD, "award", bulk.rows_for_members([str(u) for u in users], "3", "event"),
                     settings=settings)  # fmt: skip
    batch = db.run(bulk.start_batch, LOCAL, GUILD, preview, "actor-bulk")
    assert bulk.continue_batch(db.run, GUILD, batch.id, settings=settings).finished
    assert [_actors(sql, u) for u in users] == [[("award", None, "local:alice")]] * 2


def test_an_email_approval_bonus_names_the_reviewer_and_an_achievement_bonus_names_itself(db, settings, sql):
    # Given an "email approved" achievement with a bonus, and a member's pending email
    db.run(achievements.create_definition, GUILD, name="Verified", criterion="email_approved", bonus_points=2)
    user = 7_201
    submission = db.run(emails.submit, GUILD, user, "m@example.org")
    # When a local account approves it with a bonus
    db.run(admin_actions.review_email, LOCAL, GUILD, submission.id, approve=True, note="", bonus_points=4,
           form_token="actor-email", settings=settings)  # fmt: skip
    # Then the bonus names the reviewer and the achievement bonus names the achievement
    assert _actors(sql, user) == [("email_bonus", None, "local:alice"), ("achievement", None, "achievement")]


def test_slash_commands_record_the_discord_user(db, settings, sql):
    target = new_member()
    outcome = admin(db, settings, "points add", {"member": target, "amount": 2, "reason": "r"})
    assert outcome.status == "ok", outcome.reply.content
    rows = sql("SELECT actor_id, actor_name FROM transactions WHERE guild_id = %s AND user_id = %s",
               (int(GUILD_A), int(target)))  # fmt: skip
    assert rows and rows[0][0] == int(ADMIN) and rows[0][1]


def test_a_change_by_nobody_is_refused_by_the_ledger_and_by_the_database(db, settings, sql):
    # Given an admin-site change that names no actor (no Discord id, no name)
    before = sql("SELECT count(*) FROM transactions")
    with pytest.raises(InvalidInput):
        db.run(ledger.award, guild_id=GUILD, user_id=7_301, amount=1, reason="who?", actor_id=None,
               source="admin_site", idempotency_key="nobody", settings=settings)  # fmt: skip
    assert sql("SELECT count(*) FROM transactions") == before
    # And SQL that bypasses the ledger cannot write one either
    op = sql("INSERT INTO operations (guild_id, idempotency_key, fingerprint, kind) "
             "VALUES (%s, 'raw-nobody', 'x', 'award') RETURNING id", (GUILD,))[0][0]  # fmt: skip
    with pytest.raises(psycopg.errors.CheckViolation):
        sql("INSERT INTO transactions (operation_id, guild_id, user_id, amount, balance_after, kind, source) "
            "VALUES (%s, %s, 7001, 1, 1, 'award', 'admin_site')", (op, GUILD))  # fmt: skip
