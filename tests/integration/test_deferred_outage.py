"""Deferred writes through a database outage, end to end on the local runtime's parts: the
in-process queue feeding functions/worker/app.py, a database behind a proxy the test cuts
(never the shared Postgres), and @original edits recorded by the Discord stand-in.

Every deferred interaction must end in exactly one of: done once (one ledger entry under its
interaction id, its answer shown) or a final "try again" edit (nothing written).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from _command_helpers import ADMIN, GUILD_A, payload
from _db_proxy import DatabaseProxy, proxy_for

from pointsbot.commands import deferred
from pointsbot.delivery import tasks
from pointsbot.discord.interactions import parse
from pointsbot.discord.rest import set_client
from pointsbot.platform import config, runtime
from pointsbot.platform.db import Database, DatabaseUnavailable
from pointsbot_local import discord_standin_rest, handlers
from pointsbot_local.queue import InProcessTaskQueue
from pointsbot_local.simulate import message_text, snowflake

pytestmark = pytest.mark.integration

# A hang guard only: the backlog normally ends in well under a minute.
DRAIN_TIMEOUT_S = 300


@dataclass
class Outage:
    proxy: DatabaseProxy
    queue: InProcessTaskQueue
    database: Database


@pytest.fixture
def outage(database_url: str, standin_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Outage]:
    """The worker's database goes through a proxy the test can cut; tasks go through the local
    queue to the real worker handler; edits go to the stand-in."""
    discord_standin_rest.reset()
    monkeypatch.setenv("DISCORD_API_BASE_URL", standin_url)
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "outage-test-token")
    config.reset_settings()
    set_client(None)
    monkeypatch.setattr(deferred, "outage", deferred._Outage())
    with proxy_for(database_url) as proxy:
        database = Database(proxy.dsn, pooled=True, pool_max=10, connect_timeout_s=2)
        monkeypatch.setattr(runtime, "_database", database)
        queue = InProcessTaskQueue(handlers.load("worker"))
        tasks.set_task_queue(queue)
        try:
            yield Outage(proxy, queue, database)
        finally:
            queue.stop()
            tasks.set_task_queue(None)
            database.close()
            set_client(None)
            config.reset_settings()
            discord_standin_rest.reset()


def backlog(count: int, members: list[str]) -> list[dict]:
    """`count` admin awards (deferred writes) spread over `members`, amounts 1..7; silent, so the
    queue holds only the deferred interactions (DM delivery has its own retries and tests)."""
    return [
        payload(
            "points add",
            {"member": members[n % len(members)], "amount": 1 + n % 7, "reason": "outage", "silent": True},
            user_id=ADMIN,
            admin=True,
            interaction_id=snowflake(),
        )
        for n in range(count)
    ]


def edits_of(token: str) -> list[str]:
    with discord_standin_rest.standin.lock:
        return [
            message_text(e["body"]) for e in discord_standin_rest.state.original_edits if e["token"] == token
        ]


def endings(sql: Callable, raws: list[dict]) -> dict[str, int]:
    """How each interaction ended; fails on any that ended otherwise, or in two ways."""
    entries = dict(
        sql(
            "SELECT o.idempotency_key, count(t.id) FROM operations o JOIN transactions t ON t.operation_id = o.id "
            "WHERE o.guild_id = %s AND o.idempotency_key = ANY(%s) GROUP BY o.idempotency_key",
            (int(GUILD_A), [raw["id"] for raw in raws]),
        )
    )
    counted = {"done": 0, "try again": 0}
    for raw in raws:
        shown = edits_of(raw["token"])
        written = entries.get(raw["id"], 0)
        if written:
            # Done once: one entry, and the answer the command gave (shown, maybe more than once,
            # never followed by anything else).
            assert written == 1, raw["id"]
            assert shown and set(shown) == {shown[0]} and "\nAdded **" in shown[0], (raw["id"], shown)
            counted["done"] += 1
        else:
            assert shown == [deferred.TRY_AGAIN], (raw["id"], shown)
            counted["try again"] += 1
    return counted


def assert_ledger_adds_up(sql: Callable) -> None:
    assert (
        sql(
            "SELECT p.user_id, p.balance, coalesce(sum(t.amount), 0) FROM points p "
            "LEFT JOIN transactions t ON t.guild_id = p.guild_id AND t.user_id = p.user_id "
            "WHERE p.guild_id = %s GROUP BY p.user_id, p.balance HAVING p.balance <> coalesce(sum(t.amount), 0)",
            (int(GUILD_A),),
        )
        == []
    )


def wait_until(condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_a_backlog_cut_off_from_the_database_is_done_once_after_it_comes_back(outage: Outage, sql) -> None:
    members = [str(snowflake()) for _ in range(20)]
    raws = backlog(400, members)
    for raw in raws:
        deferred.enqueue(parse(raw))
    # The database goes away while the backlog is being worked through (transactions in
    # flight are cut), and comes back a few seconds later.
    wait_until(lambda: sql("SELECT count(*) FROM operations")[0][0] >= 40)
    outage.proxy.cut()
    time.sleep(3)
    outage.proxy.restore()

    assert outage.queue.drain(DRAIN_TIMEOUT_S), f"{outage.queue.pending} tasks never ended"
    # Everything came back well inside the retry schedule (about a minute): all of it is done.
    assert endings(sql, raws) == {"done": 400, "try again": 0}
    assert outage.queue.dead_letters == []
    assert_ledger_adds_up(sql)


def test_a_backlog_that_outlives_its_retries_ends_in_try_again_and_nothing_written(
    outage: Outage, sql, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A short retry schedule stands in for an outage longer than the real one (about a minute).
    monkeypatch.setattr(deferred, "RETRY_DELAYS_S", (1, 1, 1))
    members = [str(snowflake()) for _ in range(10)]
    raws = backlog(300, members)
    outage.proxy.cut()
    for raw in raws:
        deferred.enqueue(parse(raw))
    assert outage.queue.drain(DRAIN_TIMEOUT_S), f"{outage.queue.pending} tasks never ended"
    outage.proxy.restore()

    assert endings(sql, raws) == {"done": 0, "try again": 300}
    # Nothing is left to run later and change a balance the member was told was not changed.
    assert outage.queue.pending == 0 and outage.queue.dead_letters == []
    assert sql("SELECT count(*) FROM transactions WHERE user_id = ANY(%s)", ([int(m) for m in members],)) == [
        (0,)
    ]


def test_a_pool_connects_again_as_soon_as_the_database_is_back(database_url: str) -> None:
    # psycopg_pool's own reconnection backs off for up to 5 minutes; after a long enough
    # outage its next try came long after the database was back.
    with proxy_for(database_url) as proxy:
        database = Database(proxy.dsn, pooled=True, pool_max=2, connect_timeout_s=1)
        try:
            assert database.fetchone("SELECT 1") == (1,)
            proxy.cut()
            down_until = time.monotonic() + 18
            while time.monotonic() < down_until:
                with pytest.raises(DatabaseUnavailable):
                    database.fetchone("SELECT 1")
            proxy.restore()
            assert database.fetchone("SELECT 1") == (1,)
        finally:
            database.close()
