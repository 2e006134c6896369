"""The interactions endpoint end to end: real signed HTTP requests to the local runtime (the same
stack `make run` starts, in this process), its in-process worker queue, and the Discord stand-in.
"""

from __future__ import annotations

import io
import json
import os
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pointsbot.commands import endpoint
from pointsbot.commands.deferred import TRY_AGAIN
from pointsbot.commands.menus import AWARD_MESSAGE
from pointsbot.delivery import tasks
from pointsbot.discord import cards
from pointsbot.discord import rest as discord_rest
from pointsbot.platform import runtime
from pointsbot.platform.config import reset_settings
from pointsbot_local import discord_standin_rest, keys, simulate
from pointsbot_local.keys import KeyPair
from pointsbot_local.simulate import (
    command_payload,
    component_payload,
    follow,
    menu_payload,
    message_text,
    modal_payload,
    post,
    signed,
)

pytestmark = [pytest.mark.e2e, pytest.mark.through_pgbouncer]

GUILD = "940000000000000001"
ADMIN = "840000000000000001"
_ENV = ("DATABASE_URL", "DISCORD_PUBLIC_KEY", "DISCORD_API_BASE_URL", "TASK_QUEUE_URL", "DISCORD_APPLICATION_ID",
        "INTERACTION_DB_STATEMENT_TIMEOUT_MS", "DISCORD_BOT_TOKEN", "DB_PREPARE_THRESHOLD")  # fmt: skip


@dataclass
class Stack:
    url: str
    keys: KeyPair
    dsn: str
    local_dir: Path

    @property
    def discord(self) -> str:
        return self.url + "/discord-api/v10"

    def send(self, raw: dict[str, Any] | bytes, **sign: Any) -> tuple[int, Any]:
        body, headers = signed(raw, self.keys, **sign)
        return post(self.url + "/interactions", body, headers)

    def sql(self, statement: str, params: Any = None) -> list[tuple]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []


@pytest.fixture(scope="module")
def stack(make_database, route_to, prepare_threshold, tmp_path_factory) -> Iterator[Stack]:
    from pointsbot_local.__main__ import start

    saved = {name: os.environ.get(name) for name in _ENV}
    for name in _ENV:
        os.environ.pop(name, None)
    dsn = route_to(make_database())  # straight to Postgres, or through PgBouncer
    os.environ["DATABASE_URL"] = dsn
    os.environ["DB_PREPARE_THRESHOLD"] = str(prepare_threshold)
    os.environ["DISCORD_BOT_TOKEN"] = "local-bot-token"
    # The default inline budget (1 s per statement): a locked row turns into a deferral.
    local_dir = tmp_path_factory.mktemp("local")
    with redirect_stdout(io.StringIO()):
        server, _chosen = start(port=0, local_dir=local_dir)
    queue = tasks.get_task_queue()
    try:
        yield Stack(server.url, keys.load_or_create(local_dir / "discord-keys.json"), dsn, local_dir)
    finally:
        server.stop()
        getattr(queue, "stop", lambda: None)()
        tasks.set_task_queue(None)
        endpoint.reset()
        runtime.reset()
        discord_rest.set_client(None)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_settings()


def _content(answer: Any) -> str:
    return message_text(answer["data"])


def _admin(path: str, options: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    return command_payload(path, options, user_id=ADMIN, admin=True, guild_id=GUILD, **kwargs)


def _member(path: str, options: dict[str, Any] | None = None, user: str = "840000000000000002", **kw) -> dict:
    return command_payload(path, options, user_id=user, guild_id=GUILD, **kw)


def test_ping_and_bad_signatures_over_http(stack):
    ping = {
        "id": simulate.snowflake(),
        "application_id": "100000000000000001",
        "type": 1,
        "token": "t",
        "version": 1,
    }
    assert stack.send(ping) == (200, {"type": 1})
    body, headers = signed(ping, stack.keys)
    headers["x-signature-ed25519"] = "00" * 64
    assert post(stack.url + "/interactions", body, headers)[0] == 401
    assert post(stack.url + "/interactions", body, {"content-type": "application/json"})[0] == 401
    body, headers = signed(b"{oops", stack.keys)
    assert post(stack.url + "/interactions", body, headers)[0] == 400


def test_member_and_admin_commands_over_http(stack):
    member = "840000000000000010"
    status, denied = stack.send(
        _member("points add", {"member": member, "amount": 5, "reason": "r"}, user=member)
    )
    assert status == 200 and denied["data"]["flags"] == 64 and "Only admins" in _content(denied)
    status, added = stack.send(_admin("points add", {"member": member, "amount": 25, "reason": "welcome"}))
    assert status == 200 and "Added **25 points**" in _content(added)
    status, balance = stack.send(_member("balance", user=member))
    assert (status, balance["type"], _content(balance)) == (200, 4, "### Balance\nYou have **25 points**.")
    status, board = stack.send(_member("leaderboard", user=member))
    assert status == 200 and [c["type"] for c in board["data"]["components"]] == [
        17,
        1,
    ]  # a card and its buttons
    status, page = stack.send(component_payload("leaderboard:1:next", user_id=member, guild_id=GUILD))
    assert status == 200 and page["type"] == 7 and "Leaderboard" in _content(page)


def test_the_same_interaction_delivered_twice_writes_once(stack):
    member = "840000000000000020"
    raw = _admin("points add", {"member": member, "amount": 7, "reason": "twice"})
    first, second = stack.send(raw), stack.send(raw)
    assert first == second and first[0] == 200
    assert stack.sql("SELECT count(*) FROM transactions WHERE user_id = %s", (int(member),)) == [(1,)]


def test_a_slow_database_defers_and_the_worker_finishes(stack):
    # Given a member whose balance row another transaction holds locked (a slow database)
    member = "840000000000000030"
    stack.send(_admin("points add", {"member": member, "amount": 1, "reason": "first"}))
    locker = psycopg.connect(stack.dsn)
    locker.execute(
        "SELECT 1 FROM points WHERE guild_id = %s AND user_id = %s FOR UPDATE", (int(GUILD), int(member))
    )
    raw = _admin("points add", {"member": member, "amount": 10, "reason": "while slow"})
    try:
        # When an admin adds points: the inline attempt runs out of its budget
        status, answer = stack.send(raw)
        assert (status, answer) == (200, {"type": 5, "data": {"flags": 64}})  # "thinking...", privately
    finally:
        locker.rollback()  # the database recovers
        locker.close()
    # Then the worker finishes the same operation and edits the original answer on "Discord"
    final = follow(stack.discord, raw["application_id"], raw["token"], timeout=20)
    assert (
        final is not None
        and "Added **10 points**" in message_text(final)
        and "Balance now **11 points**" in message_text(final)
    )
    # Discord retrying the interaction gets the same answer, and nothing is applied twice
    assert _content(stack.send(raw)[1]) == message_text(final)
    assert stack.sql("SELECT count(*), sum(amount) FROM transactions WHERE user_id = %s", (int(member),)) == [
        (2, 11)
    ]
    # The stand-in shows the edit on its inspect page
    with urllib.request.urlopen(stack.url + "/discord-api/_inspect?format=json", timeout=5) as page:  # noqa: S310
        assert message_text(json.loads(page.read())["originals"][raw["token"]]) == message_text(final)


def test_a_database_lost_mid_command_gives_the_friendly_answer_and_no_partial_write(stack):
    stack.sql("""
        CREATE OR REPLACE FUNCTION e2e_pull_the_plug() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.reason = 'pull the plug' THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER e2e_pull_the_plug AFTER INSERT ON transactions FOR EACH ROW EXECUTE FUNCTION e2e_pull_the_plug();
    """)
    member = "840000000000000040"
    stack.send(_admin("balance"))
    tables = ("operations", "transactions", "interaction_replies", "admin_audit", "members", "points")
    before = [stack.sql(f"SELECT count(*) FROM {t}") for t in tables]

    class Unreachable:
        def send(self, task, delay_seconds=0):
            raise ConnectionError("queue unreachable")

    running = tasks.get_task_queue()
    tasks.set_task_queue(Unreachable())
    try:
        status, answer = stack.send(
            _admin("points add", {"member": member, "amount": 5, "reason": "pull the plug"})
        )
    finally:
        tasks.set_task_queue(running)
        stack.sql("DROP TRIGGER e2e_pull_the_plug ON transactions; DROP FUNCTION e2e_pull_the_plug();")
    assert status == 200 and answer["type"] == 4 and answer["data"]["flags"] == 64
    assert _content(answer) == TRY_AGAIN
    assert [stack.sql(f"SELECT count(*) FROM {t}") for t in tables] == before


def test_dms_from_a_change_reach_the_stand_in(stack):
    member = "840000000000000050"
    stack.send(_admin("points add", {"member": member, "amount": 3, "reason": "dm me"}))
    tasks.get_task_queue().drain(timeout=20)
    dms = discord_standin_rest.state.dms_to(member)
    # a card (Components V2: no content), the change in it
    assert any("**3 points**" in cards.plain_text(m["components"]) and not m["content"] for m in dms), dms


def test_concurrent_members_over_http(stack):
    # Ten members giving to one another at once: every answer is a 200 and the ledger adds up.
    givers = [f"84000000000000{index:04d}" for index in range(100, 110)]
    for giver in givers:
        stack.send(_admin("points add", {"member": giver, "amount": 10, "reason": "seed"}))
    answers: list[tuple[int, Any]] = []

    def give(giver: str, receiver: str) -> None:
        answers.append(stack.send(_member("give", {"member": receiver, "amount": 4}, user=giver)))

    threads = [threading.Thread(target=give, args=(g, givers[(i + 1) % 10])) for i, g in enumerate(givers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in answers] == [200] * 10
    total = stack.sql("SELECT sum(balance) FROM points WHERE guild_id = %s AND user_id = ANY(%s)",
                      (int(GUILD), [int(g) for g in givers]))  # fmt: skip
    assert total == [(100,)]


def test_the_simulator_cli(stack):
    def simulate_cli(*words: str) -> str:
        out = io.StringIO()
        with redirect_stdout(out):
            code = simulate.main(
                ["--url", stack.url, "--local-dir", str(stack.local_dir), "--guild", GUILD, *words]
            )
        assert code == 0, out.getvalue()
        return out.getvalue()

    assert "[200]" in simulate_cli("ping")
    added = simulate_cli("--as", "admin", "--user", ADMIN, "points", "add", "member=840000000000000060", "amount=8",
                         "reason=from the simulator")  # fmt: skip
    assert "Added **8 points** to <@840000000000000060>" in added and "(only you can see this)" in added
    shown = simulate_cli("--user", "840000000000000060", "balance")
    assert "You have **8 points**." in shown
    assert "Only admins" in simulate_cli("points", "set", "member=1", "amount=1", "reason=x")


def test_the_keepalive_warms_the_function(stack):
    from pointsbot.ops.keepalive import KEEPALIVE_EVENT
    from pointsbot_local import handlers
    from pointsbot_local.apigw import LambdaContext

    answer = handlers.load("interactions")(dict(KEEPALIVE_EVENT), LambdaContext("interactions"))
    assert answer["statusCode"] == 200 and json.loads(answer["body"]) == {"keepalive": "ok"}
    inline = endpoint.inline_database(endpoint.get_settings())
    with inline.connection() as conn:  # the connection the next command will use is open
        assert not conn.closed


def test_the_simulator_follows_a_deferred_answer(stack):
    # Given a locked balance row, so the inline attempt defers
    member = "840000000000000070"
    stack.send(_admin("points add", {"member": member, "amount": 1, "reason": "first"}))
    locker = psycopg.connect(stack.dsn)
    locker.execute(
        "SELECT 1 FROM points WHERE guild_id = %s AND user_id = %s FOR UPDATE", (int(GUILD), int(member))
    )
    out, codes = io.StringIO(), []

    def simulate_cli() -> None:
        codes.append(simulate.main(["--url", stack.url, "--local-dir", str(stack.local_dir), "--guild", GUILD,
                                    "--as", "admin", "--user", ADMIN, "points", "add", f"member={member}",
                                    "amount=2", "reason=slow"]))  # fmt: skip

    with redirect_stdout(out):
        runner = threading.Thread(target=simulate_cli)
        runner.start()
        try:
            # When the simulator has been told "thinking..." the database recovers
            for _ in range(400):
                if "deferred; waiting" in out.getvalue() or not runner.is_alive():
                    break
                threading.Event().wait(0.05)
        finally:
            locker.rollback()
            locker.close()
        runner.join(timeout=30)
    # Then it prints the worker's final answer
    printed = out.getvalue()
    assert codes == [0], printed
    assert "[200] type 5: thinking... (only you can see this)" in printed
    assert "final answer:\n### 📈 Points added\nAdded **2 points**" in printed


def _field(modal: dict[str, Any], custom_id: str) -> dict[str, Any]:
    """A modal's input by its custom_id (each input sits in a Label, as Discord draws them)."""
    for item in modal["data"]["components"]:
        inner = item.get("component") or {}
        if inner.get("custom_id") == custom_id:
            return inner
    raise AssertionError(f"no field {custom_id} in {modal}")


def test_context_menus_and_their_modals_over_signed_http(stack):
    member, helper = "840000000000000080", "840000000000000081"

    def entries(user: str) -> list[tuple]:
        return stack.sql(
            "SELECT amount, kind, reason, silent FROM transactions WHERE guild_id = %s AND user_id = %s ORDER BY id",
            (int(GUILD), int(user)),
        )

    # "Points profile" on a member: a card, at once
    status, card = stack.send(menu_payload("Points profile", member, user_id=helper, guild_id=GUILD))
    assert status == 200 and card["type"] == 4 and card["data"]["flags"] & cards.IS_COMPONENTS_V2
    # "Award points" opens a modal without the database (type 9), for that member
    status, modal = stack.send(
        menu_payload("Award points", member, user_id=ADMIN, admin=True, guild_id=GUILD)
    )
    assert status == 200 and modal["type"] == 9 and modal["data"]["custom_id"] == f"award:{member}"
    assert {"amount", "reason", "silent"} <= {
        (item.get("component") or {}).get("custom_id") for item in modal["data"]["components"]
    }
    # Its submit, signed like any interaction: a forged signature is refused and writes nothing
    submit = modal_payload(
        f"award:{member}", {"amount": "1,000", "reason": "great help", "silent": True},
        user_id=ADMIN, admin=True, guild_id=GUILD,
    )  # fmt: skip
    body, headers = signed(submit, stack.keys)
    headers["x-signature-ed25519"] = "11" * 64
    assert post(stack.url + "/interactions", body, headers)[0] == 401
    assert entries(member) == []
    # a member who is not an admin submitting the same modal is refused, nothing written
    forged = modal_payload(f"award:{member}", {"amount": "5", "reason": "x"}, user_id=helper, guild_id=GUILD)
    status, denied = stack.send(forged)
    assert status == 200 and denied["data"]["flags"] & 64 and "Only admins" in _content(denied)
    assert entries(member) == []
    # the admin's submit credits once, even when Discord delivers it twice
    first, again = stack.send(submit), stack.send(submit)
    assert first == again and first[0] == 200 and "1,000" in _content(first[1])
    assert entries(member) == [(1000, "award", "great help", True)]
    assert stack.sql(
        "SELECT count(*) FROM direct_messages WHERE guild_id = %s AND user_id = %s", (int(GUILD), int(member))
    ) == [(0,)]  # silent
    # "Award points for this message": the reason comes filled with a link to the message, and
    # the message's author is credited
    message = {"id": simulate.snowflake(), "channel_id": "950000000000000001", "author_id": helper}
    status, modal = stack.send(
        menu_payload(AWARD_MESSAGE, message["id"], message=message, user_id=ADMIN, admin=True, guild_id=GUILD)
    )
    link = f"https://discord.com/channels/{GUILD}/{message['channel_id']}/{message['id']}"
    assert status == 200 and modal["type"] == 9 and link in _field(modal, "reason")["value"]
    reason = _field(modal, "reason")["value"]
    status, answer = stack.send(
        modal_payload(
            modal["data"]["custom_id"],
            {"amount": "5", "reason": reason, "silent": False},
            user_id=ADMIN,
            admin=True,
            guild_id=GUILD,
        )
    )
    assert status == 200, answer
    assert entries(helper) == [(5, "award", reason, False)]
    # "Give points": the member gives from their own balance through the modal
    status, modal = stack.send(menu_payload("Give points", helper, user_id=member, guild_id=GUILD))
    assert status == 200 and modal["type"] == 9 and modal["data"]["custom_id"] == f"give:{helper}"
    status, answer = stack.send(
        modal_payload(f"give:{helper}", {"amount": "30", "reason": "thanks"}, user_id=member, guild_id=GUILD)
    )
    assert status == 200, answer
    assert [row[:2] for row in entries(member)] == [(1000, "award"), (-30, "transfer_out")]
    assert [row[:2] for row in entries(helper)] == [(5, "award"), (30, "transfer_in")]
    # an amount that is not a number: a plain private message, nothing written
    status, answer = stack.send(
        modal_payload(f"give:{helper}", {"amount": "lots"}, user_id=member, guild_id=GUILD)
    )
    assert status == 200 and answer["data"]["flags"] & 64 and "whole number" in _content(answer)
    assert len(entries(member)) == 2
