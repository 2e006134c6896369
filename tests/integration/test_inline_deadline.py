"""A hung database (a real Postgres behind a proxy that stops passing bytes, as a server whose
processes got SIGSTOP) must not hold an interaction past Discord's 3 seconds: the inline attempt
has a deadline for the whole command, after which it defers, and nothing is half-written.

Timing is measured in bench/bench_hung_db.py. Here a request that does not come back within
HANG_S is a hang (without the deadline it waits for as long as the database is frozen).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _command_helpers import ADMIN, new_member, payload, use_queue
from nacl.signing import SigningKey

from pointsbot.commands import endpoint
from pointsbot.commands.deferred import complete_interaction
from pointsbot.discord.interactions import parse
from pointsbot.discord.rest import DiscordClient
from pointsbot.platform import runtime
from pointsbot.platform.config import reset_settings
from pointsbot.platform.db import Database, DatabaseUnavailable, DeadlineExceeded, run_within
from pointsbot_local import discord_standin_rest, handlers
from pointsbot_local.apigw import LambdaContext, to_event
from pointsbot_local.freezable_proxy import FreezableProxy
from pointsbot_local.keys import KeyPair
from pointsbot_local.simulate import message_text

pytestmark = pytest.mark.integration

HANG_S = 10  # far beyond any deadline: only a request that waits for the database takes this long


@pytest.fixture(scope="module")
def proxy(database_url: str) -> Iterator[FreezableProxy]:
    with FreezableProxy.for_dsn(database_url) as running:
        yield running


@pytest.fixture
def frozen(proxy: FreezableProxy) -> Iterator[FreezableProxy]:
    """The proxy, thawed again after the test whatever happens."""
    yield proxy
    proxy.thaw()


@pytest.fixture
def task_queue():
    yield from use_queue()


@pytest.fixture
def client(standin_url: str) -> Iterator[DiscordClient]:
    discord_standin_rest.reset()
    yield DiscordClient(standin_url, "bot-token", max_retry_wait=2)
    discord_standin_rest.reset()


@pytest.fixture
def lambda_env(proxy: FreezableProxy, database_url: str, monkeypatch) -> Iterator[KeyPair]:
    """The functions' environment, with the database behind the proxy; the key Discord signs with."""
    key = SigningKey.generate()
    pair = KeyPair(key.encode().hex(), key.verify_key.encode().hex())
    monkeypatch.setenv("DISCORD_PUBLIC_KEY", pair.public_hex)
    monkeypatch.setenv("DATABASE_URL", proxy.dsn(database_url))
    reset_settings()
    endpoint.reset()
    runtime.reset()
    yield pair
    endpoint.reset()
    runtime.reset()
    reset_settings()


def _within_hang_bound(call: Callable[[], Any]) -> Any:
    """call() on a thread; fails the test if it has not returned after HANG_S seconds."""
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.update(result=call()), daemon=True)
    thread.start()
    thread.join(HANG_S)
    assert not thread.is_alive(), f"still waiting for the frozen database after {HANG_S} s"
    return box["result"]


def _signed_event(keys: KeyPair, raw: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(raw).encode()
    stamp = str(int(time.time()))
    headers = {"content-type": "application/json", "x-signature-ed25519": keys.sign(stamp, body),
               "x-signature-timestamp": stamp}  # fmt: skip
    return to_event("POST", "/interactions", headers, body)


def _add(target: str, amount: int = 5) -> dict[str, Any]:
    return payload("points add", {"member": target, "amount": amount, "reason": "while hung"}, user_id=ADMIN,
                   admin=True)  # fmt: skip


def _entries(sql, member: str) -> list[tuple]:
    return sql(
        "SELECT count(*), coalesce(sum(amount), 0) FROM transactions WHERE user_id = %s", (int(member),)
    )


def _wait_until_gone(sql, backend_pid: int) -> None:
    """Wait until the server has ended the cut connection's session (it read end-of-file)."""
    for _ in range(200):
        if not sql("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (backend_pid,)):
            return
        time.sleep(0.05)
    raise AssertionError(f"backend {backend_pid} still there")


# -- the mechanism -------------------------------------------------------------------------
def test_a_statement_on_a_hung_database_is_cut_at_the_deadline(proxy, frozen, database_url):
    # Given a connection that is open and warm
    database = Database(proxy.dsn(database_url))
    try:
        assert database.fetchone("SELECT 1") == (1,)
        # When the database hangs under a statement
        frozen.freeze()

        def attempt():
            with pytest.raises(DeadlineExceeded):
                run_within(0.5, database.fetchone, "SELECT 2")

        _within_hang_bound(attempt)
        # Then, once it is back, the same Database works on a new connection
        frozen.thaw()
        assert database.fetchone("SELECT 3") == (3,)
    finally:
        frozen.thaw()  # first: closing waits for a statement still running on the connection
        database.close()


def test_a_connect_to_a_hung_database_is_given_up_at_the_deadline(proxy, frozen, database_url):
    database = Database(proxy.dsn(database_url), connect_timeout_s=2)
    try:
        frozen.freeze()  # no connection yet: the connect itself hangs (libpq waits at least 2 s)

        def attempt():
            with pytest.raises(DeadlineExceeded):
                run_within(0.5, database.fetchone, "SELECT 1")

        _within_hang_bound(attempt)
        frozen.thaw()
        assert database.fetchone("SELECT 1") == (1,)
    finally:
        frozen.thaw()  # first: closing waits for a statement still running on the connection
        database.close()


def test_a_command_cut_mid_transaction_writes_nothing_and_the_worker_applies_it_once(
    proxy, frozen, database_url, settings, sql, task_queue, client, monkeypatch
):
    from pointsbot.commands.dispatch import _REGISTRY, CommandSpec, _load_commands

    # Given a command whose ledger change has been sent when the database hangs
    _load_commands()
    spec = _REGISTRY["points add"]
    backend: list[int] = []

    def add_then_hang(ctx, conn):
        reply = spec.fn(ctx, conn)  # the claim, the entry and the balance are sent, not committed
        backend.append(conn.info.backend_pid)
        frozen.freeze()
        return reply

    monkeypatch.setitem(_REGISTRY, "points add", CommandSpec(spec.path, add_then_hang, spec.writes))
    target = new_member()
    raw = _add(target, amount=7)
    database = Database(proxy.dsn(database_url))
    try:
        # When it runs inline: the deadline cuts it and the interaction is deferred
        answer = _within_hang_bound(lambda: endpoint.run_command(parse(raw), settings, database))
        assert (answer.outcome, answer.body) == ("deferred", {"type": 5, "data": {"flags": 64}})
        assert [t.kind for t in task_queue.sent] == ["interaction"]
        # Then, when the database is back, the cut transaction has been rolled back, not committed
        frozen.thaw()
        _wait_until_gone(sql, backend[0])
        assert _entries(sql, target) == [(0, 0)]
        assert sql(
            "SELECT count(*) FROM interaction_replies WHERE interaction_id = %s", (int(raw["id"]),)
        ) == [(0,)]
    finally:
        frozen.thaw()  # first: closing waits for a statement still running on the connection
        database.close()
    # And the worker's run of the deferred task (delivered twice, as SQS may) applies it once
    monkeypatch.setitem(_REGISTRY, "points add", spec)
    direct = Database(database_url)
    try:
        for _ in range(2):
            complete_interaction(task_queue.sent[0], database=direct, client=client)
    finally:
        direct.close()
    assert "Added **7 points**" in message_text(discord_standin_rest.state.original(raw["token"]))
    assert _entries(sql, target) == [(1, 7)]


# -- the Lambda shape: functions/interactions/app.py and functions/health/app.py ----------------
@pytest.mark.parametrize("connection", ["warm", "new"])
def test_the_interactions_function_defers_while_the_database_hangs(
    lambda_env, frozen, connection, sql, task_queue, client, database_url
):
    handler = handlers.load("interactions")
    if connection == "warm":  # a container that answered before: its statements hang
        balance = handler(
            _signed_event(lambda_env, payload("balance", user_id=new_member())), LambdaContext("i")
        )
        assert json.loads(balance["body"])["type"] == 4
    # Given a database that hangs
    frozen.freeze()
    target = new_member()
    raw = _add(target)
    # When Discord sends a command
    result = _within_hang_bound(
        lambda: handler(_signed_event(lambda_env, raw), LambdaContext("interactions"))
    )
    # Then the answer is "thinking..." (privately), and the interaction waits in the queue
    assert result["statusCode"] == 200 and json.loads(result["body"]) == {"type": 5, "data": {"flags": 64}}
    assert [t.payload["interaction"]["id"] for t in task_queue.sent if t.kind == "interaction"] == [raw["id"]]
    # And once the database is back, the worker applies it once
    frozen.thaw()
    direct = Database(database_url)
    try:
        complete_interaction(task_queue.sent[-1], database=direct, client=client)
    finally:
        direct.close()
    assert _entries(sql, target) == [(1, 5)]
    assert "Added **5 points**" in message_text(discord_standin_rest.state.original(raw["token"]))


def test_a_button_is_acknowledged_while_the_database_hangs(lambda_env, frozen, task_queue):
    from pointsbot_local.simulate import component_payload

    handler = handlers.load("interactions")
    handler(
        _signed_event(lambda_env, payload("balance", user_id=new_member())), LambdaContext("interactions")
    )
    frozen.freeze()
    raw = component_payload("leaderboard:2:next", guild_id=payload("balance")["guild_id"])
    result = _within_hang_bound(
        lambda: handler(_signed_event(lambda_env, raw), LambdaContext("interactions"))
    )
    assert json.loads(result["body"]) == {"type": 6}  # a deferred update of the message
    assert [t.kind for t in task_queue.sent] == ["interaction"]


def test_deep_health_says_503_while_the_database_hangs(lambda_env, frozen):
    handler = handlers.load("health")
    event = to_event("GET", "/health/deep", {}, b"")
    assert handler(event, LambdaContext("health"))["statusCode"] == 200  # warm, and healthy
    frozen.freeze()
    result = _within_hang_bound(lambda: handler(event, LambdaContext("health")))
    assert result["statusCode"] == 503
    assert json.loads(result["body"])["database"] == "unreachable"
    frozen.thaw()
    assert _within_hang_bound(lambda: handler(event, LambdaContext("health")))["statusCode"] == 200


def test_an_unreachable_database_is_still_deferred_at_once(lambda_env, monkeypatch, task_queue):
    # Connection refused is no hang: deferred straight away, as before the deadline existed.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{port}/none")
    reset_settings()
    endpoint.reset()
    answer = endpoint.run_command(parse(_add(new_member())), endpoint.get_settings(),
                                  endpoint.inline_database(endpoint.get_settings()))  # fmt: skip
    assert answer.outcome == "deferred"
    with pytest.raises(DatabaseUnavailable):
        run_within(1, Database(f"postgresql://postgres@127.0.0.1:{port}/none").fetchone, "SELECT 1")
