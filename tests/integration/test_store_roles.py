"""Role rewards on real Postgres and the project's Discord stand-in over HTTP: a purchase asks
for the grant in its own transaction, the role worker makes it once, a grant Discord refuses
ends in a refund linked to the purchase, a DM to the member and a flag, and an admin's refund
takes the role back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from _dm_fixtures import RecordingQueue, discord_fixture, fresh_db_fixture, messages_to, new_guild, new_member
from _ledger_checks import violations

from pointsbot import ledger
from pointsbot.community import roles, store
from pointsbot.delivery import outbox, tasks
from pointsbot.discord.rest import DiscordClient
from pointsbot.platform.db import Database
from pointsbot_local import discord_standin_rest
from pointsbot_local.discord_standin import standin
from pointsbot_local.simulate import snowflake

pytestmark = [pytest.mark.integration, pytest.mark.through_pgbouncer]

# Fixtures used by name in this module.
__all__ = ["discord_fixture", "fresh_db_fixture"]

MEMBER_ROLE = "/guilds/{guild_id}/members/{user_id}/roles/{role_id}"
state = discord_standin_rest.state


@pytest.fixture
def fast(settings):
    return settings.with_overrides(dm_rate_per_second=500, dm_deliver_budget_s=20)


@pytest.fixture(autouse=True)
def queue():
    recording = RecordingQueue([])
    tasks.set_task_queue(recording)
    yield recording
    tasks.set_task_queue(None)


def _member_with(db: Database, guild: int, points: int) -> int:
    user = new_member(db, guild)
    db.run(ledger.award, guild_id=guild, user_id=user, amount=points, reason="seed", actor_id=None,
           actor_name="system", source="system", idempotency_key=f"seed-{user}", silent=True)  # fmt: skip
    return user


def _role_reward(db: Database, guild: int, role: str | int, **values) -> store.Reward:
    values.setdefault("price", 100)
    return db.run(store.create_reward, guild_id=guild, actor_id=1, actor_name="admin", kind="role",
                  name=f"Role {snowflake()}", role_id=str(role), **values)  # fmt: skip


def _buy(db: Database, guild: int, user: int, reward: store.Reward, interaction: int | None = None):
    return db.run(store.purchase, guild_id=guild, user_id=user, reward_id=reward.id,
                  interaction_id=interaction or int(snowflake()), actor_name="buyer")  # fmt: skip


def test_a_bought_role_is_granted_once_with_its_end(db: Database, discord: DiscordClient, fast) -> None:
    # Given a member with 300 points and a 30-day role reward the bot can grant
    guild = new_guild(db)
    user = _member_with(db, guild, 300)
    role = state.add_role(str(guild), "Supporter", position=3)
    reward = _role_reward(db, guild, role, duration_days=30, stock=5)
    # When the member buys it (and Discord redelivers the purchase)
    interaction = int(snowflake())
    bought = _buy(db, guild, user, reward, interaction).purchase
    assert _buy(db, guild, user, reward, interaction).replayed
    # Then one grant was asked for, in the purchase's transaction, with the purchase's end
    changes = db.fetchall(
        "SELECT action, source, source_ref, expires_at FROM role_changes WHERE guild_id = %s", (guild,)
    )
    assert [(a, s, r) for a, s, r, _ in changes] == [("add", "purchase", str(bought.id))]
    assert changes[0][3] == bought.expires_at
    assert bought.expires_at - bought.created_at == timedelta(days=30)
    assert db.run(store.get_purchase, guild, bought.id).role_state == "pending"
    # and the worker makes it once, however often it runs
    assert roles.apply_due(db, discord, settings=fast).done == 1
    assert roles.apply_due(db, discord, settings=fast).claimed == 0
    assert state.member_roles(str(guild), str(user)) == [role]
    assert len(standin.sent("PUT", MEMBER_ROLE)) == 1
    assert "Bought « " in state.audit_log[-1]["reason"]
    assert db.run(store.get_purchase, guild, bought.id).role_state == "done"


@pytest.mark.parametrize(
    ("setup", "code"),
    [("above_the_bot", 50013), ("unknown_role", 10011), ("member_left", 10007)],
)
def test_a_grant_discord_refuses_is_refunded_linked_dmed_and_flagged(
    db: Database, discord: DiscordClient, fast, setup: str, code: int
) -> None:
    # Given a member who bought a role the bot cannot grant
    guild = new_guild(db)
    user = _member_with(db, guild, 250)
    role = {"above_the_bot": lambda: state.add_role(str(guild), "Owner", position=11),
            "unknown_role": lambda: 999_999_999_999,
            "member_left": lambda: state.add_role(str(guild), "Fine")}[setup]()  # fmt: skip
    if setup == "member_left":
        state.leave(str(guild), str(user))
    reward = _role_reward(db, guild, role, price=100, stock=1)
    bought = _buy(db, guild, user, reward).purchase
    assert db.run(ledger.balance, guild, user) == 150
    # When the role worker tries the grant and Discord refuses it
    report = roles.apply_due(db, discord, settings=fast)
    assert report.refused == 1
    # Then the purchase is refunded by an entry linked to it, flagged, and the stock is back
    after = db.run(store.get_purchase, guild, bought.id)
    assert after.state == "refunded" and str(code) in (after.flag or "")
    refund = db.fetchone(
        "SELECT kind, source, amount, reverts_id, actor_name FROM transactions WHERE id = %s",
        (after.refund_entry_id,),
    )
    assert refund == ("purchase_refund", "purchase_refund", 100, bought.entry_id, "store")
    assert db.run(ledger.balance, guild, user) == 250
    assert db.run(store.get_reward, guild, reward.id).stock == 1
    # and the member gets one DM saying so; the admins see the flag
    dms = db.fetchall(
        "SELECT dedupe_key, content FROM direct_messages WHERE guild_id = %s AND reason = 'store'", (guild,)
    )
    assert [d[0] for d in dms] == [f"purchase:{bought.id}:refund"] and "refunded" in dms[0][1]
    flagged = db.run(store.list_redemptions, guild, flagged=True).rows
    assert [p.id for p in flagged] == [bought.id]
    assert len(db.run(roles.unseen_refusals, guild)) == 1
    audit = db.fetchall(
        "SELECT action, actor_name FROM admin_audit WHERE target = %s", (f"purchase:{bought.id}",)
    )
    assert audit == [("redemption.refund", "store")]
    # A second run changes nothing (the change is finished; the refund happened once)
    assert roles.apply_due(db, discord, settings=fast).claimed == 0
    assert db.fetchone("SELECT count(*) FROM transactions WHERE reverts_id = %s", (bought.entry_id,))[0] == 1
    with db.connection() as conn:
        assert violations(conn, guild) == []


def test_an_admin_refund_of_a_granted_role_takes_it_back(db: Database, discord: DiscordClient, fast) -> None:
    guild = new_guild(db)
    user = _member_with(db, guild, 300)
    role = state.add_role(str(guild), "Patron", position=2)
    reward = _role_reward(db, guild, role)
    bought = _buy(db, guild, user, reward).purchase
    roles.apply_due(db, discord, settings=fast)
    assert state.member_roles(str(guild), str(user)) == [role]
    # When an admin refunds it
    db.run(
        store.refund, guild_id=guild, purchase_id=bought.id, reason="Mistake", actor_id=5, actor_name="adm"
    )
    roles.apply_due(db, discord, settings=fast)
    # Then the role is gone again and the points are back
    assert state.member_roles(str(guild), str(user)) == []
    assert db.run(ledger.balance, guild, user) == 300
    assert [e.method for e in standin.sent(route=MEMBER_ROLE)] == ["PUT", "DELETE"]


def test_a_redelivered_code_dm_task_sends_one_dm(db: Database, discord: DiscordClient, fast) -> None:
    guild = new_guild(db)
    user = _member_with(db, guild, 300)
    reward = db.run(store.create_reward, guild_id=guild, actor_id=1, actor_name="admin", kind="code",
                    name="Key", price=10)  # fmt: skip
    db.run(
        store.upload_codes, guild_id=guild, reward_id=reward.id, data="KEY-ONE", actor_id=1, actor_name="a"
    )
    _buy(db, guild, user, reward)
    # When the delivery task runs twice (SQS delivers at least once)
    outbox.deliver_due(db, discord, settings=fast)
    outbox.deliver_due(db, discord, settings=fast)
    # Then the member has exactly one DM with the code
    sent = messages_to(user)
    assert len(sent) == 1 and "KEY-ONE" in sent[0]["content"]


def test_a_purchase_and_its_refund_cross_balance_thresholds(db: Database, settings) -> None:
    from pointsbot.community import points, role_rewards

    # Given a threshold "1,000 points -> role 555, removed below" that a member has reached
    guild = new_guild(db)
    user = new_member(db, guild)
    made = db.run(role_rewards.create_threshold, guild, points=1000, role_id=555, on_drop="remove", actor_id=1,
                  actor_name="test")  # fmt: skip
    db.run(points.award, guild_id=guild, user_id=user, amount=1200, reason="up", actor_id=1, source="admin_site",
           idempotency_key=f"up-{user}", settings=settings)  # fmt: skip
    reward = db.run(store.create_reward, guild_id=guild, actor_id=1, actor_name="admin", kind="item",
                    name="Big item", price=500)  # fmt: skip
    # When a purchase takes the balance below it, and an admin then refunds the purchase
    bought = _buy(db, guild, user, reward).purchase
    db.run(store.refund, guild_id=guild, purchase_id=bought.id, reason="", actor_id=1, actor_name="adm")
    # Then the role was taken away by the purchase and given back by the refund
    actions = db.fetchall(
        "SELECT action FROM role_changes WHERE guild_id = %s AND source = 'threshold' AND source_ref LIKE %s "
        "ORDER BY id",
        (guild, f"{made.id}:%"),
    )
    assert [a for (a,) in actions] == ["add", "remove", "add"]
