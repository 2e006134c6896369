"""A hung database at the HTTP edge: the local runtime (what `make run` starts, in this process)
on a real Postgres behind a proxy that can stop passing bytes, as a server stopped with SIGSTOP.

Signed requests over HTTP must come back while the database hangs (a deferral, a 503 from the
deep health check) and the deferred work completes exactly once after it is back. The client
gives up after HANG_S, far beyond any deadline: without one, a request waits for as long as the
database is frozen. Answer times are measured in bench/bench_hung_db.py.
"""

from __future__ import annotations

import io
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from pointsbot.commands import endpoint
from pointsbot.delivery import tasks
from pointsbot.discord import rest as discord_rest
from pointsbot.platform import runtime
from pointsbot.platform.config import reset_settings
from pointsbot_local import keys
from pointsbot_local.freezable_proxy import FreezableProxy
from pointsbot_local.keys import KeyPair
from pointsbot_local.simulate import command_payload, follow, message_text, post, signed

pytestmark = pytest.mark.e2e

HANG_S = 10
GUILD = "941000000000000001"
ADMIN = "841000000000000001"
_ENV = ("DATABASE_URL", "DISCORD_PUBLIC_KEY", "DISCORD_API_BASE_URL", "TASK_QUEUE_URL", "DISCORD_APPLICATION_ID",
        "DISCORD_BOT_TOKEN")  # fmt: skip


@dataclass
class Stack:
    url: str
    keys: KeyPair
    dsn: str
    proxy: FreezableProxy

    def send(self, raw: dict[str, Any]) -> tuple[int, Any]:
        body, headers = signed(raw, self.keys)
        return post(self.url + "/interactions", body, headers, timeout=HANG_S)

    def deep_health(self) -> int:
        try:
            with urllib.request.urlopen(self.url + "/health/deep", timeout=HANG_S) as answer:  # noqa: S310
                return answer.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def sql(self, statement: str, params: Any = None) -> list[tuple]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(statement, params).fetchall()


@pytest.fixture(scope="module")
def stack(make_database, tmp_path_factory) -> Iterator[Stack]:
    from pointsbot_local.__main__ import start

    saved = {name: os.environ.get(name) for name in _ENV}
    for name in _ENV:
        os.environ.pop(name, None)
    dsn = make_database()
    proxy = FreezableProxy.for_dsn(dsn)
    os.environ["DATABASE_URL"] = proxy.dsn(dsn)  # everything the runtime does goes through it
    os.environ["DISCORD_BOT_TOKEN"] = "local-bot-token"
    local_dir = tmp_path_factory.mktemp("local")
    with redirect_stdout(io.StringIO()):
        server, _chosen = start(port=0, local_dir=local_dir)
    queue = tasks.get_task_queue()
    try:
        yield Stack(server.url, keys.load_or_create(local_dir / "discord-keys.json"), dsn, proxy)
    finally:
        proxy.thaw()
        server.stop()
        getattr(queue, "stop", lambda: None)()
        tasks.set_task_queue(None)
        endpoint.reset()
        runtime.reset()
        discord_rest.set_client(None)
        proxy.close()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_settings()


@pytest.fixture
def frozen(stack: Stack) -> Iterator[FreezableProxy]:
    yield stack.proxy
    stack.proxy.thaw()


def _add(member: str, amount: int) -> dict[str, Any]:
    return command_payload("points add", {"member": member, "amount": amount, "reason": "hung"}, user_id=ADMIN,
                           admin=True, guild_id=GUILD)  # fmt: skip


def test_commands_are_deferred_while_the_database_hangs_and_applied_once_after(stack, frozen):
    member = "841000000000000010"
    # Given a warm runtime (its connections open) and a database that then hangs
    status, first = stack.send(_add(member, 1))
    assert status == 200 and "Added **1 point" in message_text(first["data"])
    frozen.freeze()
    # When an admin adds points twice: the first waits on the warm connection, the second on a
    # new one (the first was cut)
    raws = [_add(member, 10), _add(member, 100)]
    answers = [stack.send(raw) for raw in raws]
    # Then both are answered "thinking..." (privately), and the health check says 503
    assert answers == [(200, {"type": 5, "data": {"flags": 64}})] * 2
    assert stack.deep_health() == 503
    # And when the database is back, the worker finishes each one exactly once
    frozen.thaw()
    finals = [
        follow(stack.url + "/discord-api/v10", raw["application_id"], raw["token"], timeout=60)
        for raw in raws
    ]
    assert "Added **10 points**" in message_text(finals[0]) and "Added **100 points**" in message_text(
        finals[1]
    )
    assert stack.sql("SELECT count(*), sum(amount) FROM transactions WHERE user_id = %s", (int(member),)) == [
        (3, 111)
    ]
    assert stack.sql("SELECT balance FROM points WHERE user_id = %s", (int(member),)) == [(111,)]
    # A redelivery by Discord gets the same answer and changes nothing
    assert message_text(stack.send(raws[0])[1]["data"]) == message_text(finals[0])
    assert stack.deep_health() == 200
