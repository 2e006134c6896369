"""The DM outbox on real Postgres, delivered over HTTP to the project's Discord stand-in:
queueing rules, delivery and its record, 50007 / 429 / 5xx / network errors, exactly-once
delivery under duplicate tasks and racing workers, leases, and the shared pacer."""

from __future__ import annotations

import itertools
import threading

import pytest
from _dm_fixtures import (
    RecordingQueue,
    discord_fixture,
    dm_row,
    fresh_db_fixture,
    make_due,
    messages_to,
    new_guild,
    new_member,
    queue_dm,
)

from pointsbot.delivery import outbox, tasks
from pointsbot.discord.rest import DiscordClient
from pointsbot.platform.db import Database
from pointsbot.platform.errors import InvalidInput
from pointsbot_local import discord_standin_rest
from pointsbot_local.discord_standin import standin

# Fixtures used by name in this module.
__all__ = ["discord_fixture", "fresh_db_fixture"]

MESSAGES = "/channels/{channel_id}/messages"
CHANNELS = "/users/@me/channels"


@pytest.fixture
def fast(settings):
    """Settings for tests: a pacer fast enough not to slow them, few tries, a short budget."""
    return settings.with_overrides(dm_rate_per_second=500, dm_max_attempts=3, dm_deliver_budget_s=20)


@pytest.fixture
def queue() -> RecordingQueue:
    recording = RecordingQueue([])
    tasks.set_task_queue(recording)
    yield recording
    tasks.set_task_queue(None)


def deliver(db: Database, client: DiscordClient, settings) -> outbox.DeliveryReport:
    return outbox.deliver_due(db, client, settings=settings)


# -- queueing ------------------------------------------------------------------------------------
def test_enqueue_refuses_bad_input_and_honours_opt_out_erasure_and_dedupe(db: Database) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    with pytest.raises(InvalidInput, match="empty"):
        db.run(outbox.enqueue_dm, guild_id=guild, user_id=user, content="   ", reason="admin")
    with pytest.raises(InvalidInput, match="too long"):
        db.run(outbox.enqueue_dm, guild_id=guild, user_id=user, content="x" * 2001, reason="admin")
    with pytest.raises(InvalidInput, match="reason"):
        db.run(outbox.enqueue_dm, guild_id=guild, user_id=user, content="hi", reason="spam")

    first = db.run(
        outbox.enqueue_dm, guild_id=guild, user_id=user, content="hi", reason="points", dedupe_key="k1"
    )
    again = db.run(
        outbox.enqueue_dm, guild_id=guild, user_id=user, content="hi", reason="points", dedupe_key="k1"
    )
    assert first is not None and again is None

    db.run(
        lambda c: c.execute(
            "UPDATE members SET dm_opt_out = TRUE WHERE guild_id = %s AND user_id = %s", (guild, user)
        )
    )
    for reason in ("points", "email", "achievement"):
        assert db.run(outbox.enqueue_dm, guild_id=guild, user_id=user, content="hi", reason=reason) is None
    assert db.run(outbox.enqueue_dm, guild_id=guild, user_id=user, content="hi", reason="admin") is not None

    erased = new_member(db, guild)
    db.run(
        lambda c: c.execute(
            "UPDATE members SET erased_at = now() WHERE guild_id = %s AND user_id = %s", (guild, erased)
        )
    )
    assert db.run(outbox.enqueue_dm, guild_id=guild, user_id=erased, content="hi", reason="admin") is None
    assert db.run(outbox.enqueue_dm, guild_id=guild, user_id=123, content="hi", reason="admin") is None


def test_request_delivery_sends_a_task_and_never_raises(queue: RecordingQueue) -> None:
    assert outbox.request_delivery() is True
    assert [(t.kind, d) for t, d in queue.sent] == [("deliver_dms", 0)]

    class Broken:
        def send(self, task, delay_seconds=0):
            raise ConnectionError("queue down")

    tasks.set_task_queue(Broken())
    assert outbox.request_delivery() is False


# -- delivery --------------------------------------------------------------------------------------
def test_a_dm_is_delivered_and_recorded(db: Database, discord: DiscordClient, fast, queue) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    dm_id = queue_dm(db, guild, user, "You have **5** points")
    report = deliver(db, discord, fast)
    assert (report.sent, report.failed, report.requests) == (1, 0, 2)
    row = dm_row(db, dm_id)
    received = messages_to(user)
    assert [m["content"] for m in received] == ["You have **5** points"]
    assert row["status"] == "sent" and row["attempts"] == 1 and row["sent"] and row["last_error"] is None
    assert row["message_id"] == int(received[0]["id"])

    # The DM channel is remembered: the next DM to the same member is one request.
    second = queue_dm(db, guild, user, "Again")
    report = deliver(db, discord, fast)
    assert (report.sent, report.requests) == (1, 1)
    assert [m["content"] for m in messages_to(user)] == ["You have **5** points", "Again"]
    assert dm_row(db, second)["status"] == "sent"
    assert len(standin.sent("POST", CHANNELS)) == 1
    # Nothing waits for a retry, so no follow-up task was asked for.
    assert queue.sent == []


def test_50007_fails_the_dm_without_retrying(db: Database, discord: DiscordClient, fast, queue) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    discord_standin_rest.state.set_user(str(user), accepts_dms=False)
    dm_id = queue_dm(db, guild, user)
    report = deliver(db, discord, fast)
    assert (report.sent, report.failed) == (0, 1)
    row = dm_row(db, dm_id)
    assert row["status"] == "failed" and row["attempts"] == 1 and row["last_error"].startswith("50007")
    make_due(db)
    assert deliver(db, discord, fast).claimed == 0
    assert len(standin.sent("POST", MESSAGES)) == 1
    assert queue.sent == []


def test_a_5xx_is_retried_with_backoff_then_delivered_once(
    db: Database, discord: DiscordClient, fast, queue
) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    dm_id = queue_dm(db, guild, user, "after a hiccup")
    standin.inject("POST", MESSAGES, 502, {"message": "Bad Gateway"})
    report = deliver(db, discord, fast)
    assert (report.sent, report.retried) == (0, 1)
    row = dm_row(db, dm_id)
    assert row["status"] == "queued" and row["attempts"] == 1 and row["later"] and "502" in row["last_error"]
    # Delivery asked for a task when the retry is due (backoff of about DM_RETRY_BASE_S).
    ((task, delay),) = queue.sent
    assert task.kind == "deliver_dms" and 0 < delay <= fast.dm_retry_base_s
    # Not due yet: a delivery now does nothing.
    assert deliver(db, discord, fast).claimed == 0
    make_due(db)
    assert deliver(db, discord, fast).sent == 1
    assert [m["content"] for m in messages_to(user)] == ["after a hiccup"]
    assert dm_row(db, dm_id)["attempts"] == 2


def test_a_dm_fails_after_the_retry_limit(db: Database, discord: DiscordClient, fast, queue) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    dm_id = queue_dm(db, guild, user)
    standin.inject("POST", MESSAGES, 500, {"message": "Internal Server Error"}, times=10)
    for _ in range(fast.dm_max_attempts):
        deliver(db, discord, fast)
        make_due(db)
    row = dm_row(db, dm_id)
    assert row["status"] == "failed" and row["attempts"] == 3
    assert row["last_error"].startswith("gave up after 3 tries")
    assert deliver(db, discord, fast).claimed == 0
    assert messages_to(user) == []


def test_a_network_error_is_retried(db: Database, fast, queue) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    dm_id = queue_dm(db, guild, user)
    nowhere = DiscordClient("http://127.0.0.1:9/api/v10", "test-token", timeout=2)
    report = deliver(db, nowhere, fast)
    assert report.retried == 1
    row = dm_row(db, dm_id)
    assert row["status"] == "queued" and row["attempts"] == 1 and row["later"]


def test_a_429_is_waited_out_and_does_not_use_up_a_try(
    db: Database, discord: DiscordClient, fast, queue
) -> None:
    guild = new_guild(db)
    user, other = new_member(db, guild), new_member(db, guild)
    first = queue_dm(db, guild, user, "one")
    limited = {"message": "You are being rate limited.", "retry_after": 0.2, "global": False, "code": 0}
    standin.inject("POST", MESSAGES, 429, limited, headers={"Retry-After": "1"})
    assert deliver(db, discord, fast).sent == 1
    assert dm_row(db, first)["attempts"] == 1
    assert [e.status for e in standin.sent("POST", MESSAGES)] == [429, 200]

    # A 429 longer than the client will wait: the DM waits retry_after, without using a try.
    second = queue_dm(db, guild, other, "two")
    standin.inject("POST", MESSAGES, 429, {**limited, "retry_after": 30.0}, headers={"Retry-After": "30"})
    report = deliver(db, discord, fast)
    assert report.retried == 1
    row = dm_row(db, second)
    assert row["status"] == "queued" and row["attempts"] == 0 and row["later"]
    ((_task, delay),) = queue.sent
    assert 25 <= delay <= 31
    make_due(db)
    assert deliver(db, discord, fast).sent == 1
    assert dm_row(db, second)["attempts"] == 1


@pytest.mark.parametrize("batch_size", [50, 5], ids=["one batch", "many batches"])
def test_each_recipient_gets_one_channel_open_however_many_dms(
    db: Database, discord: DiscordClient, fast, queue, batch_size: int
) -> None:
    # 43 DMs to 12 members whose DM channels nobody knows yet, several to each member in the
    # same claim (the claim reads dm_channels once for the whole batch) and across claims.
    guild = new_guild(db)
    users = [new_member(db, guild) for _ in range(12)]
    for n in range(43):
        queue_dm(db, guild, users[n % 12], f"dm {n}")
    report = outbox.deliver_due(db, discord, settings=fast, batch_size=batch_size)
    assert report.sent == 43
    opened = sorted(e.body["recipient_id"] for e in standin.sent("POST", CHANNELS))
    assert opened == sorted(str(u) for u in users)
    assert report.requests == 43 + 12
    assert sum(len(messages_to(u)) for u in users) == 43


def test_a_recipient_with_a_dm_in_flight_is_left_to_the_worker_sending_it(db: Database) -> None:
    # Two workers claim one after the other before either has sent anything: the second must
    # not take another DM of a recipient the first holds, or both would open their DM channel.
    guild = new_guild(db)
    users = [new_member(db, guild) for _ in range(3)]
    for round_ in range(2):
        for user in users:
            queue_dm(db, guild, user, f"round {round_}")
    first = db.run(outbox.claim_due, 2, 300)
    second = db.run(outbox.claim_due, 10, 300)
    assert {dm.user_id for dm in first} == set(users[:2])
    assert {dm.user_id for dm in second} == {users[2]}
    assert [dm.content for dm in second] == ["round 0", "round 1"]
    # A lease that ran out (a dead worker) frees the recipient again.
    make_due(db)
    assert {dm.user_id for dm in db.run(outbox.claim_due, 10, 300)} == set(users)


def test_concurrent_delivery_tasks_open_each_recipients_channel_once(
    db: Database, discord: DiscordClient, fast, queue
) -> None:
    # 48 DMs, four to each of 12 members, queued member by member (as a bulk change with a
    # note per member makes them), and four delivery tasks at once, each claiming three at a time:
    # a member's DMs come up in several workers' claims together.
    guild = new_guild(db)
    users = [new_member(db, guild) for _ in range(12)]
    for user in users:
        for n in range(4):
            queue_dm(db, guild, user, f"dm {n}")
    barrier = threading.Barrier(4)
    reports: list[outbox.DeliveryReport] = []

    class SlowToOpen(DiscordClient):
        # Opening a channel takes a moment, as over the internet: without recipients owned by
        # one worker, the others claim that member's next DM meanwhile and open it too.
        def create_dm(self, recipient_id: str) -> str:
            threading.Event().wait(0.05)
            return super().create_dm(recipient_id)

    def worker() -> None:
        client = SlowToOpen(discord.base_url, "test-token", max_retry_wait=5.0)
        barrier.wait()
        reports.append(outbox.deliver_due(db, client, settings=fast, batch_size=3))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.sent for r in reports) == 48
    opened = sorted(e.body["recipient_id"] for e in standin.sent("POST", CHANNELS) if e.status == 200)
    assert opened == sorted(str(u) for u in users)
    for user in users:
        # One owner at a time also keeps a member's DMs in the order they were queued.
        assert [m["content"] for m in messages_to(user)] == [f"dm {n}" for n in range(4)]


def test_a_forgotten_dm_channel_is_opened_again(db: Database, discord: DiscordClient, fast, queue) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    db.run(lambda c: c.execute("INSERT INTO dm_channels (user_id, channel_id) VALUES (%s, 42)", (user,)))
    standin.inject("POST", MESSAGES, 404, {"message": "Unknown Channel", "code": 10003})
    dm_id = queue_dm(db, guild, user, "found you")
    deliver(db, discord, fast)
    deliver(db, discord, fast)
    assert dm_row(db, dm_id)["status"] == "sent"
    assert [m["content"] for m in messages_to(user)] == ["found you"]


def test_a_dm_to_a_member_erased_or_opted_out_since_is_not_sent(
    db: Database, discord: DiscordClient, fast, queue
) -> None:
    guild = new_guild(db)
    erased, opted = new_member(db, guild), new_member(db, guild)
    gone = queue_dm(db, guild, erased, reason="admin")
    quiet = queue_dm(db, guild, opted, reason="points")
    db.run(
        lambda c: c.execute(
            "UPDATE members SET erased_at = now() WHERE guild_id = %s AND user_id = %s", (guild, erased)
        )
    )
    db.run(
        lambda c: c.execute(
            "UPDATE members SET dm_opt_out = TRUE WHERE guild_id = %s AND user_id = %s", (guild, opted)
        )
    )
    report = deliver(db, discord, fast)
    assert (report.failed, report.requests) == (2, 0)
    assert dm_row(db, gone)["last_error"] == "member erased"
    assert dm_row(db, quiet)["last_error"] == "member opted out of DMs"


# -- exactly once --------------------------------------------------------------------------------------
def test_a_task_delivered_twice_at_once_sends_each_dm_once(
    db: Database, discord: DiscordClient, fast, queue
) -> None:
    guild = new_guild(db)
    users = [new_member(db, guild) for _ in range(30)]
    ids = [queue_dm(db, guild, u, f"to {u}") for u in users]
    barrier = threading.Barrier(3)
    reports: list[outbox.DeliveryReport] = []

    def worker() -> None:
        barrier.wait()
        # Each worker has its own client, as two Lambda containers would.
        client = DiscordClient(discord.base_url, "test-token", max_retry_wait=5.0)
        # Two DMs per claim, so the workers claim over and over against each other.
        reports.append(outbox.deliver_due(db, client, settings=fast, batch_size=2))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.sent for r in reports) == 30
    for user in users:
        assert [m["content"] for m in messages_to(user)] == [f"to {user}"]
    assert {dm_row(db, i)["status"] for i in ids} == {"sent"}
    # 429s from the stand-in's global limit (this test's pacer is set fast) were waited out.
    assert len([e for e in standin.sent("POST", MESSAGES) if e.status == 200]) == 30


def test_a_claim_whose_worker_died_is_taken_over_after_the_lease(
    db: Database, discord: DiscordClient, fast, queue
) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    dm_id = queue_dm(db, guild, user, "late but once")
    (dead,) = db.run(outbox.claim_due, 10, 300)
    assert dead.id == dm_id
    # Within the lease nobody else takes it.
    assert deliver(db, discord, fast).claimed == 0
    make_due(db)  # the lease runs out
    assert deliver(db, discord, fast).sent == 1
    # The dead worker wakes up and reports a failure: its claim is no longer valid, so the
    # record of the delivery stands.
    outbox._retry_later(db, dead, 60, "late report")
    row = dm_row(db, dm_id)
    assert row["status"] == "sent" and row["attempts"] == 2 and row["last_error"] is None
    assert len(messages_to(user)) == 1


# -- pacing ----------------------------------------------------------------------------------------------
def test_the_pacer_hands_out_slots_no_faster_than_the_rate_whoever_asks(db: Database) -> None:
    results: list[tuple[float, float]] = []
    lock = threading.Lock()

    def reserve() -> None:
        for _ in range(5):
            got = db.run(outbox.reserve_slots, 4, 100.0)
            with lock:
                results.append(got)

    threads = [threading.Thread(target=reserve) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    starts = sorted(start for start, _ in results)
    # 20 reservations of 4 slots at 100 per second: each begins at least 4 / 100 s after the
    # one before, so no two workers' slots overlap.
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.04 - 1e-6
    assert db.run(outbox.booked_ahead_s) > 0


def test_every_bot_call_takes_a_slot_of_the_shared_budget_and_webhooks_do_not(discord: DiscordClient) -> None:
    # Discord's global limit counts every request with the bot token, so DMs, channel opens and
    # any other bot call (role grants, later) must draw on one budget; interaction webhooks
    # are not counted by Discord and are not paced.
    slots: list[str] = []
    client = discord.with_pacer(lambda: slots.append("slot"))
    channel = client.create_dm("700000000000000999")
    client.send_message(channel, {"content": "hi"})
    client.bulk_overwrite_commands("123456789012345678", [])
    assert len(slots) == 3
    client.edit_original("123456789012345678", "a-token", {"content": "done"})
    assert len(slots) == 3
    # A request sent again after a 429 is a request too.
    standin.inject(
        "POST", MESSAGES, 429, {"message": "slow down", "retry_after": 0.05, "global": False, "code": 0}
    )
    client.send_message(channel, {"content": "again"})
    assert len(slots) == 5


def test_the_containers_client_is_paced_by_the_bucket_every_worker_shares(
    db: Database, discord: DiscordClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pointsbot.discord import rest as discord_rest
    from pointsbot.platform import config, runtime

    monkeypatch.setattr(runtime, "_database", db)
    monkeypatch.setenv("DISCORD_API_BASE_URL", discord.base_url)
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "test-token")
    config.reset_settings()
    discord_rest.set_client(None)
    try:
        client = discord_rest.get_client()
        before = db.fetchone("SELECT extract(epoch FROM tat)::float8 FROM dm_pacer WHERE id = 1")[0]
        client.create_dm("700000000000000998")
        after = db.fetchone("SELECT extract(epoch FROM tat)::float8 FROM dm_pacer WHERE id = 1")[0]
        assert after > before  # the request took a slot
    finally:
        discord_rest.set_client(None)
        config.reset_settings()


# -- the points DM -------------------------------------------------------------------------------------
def test_each_kind_of_change_gets_a_dm_that_says_what_happened(db: Database, settings) -> None:
    from pointsbot.community import points as ledger

    guild = new_guild(db)
    user = new_member(db, guild)
    common = {"guild_id": guild, "actor_id": 1, "source": "admin_site", "settings": settings}
    db.run(ledger.award, user_id=user, amount=1500, reason="event win", idempotency_key="a", **common)
    typo = db.run(ledger.deduct, user_id=user, amount=1, reason="typo", idempotency_key="d", **common)
    db.run(ledger.set_balance, user_id=user, target=42, reason="reset", idempotency_key="s", **common)
    db.run(ledger.revert, entry_id=typo.entry.id, reason="mistake", idempotency_key="r", **common)
    db.run(ledger.award, user_id=user, amount=5, reason="quiet", idempotency_key="q", silent=True, **common)
    texts = [
        r[0]
        for r in db.fetchall("SELECT content FROM direct_messages WHERE user_id = %s ORDER BY id", (user,))
    ]
    where = f"in **Guild {guild}**"
    assert texts == [
        f"You received **1,500 points** {where}.\nReason: event win\nYour balance is now **1,500 points**.",
        f"**1 point** was taken from your balance {where}.\nReason: typo\nYour balance is now **1,499 points**.",
        f"Your balance {where} was set to **42 points**.\nReason: reset",
        f"An earlier change was undone: **1 point** added back to your balance {where}.\n"
        "Reason: mistake\nYour balance is now **43 points**.",
    ]


def test_out_of_time_mid_batch_the_rest_is_given_back_and_handed_on(
    db: Database, discord: DiscordClient, fast, queue
) -> None:
    guild = new_guild(db)
    users = [new_member(db, guild) for _ in range(10)]
    for user in users:
        queue_dm(db, guild, user)
    slow = fast.with_overrides(dm_rate_per_second=10)  # 0.1 s per request
    report = outbox.deliver_due(db, discord, settings=slow, budget_s=0.35, batch_size=10)
    assert report.stopped == "budget" and report.claimed == 10 and 1 <= report.sent < 10
    rows = db.fetchall("SELECT status, attempts, next_attempt_at <= now() FROM direct_messages ORDER BY id")
    assert [r[:2] for r in rows[: report.sent]] == [("sent", 1)] * report.sent
    # The untried rest: queued, due now, and the claim not counted as a try.
    assert rows[report.sent :] == [("queued", 0, True)] * (10 - report.sent)
    assert [(t.kind, d) for t, d in queue.sent] == [("deliver_dms", 0)]
