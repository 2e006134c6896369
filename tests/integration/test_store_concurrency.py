"""The reward store under concurrent buyers on a real Postgres, on threads and in separate
processes: stock is never oversold, a per-member limit holds, a code goes to one purchase
only, a redelivered purchase is one purchase, and balance == sum(entries) for everyone."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter

import pytest
from _command_helpers import use_queue
from _ledger_checks import violations
from _store_buyers import buy_all, buyer_process, outcome_of

from pointsbot import commands, ledger
from pointsbot.community import store
from pointsbot.discord import interactions
from pointsbot.platform.db import Database
from pointsbot_local.simulate import component_payload, snowflake

pytestmark = [pytest.mark.integration, pytest.mark.through_pgbouncer]

BUYERS = 1000
STOCK = 10
PROCESSES = 8
_guilds = iter(range(930_000_000_000_000_001, 930_000_000_000_001_000))


@pytest.fixture(autouse=True)
def queue():
    yield from use_queue()


@pytest.fixture(scope="module")
def buyers_db(database_url, prepare_threshold):
    """A small pool, as the machine's Postgres is shared: 1,000 buyers queue for 10 connections."""
    database = Database(database_url, pooled=True, pool_max=10, connect_timeout_s=60, statement_timeout_ms=60_000,
                        prepare_threshold=prepare_threshold)  # fmt: skip
    yield database
    database.close()


def _members(db, guild: int, count: int, balance: int) -> list[int]:
    """`count` members of a new guild with `balance` each, paid by the ledger in one transaction."""
    users = [840_000_000_000_000_000 + guild % 1000 * 10_000 + i for i in range(count)]

    def pay(conn):
        ledger.guilds.ensure_guild(conn, guild)
        for user in users:
            ledger.award(conn, guild_id=guild, user_id=user, amount=balance, reason="seed", actor_id=None,
                         actor_name="system", source="system", idempotency_key=f"seed-{user}", silent=True)  # fmt: skip

    db.run(pay)
    return users


def _reward(db, guild: int, **values):
    values.setdefault("name", f"Limited {snowflake()}")
    values.setdefault("price", 10)
    return db.run(store.create_reward, guild_id=guild, actor_id=1, actor_name="admin", **values)


def _sold(db, guild: int, reward_id: int) -> list[tuple]:
    with db.connection() as conn:
        return conn.execute(
            "SELECT p.user_id, p.entry_id, t.amount, t.kind FROM purchases p JOIN transactions t ON t.id = p.entry_id "
            "WHERE p.guild_id = %s AND p.reward_id = %s",
            (guild, reward_id),
        ).fetchall()


def _check_ledger(db, guild: int) -> None:
    with db.connection() as conn:
        assert violations(conn, guild) == []


def _click_all(db, settings, guild: int, clicks: list[tuple[int, str]]) -> Counter[str]:
    """Each (user, custom id) clicked at once on a thread of its own, through the commands."""
    together = threading.Barrier(len(clicks))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def click(user: int, custom_id: str) -> None:
        raw = component_payload(custom_id, user_id=str(user), guild_id=str(guild))
        together.wait()
        try:
            outcome = commands.execute(db, interactions.parse(raw), settings)
            text = outcome.reply.content
            word = "sold" if outcome.status == "ok" else "sold_out" if "sold out" in text else (
                "purchase_limit" if "as often as one member may" in text else f"refused: {text}")  # fmt: skip
        except Exception as exc:
            word = outcome_of(exc)
        with lock:
            outcomes[word] += 1

    threads = [threading.Thread(target=click, args=c) for c in clicks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def _in_processes(database_url, prepare_threshold, guild, reward_id, buyers) -> Counter[str]:
    """The buyers split over PROCESSES separate processes (spawned), started together."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(PROCESSES), context.Queue()
    shares = [buyers[i::PROCESSES] for i in range(PROCESSES)]
    processes = [
        context.Process(
            target=buyer_process,
            args=(database_url, guild, reward_id, share, prepare_threshold, start, results),
        )
        for share in shares
    ]
    for process in processes:
        process.start()
    outcomes: Counter[str] = Counter()
    for _ in processes:
        outcomes.update(results.get(timeout=600))
    for process in processes:
        process.join(timeout=60)
    return outcomes


# -- 1,000 buyers, 10 in stock --------------------------------------------------------------------
def test_a_thousand_buyers_on_threads_for_ten_in_stock(buyers_db, settings):
    # Given 1,000 members with 100 points each and a reward with 10 in stock
    guild = next(_guilds)
    users = _members(buyers_db, guild, BUYERS, 100)
    reward = _reward(buyers_db, guild, kind="item", stock=STOCK)
    # When all of them click its Buy button at once
    outcomes = _click_all(buyers_db, settings, guild, [(u, f"buy:{reward.id}") for u in users])
    # Then exactly 10 bought it and 990 were told it is sold out
    assert outcomes == Counter({"sold": STOCK, "sold_out": BUYERS - STOCK})
    sold = _sold(buyers_db, guild, reward.id)
    assert len(sold) == STOCK and len({s[0] for s in sold}) == STOCK
    assert all(amount == -10 and kind == "purchase" for _u, _e, amount, kind in sold)
    assert buyers_db.run(store.get_reward, guild, reward.id).stock == 0
    # and balance == sum(entries) for everyone
    _check_ledger(buyers_db, guild)
    with buyers_db.connection() as conn:
        spent = conn.execute(
            "SELECT count(*) FROM points WHERE guild_id = %s AND balance = 90", (guild,)
        ).fetchone()
        assert spent[0] == STOCK


def test_a_thousand_buyers_in_separate_processes_for_ten_in_stock(database_url, buyers_db, prepare_threshold):
    guild = next(_guilds)
    users = _members(buyers_db, guild, BUYERS, 100)
    reward = _reward(buyers_db, guild, kind="item", stock=STOCK)
    outcomes = _in_processes(database_url, prepare_threshold, guild, reward.id,
                             [(u, int(snowflake())) for u in users])  # fmt: skip
    assert outcomes == Counter({"sold": STOCK, "sold_out": BUYERS - STOCK})
    assert len(_sold(buyers_db, guild, reward.id)) == STOCK
    assert buyers_db.run(store.get_reward, guild, reward.id).stock == 0
    _check_ledger(buyers_db, guild)


# -- one member, limit 1, twenty clicks at once ------------------------------------------------
def test_one_member_clicking_buy_twenty_times_at_once_buys_once(buyers_db, settings):
    guild = next(_guilds)
    (user,) = _members(buyers_db, guild, 1, 1000)
    reward = _reward(buyers_db, guild, kind="item", per_member_limit=1)
    outcomes = _click_all(buyers_db, settings, guild, [(user, f"buy:{reward.id}")] * 20)
    assert outcomes == Counter({"sold": 1, "purchase_limit": 19})
    assert len(_sold(buyers_db, guild, reward.id)) == 1
    assert buyers_db.run(ledger.balance, guild, user) == 990
    _check_ledger(buyers_db, guild)


def test_one_member_buying_twenty_times_at_once_from_separate_processes_buys_once(
    database_url, buyers_db, prepare_threshold
):
    guild = next(_guilds)
    (user,) = _members(buyers_db, guild, 1, 1000)
    reward = _reward(buyers_db, guild, kind="item", per_member_limit=1)
    buyers = [(user, int(snowflake())) for _ in range(20)]
    outcomes = _in_processes(database_url, prepare_threshold, guild, reward.id, buyers)
    assert outcomes == Counter({"sold": 1, "purchase_limit": 19})
    assert buyers_db.run(ledger.balance, guild, user) == 990
    _check_ledger(buyers_db, guild)


# -- redelivery and codes ----------------------------------------------------------------------
def test_the_same_purchase_delivered_ten_times_at_once_is_one_purchase(
    database_url, buyers_db, prepare_threshold
):
    guild = next(_guilds)
    (user,) = _members(buyers_db, guild, 1, 1000)
    reward = _reward(buyers_db, guild, kind="code")
    buyers_db.run(store.upload_codes, guild_id=guild, reward_id=reward.id, data="ONE\nTWO\nTHREE", actor_id=1,
                  actor_name="admin")  # fmt: skip
    interaction = int(snowflake())
    outcomes = buy_all(database_url, guild, reward.id, [(user, interaction)] * 10,
                       prepare_threshold=prepare_threshold)  # fmt: skip
    assert outcomes == Counter({"sold": 10})  # every delivery is told the one purchase
    assert len(_sold(buyers_db, guild, reward.id)) == 1
    assert buyers_db.run(ledger.balance, guild, user) == 990
    with buyers_db.connection() as conn:
        dms = conn.execute("SELECT count(*) FROM direct_messages WHERE guild_id = %s AND reason = 'store'",
                           (guild,)).fetchone()[0]  # fmt: skip
        assert dms == 1
        assert conn.execute("SELECT count(*) FROM reward_codes WHERE reward_id = %s AND purchase_id IS NOT NULL",
                            (reward.id,)).fetchone()[0] == 1  # fmt: skip
    _check_ledger(buyers_db, guild)


def test_codes_are_never_handed_out_twice_under_concurrency(database_url, buyers_db, prepare_threshold):
    # Given 300 buyers and a code reward with 40 codes
    guild = next(_guilds)
    users = _members(buyers_db, guild, 300, 100)
    reward = _reward(buyers_db, guild, kind="code")
    codes = [f"CODE-{i:03d}" for i in range(40)]
    buyers_db.run(store.upload_codes, guild_id=guild, reward_id=reward.id, data="\n".join(codes), actor_id=1,
                  actor_name="admin")  # fmt: skip
    # When they all buy at once, in separate processes
    outcomes = _in_processes(database_url, prepare_threshold, guild, reward.id,
                             [(u, int(snowflake())) for u in users])  # fmt: skip
    # Then 40 bought, each got a different code, with one DM each
    assert outcomes == Counter({"sold": 40, "sold_out": 260})
    with buyers_db.connection() as conn:
        handed = conn.execute(
            "SELECT c.code, c.purchase_id, p.user_id FROM reward_codes c JOIN purchases p ON p.id = c.purchase_id "
            "WHERE c.reward_id = %s",
            (reward.id,),
        ).fetchall()
        assert sorted(h[0] for h in handed) == codes
        assert len({h[1] for h in handed}) == 40 and len({h[2] for h in handed}) == 40
        texts = conn.execute("SELECT user_id, content FROM direct_messages WHERE guild_id = %s AND reason = 'store'",
                             (guild,)).fetchall()  # fmt: skip
        assert len(texts) == 40
        by_user = {h[2]: h[0] for h in handed}
        assert all(by_user[user] in content for user, content in texts)
    assert buyers_db.run(store.get_reward, guild, reward.id).stock == 0
    _check_ledger(buyers_db, guild)
