"""The worker's side of a deferred interaction: run it once, edit @original on the stand-in,
retry later while the database is away, and say "try again" when time runs out."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from _command_helpers import ADMIN, new_member, payload, use_queue

from pointsbot.commands import deferred
from pointsbot.commands.deferred import RETRY_DELAYS_S, TRY_AGAIN, complete_interaction, task_for
from pointsbot.discord.interactions import parse
from pointsbot.discord.rest import DiscordClient
from pointsbot.platform.db import Database
from pointsbot_local import discord_standin_rest
from pointsbot_local.discord_standin import standin
from pointsbot_local.simulate import message_text, snowflake

pytestmark = pytest.mark.integration
ORIGINAL = "/webhooks/{webhook_id}/{webhook_token}/messages/@original"


@pytest.fixture
def client(standin_url) -> Iterator[DiscordClient]:
    discord_standin_rest.reset()
    yield DiscordClient(standin_url, "bot-token", max_retry_wait=2)
    discord_standin_rest.reset()


@pytest.fixture
def task_queue():
    yield from use_queue()


@pytest.fixture(scope="module")
def dead_db() -> Iterator[Database]:
    """A database nobody answers for: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    database = Database(f"postgresql://postgres@127.0.0.1:{port}/none", connect_timeout_s=2)
    yield database
    database.close()


def _add(target: str, **kwargs) -> dict:
    return payload("points add", {"member": target, "amount": 6, "reason": "deferred"}, user_id=ADMIN, admin=True,
                   **kwargs)  # fmt: skip


def test_the_worker_runs_the_command_and_edits_the_original(db, client, sql, task_queue):
    target = new_member()
    raw = _add(target)
    complete_interaction(task_for(parse(raw)), database=db, client=client)
    original = discord_standin_rest.state.original(raw["token"])
    assert original is not None and f"Added **6 points** to <@{target}>" in message_text(original)
    assert sql("SELECT count(*) FROM transactions WHERE user_id = %s", (int(target),)) == [(1,)]


def test_a_redelivered_task_applies_once_and_edits_again(db, client, sql, task_queue):
    # SQS delivers at least once: the same task again changes nothing twice.
    target = new_member()
    raw = _add(target)
    complete_interaction(task_for(parse(raw)), database=db, client=client)
    complete_interaction(task_for(parse(raw)), database=db, client=client)
    assert "Added **6 points**" in message_text(discord_standin_rest.state.original(raw["token"]))
    assert sql("SELECT count(*) FROM transactions WHERE user_id = %s", (int(target),)) == [(1,)]


def test_an_answer_discord_did_not_take_is_shown_later_without_the_database(
    db, dead_db, client, sql, task_queue
):
    # The command was done, then the edit failed (Discord 5xx) and the database went away: the
    # member must still see what was done, never "nothing was changed, try again".
    target = new_member()
    raw = _add(target)
    standin.inject("PATCH", ORIGINAL, 503, {"message": "upstream", "code": 0})
    complete_interaction(task_for(parse(raw)), database=db, client=client)
    assert discord_standin_rest.state.original(raw["token"]) is None
    (again,) = [t for t in task_queue.sent if t.kind == deferred.TASK_KIND]
    complete_interaction(again, database=dead_db, client=client)
    assert "Added **6 points**" in message_text(discord_standin_rest.state.original(raw["token"]))
    assert sql("SELECT count(*) FROM transactions WHERE user_id = %s", (int(target),)) == [(1,)]


def test_while_the_database_is_known_down_tasks_move_on_without_waiting_for_it(
    dead_db, client, task_queue, monkeypatch
):
    # One task at a time tries the database during an outage; the rest go on to their next
    # attempt without a connection wait each (a backlog of thousands took hours that way).
    monkeypatch.setattr(deferred, "outage", deferred._Outage())
    tried: list[str] = []

    class Watched:
        def run(self, fn, *args, **kwargs):
            tried.append("run")
            return dead_db.run(fn, *args, **kwargs)

    raws = [_add(new_member()) for _ in range(3)]
    complete_interaction(task_for(parse(raws[0])), database=Watched(), client=client)
    assert tried == ["run"]
    outage_probe = deferred.outage.begin()  # another task is probing right now
    assert outage_probe is True
    for raw in raws[1:]:
        complete_interaction(task_for(parse(raw)), database=Watched(), client=client)
    assert tried == ["run"]
    assert [t.payload["attempt"] for t in task_queue.sent if t.kind == deferred.TASK_KIND] == [2, 2, 2]


def test_an_inline_attempt_that_did_commit_is_not_applied_twice(db, client, sql, task_queue):
    from pointsbot import commands

    target = new_member()
    raw = _add(target)
    inline = commands.execute(db, parse(raw))  # committed, but its answer never reached Discord
    complete_interaction(task_for(parse(raw)), database=db, client=client)
    assert message_text(discord_standin_rest.state.original(raw["token"])) == inline.reply.content
    assert sql("SELECT count(*) FROM transactions WHERE user_id = %s", (int(target),)) == [(1,)]


def test_while_the_database_is_away_the_worker_tries_again_later(dead_db, client, task_queue):
    raw = _add(new_member())
    complete_interaction(task_for(parse(raw), attempt=1), database=dead_db, client=client)
    assert [(t.kind, t.payload["attempt"]) for t in task_queue.sent] == [("interaction", 2)]
    assert discord_standin_rest.state.original(raw["token"]) is None  # still "thinking..."


def test_when_time_runs_out_the_member_is_told_to_try_again(dead_db, client, task_queue):
    raw = _add(new_member())
    last = len(RETRY_DELAYS_S) + 1
    complete_interaction(task_for(parse(raw), attempt=last), database=dead_db, client=client)
    assert message_text(discord_standin_rest.state.original(raw["token"])) == TRY_AGAIN
    assert task_queue.sent == []


def test_no_retry_that_would_outlive_the_token(dead_db, client, task_queue):
    # Created 13.8 minutes ago: a retry in 30 s would come too close to the 15-minute expiry.
    raw = _add(new_member(), interaction_id=snowflake(time.time() - 13.8 * 60))
    complete_interaction(task_for(parse(raw), attempt=5), database=dead_db, client=client)
    assert message_text(discord_standin_rest.state.original(raw["token"])) == TRY_AGAIN


def test_an_expired_interaction_is_dropped_without_running(db, client, sql, task_queue):
    target = new_member()
    raw = _add(target, interaction_id=snowflake(time.time() - 16 * 60))
    complete_interaction(task_for(parse(raw)), database=db, client=client)
    assert discord_standin_rest.state.original(raw["token"]) is None
    assert sql("SELECT count(*) FROM transactions WHERE user_id = %s", (int(target),)) == [(0,)]


def test_an_invalid_token_is_logged_not_retried(db, client, task_queue):
    raw = _add(new_member())
    discord_standin_rest.state.expire_token(raw["token"])
    complete_interaction(task_for(parse(raw)), database=db, client=client)  # does not raise


def test_an_unreadable_task_is_dropped(client):
    complete_interaction(deferred.Task(deferred.TASK_KIND, {"interaction": {"type": 2}}), client=client)
    assert standin.sent() == []


def test_a_failing_command_ends_with_an_apology_not_endless_thinking(db, client, monkeypatch, task_queue):
    from pointsbot.commands.dispatch import _REGISTRY, CommandSpec
    from pointsbot.commands.endpoint import SOMETHING_WENT_WRONG

    def broken(ctx, conn):
        raise RuntimeError("a bug")

    monkeypatch.setitem(_REGISTRY, "balance", CommandSpec("balance", broken, writes=False))
    raw = payload("balance", user_id=new_member())
    complete_interaction(task_for(parse(raw)), database=db, client=client)
    assert message_text(discord_standin_rest.state.original(raw["token"])) == SOMETHING_WENT_WRONG
