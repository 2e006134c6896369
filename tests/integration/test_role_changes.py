"""Role changes on real Postgres, made over HTTP on the project's Discord stand-in: asking is
idempotent, a redelivered task or two racing workers make one PUT, refusals end `refused` with
their source's handler called once in the same transaction, 429 and 5xx are tried again, and
one member's changes of one role keep their order."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from _dm_fixtures import RecordingQueue, discord_fixture, fresh_db_fixture, new_guild, new_member

from pointsbot.community import roles
from pointsbot.delivery import tasks
from pointsbot.discord.rest import DiscordClient
from pointsbot.ops import worker
from pointsbot.platform.db import Database
from pointsbot.platform.errors import IdempotencyConflict, InvalidInput
from pointsbot_local import discord_standin_rest
from pointsbot_local.discord_standin import standin

pytestmark = pytest.mark.through_pgbouncer

# Fixtures used by name in this module.
__all__ = ["discord_fixture", "fresh_db_fixture"]

MEMBER_ROLE = "/guilds/{guild_id}/members/{user_id}/roles/{role_id}"
state = discord_standin_rest.state


@pytest.fixture
def fast(settings):
    return settings.with_overrides(dm_rate_per_second=500, dm_deliver_budget_s=20)


@pytest.fixture
def queue() -> RecordingQueue:
    recording = RecordingQueue([])
    tasks.set_task_queue(recording)
    yield recording
    tasks.set_task_queue(None)


@pytest.fixture
def refusals(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str, str]]:
    """A refusal handler for source 'purchase' that records what it was given, in the database
    transaction it was given (a row the test can count) and in a list."""
    seen: list[tuple[int, str, str]] = []

    def handler(conn: psycopg.Connection, change: roles.RoleChange, reason: str) -> None:
        conn.execute(
            "INSERT INTO admin_audit (guild_id, action, target) VALUES (%s, 'test_refund', %s)",
            (change.guild_id, str(change.id)),
        )
        seen.append((change.id, change.state, reason))

    roles.load_refusal_handlers()  # the store's own first, so it cannot replace this one later
    monkeypatch.setitem(roles._handlers, "purchase", handler)
    return seen


def ask(db: Database, guild: int, user: int, role: str | int, *, action: str = "add", ref: str = "1",
        source: str = "purchase", reason: str = "Bought in the shop") -> int:  # fmt: skip
    return db.run(
        roles.request_role_change, guild_id=guild, user_id=user, role_id=int(role), action=action,
        source=source, source_ref=ref, reason=reason,
    )  # fmt: skip


def change_row(db: Database, change_id: int) -> dict:
    row = db.fetchone(
        "SELECT state, attempts, error_code, last_error, next_attempt_at > now() FROM role_changes WHERE id = %s",
        (change_id,),
    )
    return dict(zip(("state", "attempts", "code", "error", "later"), row, strict=True))


def apply(db: Database, client: DiscordClient, settings) -> roles.ApplyReport:
    return roles.apply_due(db, client, settings=settings)


def make_due(db: Database) -> None:
    db.run(
        lambda c: c.execute(
            "UPDATE role_changes SET next_attempt_at = now() WHERE state IN ('pending', 'sending')"
        )
    )


def puts() -> list:
    return standin.sent("PUT", MEMBER_ROLE)


# -- asking ------------------------------------------------------------------------------------------
def test_asking_twice_records_one_change_and_bad_requests_write_nothing(db: Database) -> None:
    guild = new_guild(db)
    user, other = new_member(db, guild), new_member(db, guild)
    first = ask(db, guild, user, 555, ref="p1")
    assert ask(db, guild, user, 555, ref="p1") == first
    # The same key in the other direction is another change.
    assert ask(db, guild, user, 555, ref="p1", action="remove") != first
    with pytest.raises(IdempotencyConflict):
        ask(db, guild, other, 555, ref="p1")
    for bad in (
        {"action": "toggle"},
        {"source": "nonsense"},
        {"ref": ""},
        {"ref": "x" * 201},
    ):
        with pytest.raises(InvalidInput):
            ask(db, guild, user, 555, **bad)
    with pytest.raises(InvalidInput):
        ask(db, guild, user, 0)
    with pytest.raises(InvalidInput, match="Only a role that is added"):
        db.run(roles.request_role_change, guild_id=guild, user_id=user, role_id=5, action="remove",
               source="purchase", source_ref="t", reason="", expires_at=datetime.now(UTC))  # fmt: skip
    assert db.fetchone("SELECT count(*) FROM role_changes")[0] == 2


def test_request_role_delivery_sends_the_task_the_worker_knows(queue: RecordingQueue) -> None:
    assert roles.request_role_delivery() is True
    ((task, delay),) = queue.sent
    assert (task.kind, delay) == ("apply_role_changes", 0)
    assert worker.handler_for(task.kind) is roles.apply_task


# -- making them ----------------------------------------------------------------------------------------
def test_a_grant_is_made_with_its_audit_reason_and_a_removal_after_it(
    db: Database, discord: DiscordClient, fast, queue
) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    role = state.add_role(str(guild), "Supporter", position=3)
    added = ask(db, guild, user, role, ref="p7", reason="Bought « Supporter » for 1,000 points")
    removed = ask(db, guild, user, role, ref="p7", action="remove", reason="Refund")
    report = apply(db, discord, fast)
    assert (report.done, report.refused, report.retried) == (2, 0, 0)
    assert change_row(db, added)["state"] == change_row(db, removed)["state"] == "done"
    assert [(e.method, e.status) for e in standin.sent(route=MEMBER_ROLE)] == [("PUT", 204), ("DELETE", 204)]
    assert [a["reason"] for a in state.audit_log] == ["Bought « Supporter » for 1,000 points", "Refund"]
    assert state.member_roles(str(guild), str(user)) == []
    # Nothing waits, so no later task was asked for.
    assert queue.sent == []


def test_a_redelivered_task_makes_one_put(db: Database, discord: DiscordClient, fast, queue) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    role = state.add_role(str(guild), "VIP")
    change = ask(db, guild, user, role)
    # The same task delivered twice, one after the other (SQS at least once).
    for _ in range(2):
        roles.apply_due(db, DiscordClient(discord.base_url, "test-token"), settings=fast)
    row = change_row(db, change)
    assert len(puts()) == 1 and (row["state"], row["attempts"], row["error"]) == ("done", 1, None)
    assert state.member_roles(str(guild), str(user)) == [role]


def test_two_workers_at_once_make_each_change_once(db: Database, discord: DiscordClient, fast, queue) -> None:
    guild = new_guild(db)
    role = state.add_role(str(guild), "Regular")
    users = [new_member(db, guild) for _ in range(20)]
    ids = [ask(db, guild, u, role, ref=f"p{u}") for u in users]
    barrier = threading.Barrier(2)
    reports: list[roles.ApplyReport] = []

    def run() -> None:
        client = DiscordClient(discord.base_url, "test-token", max_retry_wait=5.0)
        barrier.wait()
        reports.append(roles.apply_due(db, client, settings=fast, batch_size=2))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.done for r in reports) == 20
    made = [e.path for e in puts() if e.status == 204]
    assert len(made) == len(set(made)) == 20
    assert {change_row(db, i)["state"] for i in ids} == {"done"}


def test_a_change_whose_worker_died_is_made_after_the_lease_once(
    db: Database, discord: DiscordClient, fast, queue
) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    role = state.add_role(str(guild), "Late")
    change_id = ask(db, guild, user, role)
    (dead,) = db.run(roles.claim_due, 10, 300)
    assert apply(db, discord, fast).claimed == 0  # within the lease nobody else takes it
    make_due(db)
    assert apply(db, discord, fast).done == 1
    # The dead worker wakes and reports: its claim no longer holds, the record stands.
    roles._retry_later(db, dead, 60, "late report", 500)
    assert change_row(db, change_id)["state"] == "done" and len(puts()) == 1


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("above", 50013),  # the role sits above the bot's highest role
        ("equal", 50013),  # at the bot's highest role: also refused
        ("unknown_role", 10011),
        ("member_left", 10007),
    ],
)
def test_a_refusal_ends_refused_and_calls_the_handler_once(
    db: Database, discord: DiscordClient, fast, queue, refusals, setup: str, code: int
) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    role: str | int = {"above": lambda: state.add_role(str(guild), "Admin", position=11),
                       "equal": lambda: state.add_role(str(guild), "Peer", position=10),
                       "unknown_role": lambda: 999_999_999_999,
                       "member_left": lambda: state.add_role(str(guild), "Fine")}[setup]()  # fmt: skip
    if setup == "member_left":
        state.leave(str(guild), str(user))
    change_id = ask(db, guild, user, role, ref=f"buy-{setup}")
    report = apply(db, discord, fast)
    assert (report.done, report.refused) == (0, 1)
    row = change_row(db, change_id)
    assert row["state"] == "refused" and row["code"] == code and row["attempts"] == 1
    # The handler ran once, in the transaction that marked it refused.
    ((seen_id, seen_state, reason),) = refusals
    assert (seen_id, seen_state) == (change_id, "refused") and str(code) in reason
    assert db.fetchone("SELECT count(*) FROM admin_audit WHERE action = 'test_refund' AND target = %s",
                       (str(change_id),))[0] == 1  # fmt: skip
    # Flagged for admins until acknowledged; nothing is tried again.
    assert [c.id for c in db.run(roles.unseen_refusals, guild)] == [change_id]
    make_due(db)
    assert apply(db, discord, fast).claimed == 0 and len(refusals) == 1
    assert db.run(roles.acknowledge, guild, change_id, 42) is True
    assert db.run(roles.unseen_refusal_count, guild) == 0


def test_a_handler_that_fails_leaves_the_change_to_be_tried_again(
    db: Database, discord: DiscordClient, fast, queue, monkeypatch
) -> None:
    calls: list[int] = []

    def broken(conn, change, reason):
        calls.append(change.id)
        conn.execute("INSERT INTO admin_audit (action) VALUES ('half a refund')")
        raise RuntimeError("refund table is locked")

    roles.load_refusal_handlers()
    monkeypatch.setitem(roles._handlers, "purchase", broken)
    guild = new_guild(db)
    user = new_member(db, guild)
    change_id = ask(db, guild, user, state.add_role(str(guild), "Top", position=50))
    assert apply(db, discord, fast).retried == 1
    row = change_row(db, change_id)
    # Nothing the handler wrote stands, and the change is not refused without its undo.
    assert row["state"] == "pending" and row["later"] and "refusal handler failed" in row["error"]
    assert db.fetchone("SELECT count(*) FROM admin_audit WHERE action = 'half a refund'")[0] == 0
    monkeypatch.setitem(roles._handlers, "purchase", lambda conn, change, reason: calls.append(-change.id))
    make_due(db)
    apply(db, discord, fast)
    assert change_row(db, change_id)["state"] == "refused" and calls == [change_id, -change_id]


def test_a_429_then_success_makes_the_change_once_without_using_a_try(
    db: Database, discord: DiscordClient, fast, queue
) -> None:
    guild = new_guild(db)
    user, other = new_member(db, guild), new_member(db, guild)
    role = state.add_role(str(guild), "Patient")
    first = ask(db, guild, user, role, ref="a")
    limited = {"message": "You are being rate limited.", "retry_after": 0.1, "global": False, "code": 0}
    # A short 429: the client waits it out itself.
    standin.inject("PUT", MEMBER_ROLE, 429, limited, headers={"Retry-After": "1"})
    assert apply(db, discord, fast).done == 1
    assert [e.status for e in puts()] == [429, 204] and change_row(db, first)["attempts"] == 1
    # A long one: the change waits retry_after, its try not counted, and a task is asked for then.
    second = ask(db, guild, other, role, ref="b")
    standin.inject("PUT", MEMBER_ROLE, 429, {**limited, "retry_after": 30.0}, headers={"Retry-After": "30"})
    assert apply(db, discord, fast).retried == 1
    row = change_row(db, second)
    assert row["state"] == "pending" and row["attempts"] == 0 and row["later"] and row["code"] == 429
    ((task, delay),) = queue.sent
    assert task.kind == "apply_role_changes" and 25 <= delay <= 31
    make_due(db)
    assert apply(db, discord, fast).done == 1
    assert [e.status for e in puts()] == [429, 204, 429, 204]
    assert state.member_roles(str(guild), str(other)) == [role]


def test_5xx_is_tried_again_with_backoff_then_failed_with_the_handler(
    db: Database, discord: DiscordClient, fast, queue, refusals
) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    role = state.add_role(str(guild), "Flaky")
    change_id = ask(db, guild, user, role)
    standin.inject("PUT", MEMBER_ROLE, 502, {"message": "Bad Gateway"})
    assert apply(db, discord, fast).retried == 1
    row = change_row(db, change_id)
    assert row["state"] == "pending" and row["attempts"] == 1 and row["later"] and row["code"] == 502
    assert apply(db, discord, fast).claimed == 0  # not due yet
    make_due(db)
    assert apply(db, discord, fast).done == 1 and refusals == []
    # Discord down for good: after MAX_ATTEMPTS tries the change is failed, and its handler runs.
    again = ask(db, guild, user, role, ref="2")
    standin.inject("PUT", MEMBER_ROLE, 500, {"message": "Internal Server Error"}, times=roles.MAX_ATTEMPTS)
    for _ in range(roles.MAX_ATTEMPTS):
        apply(db, discord, fast)
        make_due(db)
    row = change_row(db, again)
    assert row["state"] == "failed" and row["attempts"] == roles.MAX_ATTEMPTS
    assert [(i, s) for i, s, _ in refusals] == [(again, "failed")]


def test_one_members_changes_of_one_role_keep_their_order(
    db: Database, discord: DiscordClient, fast, queue
) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    role = state.add_role(str(guild), "Threshold")
    add = ask(db, guild, user, role, source="threshold", ref="t:1")
    remove = ask(db, guild, user, role, source="threshold", ref="t:1", action="remove")
    # The add waits for a retry: the remove may not overtake it.
    standin.inject("PUT", MEMBER_ROLE, 503, {"message": "unavailable"})
    apply(db, discord, fast)
    assert change_row(db, add)["state"] == "pending" and change_row(db, remove)["state"] == "pending"
    assert standin.sent("DELETE", MEMBER_ROLE) == []
    make_due(db)
    apply(db, discord, fast)
    assert [e.method for e in standin.sent(route=MEMBER_ROLE)] == ["PUT", "PUT", "DELETE"]
    assert state.member_roles(str(guild), str(user)) == []


def test_the_worker_loads_every_named_handler_module(monkeypatch) -> None:
    monkeypatch.setitem(roles.SOURCES, "purchase", "pointsbot.community.roles")  # registers nothing
    monkeypatch.delitem(roles._handlers, "purchase", raising=False)
    with pytest.raises(RuntimeError, match="did not register"):
        roles.load_refusal_handlers()
    with pytest.raises(ValueError, match="unknown role change source"):
        roles.register_refusal_handler("typo", lambda conn, change, reason: None)


def test_the_keepalive_asks_for_role_changes_left_due(db: Database, queue: RecordingQueue) -> None:
    from pointsbot.ops import keepalive

    guild = new_guild(db)
    ask(db, guild, new_member(db, guild), 777)
    result = keepalive.run(db, warmer=lambda event: None)
    assert result.role_changes_due == 1 and result.role_delivery_requested
    assert "apply_role_changes" in [t.kind for t, _ in queue.sent]


def test_a_timed_grant_keeps_its_end(db: Database) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    ends = datetime.now(UTC) + timedelta(days=7)
    change_id = db.run(roles.request_role_change, guild_id=guild, user_id=user, role_id=5, action="add",
                       source="purchase", source_ref="timed", reason="", expires_at=ends)  # fmt: skip
    assert db.run(roles.get_change, change_id).expires_at == ends


def test_the_dm_wake_up_makes_due_role_changes_too(
    db: Database, discord: DiscordClient, queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every place that changes points asks for "deliver_dms" after COMMIT; a threshold's or an
    # achievement's role change rides on that change, so the same task makes it.
    from pointsbot.delivery.tasks import Task
    from pointsbot.discord import rest as discord_rest
    from pointsbot.platform import config, runtime

    monkeypatch.setattr(runtime, "_database", db)
    monkeypatch.setenv("DISCORD_API_BASE_URL", discord.base_url)
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "test-token")
    config.reset_settings()
    discord_rest.set_client(discord)
    try:
        guild = new_guild(db)
        user = new_member(db, guild)
        role = state.add_role(str(guild), "Woken")
        change_id = ask(db, guild, user, role, source="threshold", ref="t:w:1")
        worker.run_task(Task("deliver_dms", {}))
    finally:
        discord_rest.set_client(None)
        config.reset_settings()
    assert change_row(db, change_id)["state"] == "done"
    assert state.member_roles(str(guild), str(user)) == [role]
