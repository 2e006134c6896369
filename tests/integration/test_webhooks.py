"""Outbound webhooks on real Postgres, delivered over real HTTPS to the local recording receiver:
one outbox row per event from each place events happen (and none without an endpoint, or on
a replay), the signature checked by a verifier written here from docs/api.md alone, retries
with backoff against a failing receiver, giving up after the retry window, switching an
endpoint off after failures in a row, resend, and SSRF at delivery time (the name resolved once,
the checked address connected to, redirects not followed, the answer's size capped)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from types import SimpleNamespace

import psycopg
import pytest
from _dm_fixtures import RecordingQueue, fresh_db_fixture, new_guild, new_member

from pointsbot import ledger
from pointsbot.community import achievement_definitions, points, seasons, store, webhooks
from pointsbot.delivery import tasks, webhook_http
from pointsbot.platform.db import Database
from pointsbot.platform.errors import InvalidInput
from pointsbot_local.webhook_receiver import TEST_NAME, WebhookReceiver

__all__ = ["fresh_db_fixture"]
_keys = itertools.count(1)


@pytest.fixture(scope="module")
def receiver():
    server = WebhookReceiver().start()
    webhook_http.set_address_policy(server.address_policy())
    yield server
    webhook_http.set_address_policy(None)
    server.stop()


@pytest.fixture(autouse=True)
def fresh_receiver(receiver):
    receiver.clear()
    receiver.answer_with(200)
    yield


@pytest.fixture(autouse=True)
def queue():
    recording = RecordingQueue([])
    tasks.set_task_queue(recording)
    yield recording
    tasks.set_task_queue(None)


@pytest.fixture
def fast(settings):
    return settings.with_overrides(webhook_retry_base_s=10, webhook_retry_max_s=40, webhook_timeout_s=2)


def _hook(db: Database, guild: int, url: str, events=tuple(webhooks.EVENTS), resolve=None):
    return db.run(webhooks.create_webhook, guild_id=guild, url=url, events=list(events), description="test",
                  actor_id=None, actor_name="local:admin", resolve=resolve)  # fmt: skip


def _award(db: Database, guild: int, user: int, amount: int = 10, key: str | None = None):
    return db.run(points.award, guild_id=guild, user_id=user, amount=amount, reason="thanks", actor_id=1,
                  actor_name="admin", source="admin_site", idempotency_key=key or f"k{next(_keys)}")  # fmt: skip


def _rows(db: Database, query: str, params=()) -> list[tuple]:
    return db.run(lambda c: c.execute(query, params).fetchall())


def _outbox(db: Database, guild: int) -> list[tuple]:
    return _rows(db, "SELECT event_type, status, attempts FROM webhook_deliveries WHERE guild_id = %s ORDER BY id",
                 (guild,))  # fmt: skip


def _make_due(db: Database) -> None:
    db.run(
        lambda c: c.execute("UPDATE webhook_deliveries SET next_attempt_at = now() WHERE status = 'pending'")
    )


# -- the verifier, written from docs/api.md ("Verifying a delivery") and nothing else --------------
def verify(secret: str, header: str, raw_body: bytes, tolerance_s: int = 300) -> dict:
    """Split "t=<unix seconds>,v1=<hex>" on commas and the first "=", compute HMAC-SHA256 of
    "<t>.<raw body>" with the whole secret (UTF-8) as key, compare in constant time against every
    v1, refuse a timestamp more than five minutes away."""
    items = [part.split("=", 1) for part in header.split(",")]
    timestamp = int(next(v for k, v in items if k == "t"))
    candidates = [v for k, v in items if k == "v1"]
    expected = hmac.new(
        secret.encode("utf-8"), f"{timestamp}.".encode() + raw_body, hashlib.sha256
    ).hexdigest()
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise ValueError("signature mismatch")
    if abs(time.time() - timestamp) > tolerance_s:
        raise ValueError("timestamp outside the tolerance")
    return json.loads(raw_body)


# -- the outbox: one row per event, written with it ---------------------------------------------------
def test_no_endpoint_no_row_and_a_replayed_change_writes_no_second_row(db: Database, receiver) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    _award(db, guild, user)
    assert _outbox(db, guild) == []  # nothing without an endpoint

    _hook(db, guild, receiver.url)
    _award(db, guild, user, key="once")
    _award(db, guild, user, key="once")  # the same operation again (a retried Lambda, a double click)
    assert _outbox(db, guild) == [("entry.created", "pending", 0)]

    other = _hook(db, guild, receiver.url + "/2", events=["purchase.created"])[0]
    _award(db, guild, user)  # the second endpoint does not want entries
    assert len(_outbox(db, guild)) == 2
    assert _rows(db, "SELECT count(*) FROM webhook_deliveries WHERE webhook_id = %s", (other.id,)) == [(0,)]

    db.run(
        webhooks.set_enabled,
        guild_id=guild,
        webhook_id=other.id,
        enabled=False,
        actor_id=None,
        actor_name="t",
    )
    first = _hook(db, guild, receiver.url)  # a third, enabled, wanting everything
    _award(db, guild, user)
    event_ids = _rows(db, "SELECT event_id, count(*) FROM webhook_deliveries GROUP BY event_id "
                      "ORDER BY min(id) DESC LIMIT 1")  # fmt: skip
    assert event_ids[0][1] == 2  # one event, one row per enabled endpoint wanting it, one event id
    assert first[1].startswith("whsec_")


def test_a_rolled_back_change_leaves_no_event(db: Database, receiver) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    _hook(db, guild, receiver.url)

    def award_then_fail(conn):
        points.award(conn, guild_id=guild, user_id=user, amount=5, reason="x", actor_id=1, actor_name="a",
                     source="admin_site", idempotency_key="doomed")  # fmt: skip
        raise InvalidInput("changed my mind")

    with pytest.raises(InvalidInput):
        db.run(award_then_fail)
    assert _outbox(db, guild) == []


def test_each_place_an_event_happens_queues_it(db: Database, receiver, settings) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    _hook(db, guild, receiver.url)
    db.run(achievement_definitions.create_definition, guild, name="Rich", criterion="balance_at_least",
           threshold=100, bonus_points=5)  # fmt: skip
    made = _award(db, guild, user, amount=150)  # entry.created, achievement.earned (+ its bonus entry)
    db.run(points.revert, guild_id=guild, entry_id=made.entries[0].id, reason="oops", actor_id=1,
           actor_name="admin", source="admin_site", idempotency_key="rv")  # fmt: skip
    reward = db.run(store.create_reward, guild_id=guild, actor_id=1, actor_name="admin", kind="item", name="Mug",
                    price=1)  # fmt: skip
    bought = db.run(store.purchase, guild_id=guild, user_id=user, reward_id=reward.id, interaction_id=99001,
                    actor_name="buyer", settings=settings).purchase  # fmt: skip
    db.run(store.purchase, guild_id=guild, user_id=user, reward_id=reward.id, interaction_id=99001,
           actor_name="buyer", settings=settings)  # a second delivery of the same click: nothing new  # fmt: skip
    db.run(store.fulfil, guild_id=guild, purchase_id=bought.id, note="sent", actor_id=1, actor_name="adm")
    again = db.run(store.purchase, guild_id=guild, user_id=user, reward_id=reward.id, interaction_id=99002,
                   actor_name="buyer", settings=settings).purchase  # fmt: skip
    db.run(store.refund, guild_id=guild, purchase_id=again.id, reason="broke", actor_id=1, actor_name="adm")
    kinds = [r[0] for r in _outbox(db, guild)]
    assert kinds == [
        "entry.created", "achievement.earned", "entry.created",  # the award, the achievement, its bonus
        "entry.reverted",
        "entry.created", "purchase.created", "purchase.fulfilled",  # the purchase's entry, then its row
        "entry.created", "purchase.created", "entry.created", "purchase.refunded",  # the refund's entry
    ]  # fmt: skip

    # a purchase event's object is the API's shape of the purchase as it was then
    ((event_id, event_at, data),) = _rows(db, "SELECT event_id, event_at, data FROM webhook_deliveries "
                                             "WHERE event_type = 'purchase.fulfilled'")  # fmt: skip
    sent = json.loads(webhooks.event_body(event_id, "purchase.fulfilled", event_at, guild, data))
    assert sent["data"]["object"] == store.purchase_json(db.run(store.get_purchase, guild, bought.id))
    assert sent["data"]["object"]["state"] == "fulfilled" and sent["id"] == webhooks.event_id_text(event_id)

    # season.ended, once the end run is done; its balance reset sends no entry per member
    season_id = db.run(lambda c: c.execute(
        "INSERT INTO seasons (guild_id, name, starts_at, ends_at, reset_balances) "
        "VALUES (%s, 'S1', now() - interval '2 days', now() - interval '1 hour', TRUE) RETURNING id", (guild,),
    ).fetchone()[0])  # fmt: skip
    before = len(_outbox(db, guild))
    seasons.run_end(db, season_id, client=SimpleNamespace())
    after = _outbox(db, guild)[before:]
    assert [r[0] for r in after] == ["season.ended"]


def test_the_payload_is_the_api_shape_of_the_object_and_signed_as_documented(
    db: Database, receiver, settings
) -> None:
    # Given an endpoint and an award
    guild = new_guild(db)
    user = new_member(db, guild)
    hook, secret = _hook(db, guild, receiver.url)
    made = _award(db, guild, user, amount=42)
    # When the worker delivers
    report = webhooks.deliver_due(db, settings=settings)
    # Then the receiver got one POST that the documented verifier accepts
    assert (report.claimed, report.delivered) == (1, 1)
    (got,) = receiver.wait_for(1)
    event = verify(secret, got.headers["Pointsbot-Signature"], got.body)
    assert event["type"] == "entry.created" and event["guild_id"] == str(guild)
    assert event["id"].startswith("evt_") and got.headers["Pointsbot-Event-Id"] == event["id"]
    assert got.headers["Pointsbot-Event-Type"] == "entry.created"
    assert got.headers["Content-Type"] == "application/json"
    entry = db.run(ledger.get_entry, guild, made.entries[0].id)
    assert event["data"]["object"] == ledger.entry_json(entry)
    assert _outbox(db, guild) == [("entry.created", "delivered", 1)]
    # a tampered body, another secret or an old timestamp fail the same verifier
    with pytest.raises(ValueError, match="mismatch"):
        verify(secret, got.headers["Pointsbot-Signature"], got.body.replace(b"42", b"43"))
    with pytest.raises(ValueError, match="mismatch"):
        verify(webhooks.new_secret(), got.headers["Pointsbot-Signature"], got.body)
    with pytest.raises(ValueError, match="tolerance"):
        verify(secret, got.headers["Pointsbot-Signature"], got.body, tolerance_s=-1)
    assert hook.id


def test_a_failing_receiver_is_retried_with_exponential_backoff_until_it_answers(
    db: Database, receiver, fast
) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    _hook(db, guild, receiver.url)
    _award(db, guild, user)
    receiver.answer_with(500, 503, 200)
    delays = []
    for _ in range(3):
        report = webhooks.deliver_due(db, settings=fast)
        assert report.claimed == 1
        row = _rows(db, "SELECT status, attempts, extract(epoch FROM next_attempt_at - last_attempt_at), last_status "
                    "FROM webhook_deliveries")[0]  # fmt: skip
        delays.append(round(float(row[2])))
        if row[0] == "pending":
            assert webhooks.deliver_due(db, settings=fast).claimed == 0  # not due yet: nothing sent
            _make_due(db)
    assert row[0] == "delivered" and row[1] == 3 and row[3] == 200
    assert delays[:2] == [10, 20]  # base, then doubled
    bodies = {r.body for r in receiver.received}
    assert len(receiver.received) == 3 and len(bodies) == 1  # the same event, byte for byte
    assert len({r.headers["Pointsbot-Event-Id"] for r in receiver.received}) == 1
    assert [webhooks.retry_delay_s(n, fast) for n in range(1, 6)] == [10, 20, 40, 40, 40]  # capped
    (hook,) = db.run(webhooks.list_webhooks, guild)
    assert hook.failures_in_row == 0 and hook.last_success_at is not None


def test_a_delivery_is_given_up_after_the_retry_window(db: Database, receiver, fast) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    _hook(db, guild, receiver.url)
    _award(db, guild, user)
    receiver.answer_with(500)
    db.run(
        lambda c: c.execute(
            "UPDATE webhook_deliveries SET created_at = now() - interval '23 hours 59 minutes 55 s'"
        )
    )
    report = webhooks.deliver_due(db, settings=fast)
    assert (report.failed_attempts, report.given_up) == (1, 1)
    assert _outbox(db, guild) == [("entry.created", "failed", 1)]
    _make_due(db)
    assert webhooks.deliver_due(db, settings=fast).claimed == 0


def test_an_endpoint_failing_in_a_row_is_switched_off_flagged_and_audited(
    db: Database, receiver, fast
) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    hook, _ = _hook(db, guild, receiver.url)
    settings = fast.with_overrides(webhook_disable_after=3)
    receiver.answer_with(500)
    for _ in range(2):
        _award(db, guild, user)
    webhooks.deliver_due(db, settings=settings)  # two failures
    assert db.run(webhooks.get_webhook, guild, hook.id).enabled
    receiver.answer_with(200)
    _award(db, guild, user)
    webhooks.deliver_due(db, settings=settings)  # a success resets the run
    assert db.run(webhooks.get_webhook, guild, hook.id).failures_in_row == 0
    receiver.answer_with(500)
    _make_due(db)
    _award(db, guild, user)
    report = webhooks.deliver_due(db, settings=settings)  # three in a row now
    assert report.disabled == [hook.id]
    off = db.run(webhooks.get_webhook, guild, hook.id)
    assert (off.enabled, off.disabled_reason) == (False, "failures")
    assert db.run(webhooks.disabled_by_failures, guild) == 1
    audited = _rows(db, "SELECT action, actor_name, target FROM admin_audit WHERE guild_id = %s "
                    "AND action = 'webhook.disabled_by_failures'", (guild,))  # fmt: skip
    assert audited == [("webhook.disabled_by_failures", "system", f"webhook:{hook.id}")]
    # switched off: new events are not queued for it, queued ones wait
    queued = len(_outbox(db, guild))
    _award(db, guild, user)
    assert len(_outbox(db, guild)) == queued
    _make_due(db)
    assert webhooks.deliver_due(db, settings=settings).claimed == 0
    # switched on again by an admin: the count starts again and the waiting ones go out
    receiver.answer_with(200)
    db.run(
        webhooks.set_enabled, guild_id=guild, webhook_id=hook.id, enabled=True, actor_id=None, actor_name="t"
    )
    assert webhooks.deliver_due(db, settings=settings).delivered == 3


def test_resend_sends_the_same_event_again_as_a_new_row(db: Database, receiver, settings) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    _, secret = _hook(db, guild, receiver.url)
    _award(db, guild, user)
    webhooks.deliver_due(db, settings=settings)
    (first,) = db.run(webhooks.list_deliveries, guild, db.run(webhooks.list_webhooks, guild)[0].id)
    new_id = db.run(
        webhooks.resend, guild_id=guild, delivery_id=first.id, actor_id=None, actor_name="local:ann"
    )
    assert webhooks.deliver_due(db, settings=settings).delivered == 1
    one, two = receiver.wait_for(2)
    assert verify(secret, two.headers["Pointsbot-Signature"], two.body) == json.loads(one.body)
    again = db.run(webhooks.get_delivery, guild, new_id)
    assert (again.resend_of, again.resent_by, again.event_id, again.status) == (first.id, "local:ann",
                                                                               first.event_id, "delivered")  # fmt: skip
    with pytest.raises(Exception, match="no such delivery"):
        db.run(webhooks.resend, guild_id=new_guild(db), delivery_id=first.id, actor_id=None, actor_name="x")


# -- SSRF at delivery time ----------------------------------------------------------------------------
def test_a_name_is_resolved_once_per_delivery_and_the_checked_address_is_the_one_connected_to(
    db: Database, receiver, settings
) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    url = f"https://{TEST_NAME}:{receiver.port}/hooks"
    _hook(db, guild, url, resolve=lambda host, port: ["127.0.0.1"])
    _award(db, guild, user)
    asked = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]  # no DNS server knows this name: only the checked answer can be used

    assert webhooks.deliver_due(db, settings=settings, resolve=resolve).delivered == 1
    assert asked == [TEST_NAME]
    (got,) = receiver.wait_for(1)
    assert got.headers["Host"] == f"{TEST_NAME}:{receiver.port}"


def test_a_name_that_now_resolves_to_a_private_address_is_not_called(
    db: Database, receiver, settings
) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    url = f"https://{TEST_NAME}:{receiver.port}/hooks"
    _hook(db, guild, url, resolve=lambda host, port: ["93.184.215.14"])  # public when saved
    _award(db, guild, user)
    report = webhooks.deliver_due(db, settings=settings, resolve=lambda host, port: ["10.0.0.7"])  # rebound
    assert report.failed_attempts == 1
    (row,) = _rows(db, "SELECT status, last_status, last_error FROM webhook_deliveries")
    assert row[0] == "pending" and row[1] is None and "private address" in row[2]
    assert receiver.received == []
    with pytest.raises(webhook_http.UnsafeURL, match="loopback"):
        _hook(db, guild, "https://evil.example/", resolve=lambda host, port: ["127.0.0.2"])


def test_redirects_are_not_followed(db: Database, receiver, settings) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    _hook(db, guild, receiver.url)
    _award(db, guild, user)
    receiver.answer_with(302, location=f"https://127.0.0.1:{receiver.port}/elsewhere")
    assert webhooks.deliver_due(db, settings=settings).failed_attempts == 1
    time.sleep(0.2)
    assert [r.path for r in receiver.received] == ["/hooks"]
    (row,) = _rows(db, "SELECT last_status, last_error FROM webhook_deliveries")
    assert row[0] == 302 and "redirects are not followed" in row[1]


def test_the_answer_is_read_only_up_to_the_cap_and_a_slow_receiver_times_out(
    db: Database, receiver, fast
) -> None:
    target = webhook_http.check_url(receiver.url)
    receiver.answer_with(200, body=b"x" * 5_000_000)
    answer = webhook_http.post(target, b"{}", {"Content-Type": "application/json"}, max_response_bytes=1000)
    assert answer.ok and len(answer.body) == 1000

    guild = new_guild(db)
    user = new_member(db, guild)
    _hook(db, guild, receiver.url)
    _award(db, guild, user)
    receiver.answer_with(200, delay_s=4)
    webhooks.deliver_due(db, settings=fast.with_overrides(webhook_timeout_s=1))
    (row,) = _rows(db, "SELECT status, last_error FROM webhook_deliveries")
    assert row == ("pending", "timed out")


def test_the_task_asks_again_for_the_next_retry(db: Database, receiver, fast, queue, monkeypatch) -> None:
    guild = new_guild(db)
    user = new_member(db, guild)
    _hook(db, guild, receiver.url)
    _award(db, guild, user)
    receiver.answer_with(500)
    webhooks.deliver_due(db, settings=fast)
    assert webhooks.request_if_due(db) is True
    (task, delay) = queue.sent[-1]
    assert task.kind == "deliver_webhooks" and 8 <= delay <= 11


def test_a_replayed_api_write_makes_one_event(db: Database, receiver) -> None:
    from _api_client import call

    from pointsbot.community import api_keys
    from pointsbot.platform import runtime

    guild = new_guild(db)
    user = new_member(db, guild)
    _hook(db, guild, receiver.url)
    runtime.reset()
    runtime.set_database(db)
    try:
        key = db.run(
            api_keys.create_key, guild, name="site", scopes=["write"], actor_id=None, actor_name="t"
        ).secret
        body = {"user_id": str(user), "operation": "award", "amount": 3, "reason": "quiz"}
        answers = [call("POST", "/api/v1/entries", key=key, body=body, idem="same-click") for _ in range(3)]
    finally:
        runtime._database = None  # the test's own database stays open for the checks below
    assert [a[0] for a in answers] == [201, 201, 201] and answers[2][1]["idempotent-replayed"] == "true"
    assert _outbox(db, guild) == [("entry.created", "pending", 0)]
    (data,) = _rows(db, "SELECT data FROM webhook_deliveries")[0]
    assert str(data["id"]) == answers[0][2]["entries"][0]["id"]


def test_the_outbox_lookups_are_index_reads_when_many_guilds_have_endpoints(db: Database) -> None:
    # sql/052's comment: each trigger's lookup is a read of webhooks_guild_enabled_idx (so a guild
    # without an endpoint pays an index probe, not a scan); the worker's claim reads the due index.
    def plans(conn) -> tuple[str, str]:
        conn.execute(
            "INSERT INTO guilds (guild_id) SELECT 900000000000000000 + i FROM generate_series(1, 3000) i"
        )
        conn.execute(
            "INSERT INTO webhooks (guild_id, url, secret, events, enabled, disabled_reason) "
            "SELECT 900000000000000000 + i, 'https://example.org/' || i, 'whsec_x', ARRAY['entry.created'], "
            "i % 3 <> 0, CASE WHEN i % 3 = 0 THEN 'admin' END FROM generate_series(1, 3000) i"
        )
        conn.execute(
            "INSERT INTO webhook_deliveries (webhook_id, guild_id, event_id, event_type, data, status, next_attempt_at) "
            "SELECT w.id, w.guild_id, gen_random_uuid(), 'entry.created', '{}', 'delivered', now() - interval '1 day' "
            "FROM webhooks w, generate_series(1, 20)"
        )
        conn.execute("ANALYZE webhooks, webhook_deliveries")
        lookup = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT w.id FROM webhooks w WHERE w.guild_id = %s AND w.enabled AND %s = ANY (w.events)",
            (900000000000000001, "entry.created"),
        ).fetchall())  # fmt: skip
        claim = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id "
            "WHERE d.status IN ('pending', 'sending') AND d.next_attempt_at <= now() AND w.enabled "
            "ORDER BY d.next_attempt_at LIMIT 32 FOR UPDATE OF d SKIP LOCKED"
        ).fetchall())  # fmt: skip
        conn.rollback()
        return lookup, claim

    with psycopg.connect(db.dsn) as conn:
        lookup, claim = plans(conn)
    assert "webhooks_guild_enabled_idx" in lookup and "Seq Scan" not in lookup, lookup
    assert "webhook_deliveries_due_idx" in claim and "Seq Scan on webhook_deliveries" not in claim, claim


def test_the_worker_task_and_the_keepalive_carry_deliveries(db: Database, receiver, queue) -> None:
    from pointsbot.delivery.tasks import Task
    from pointsbot.ops import keepalive, worker
    from pointsbot.platform import runtime

    guild = new_guild(db)
    user = new_member(db, guild)
    _hook(db, guild, receiver.url)
    _award(db, guild, user)
    runtime.reset()
    runtime.set_database(db)
    try:
        # the keep-alive sees a due delivery and asks for the task
        result = keepalive.run(db, warmer=None)
        assert result.webhook_delivery_requested is True
        assert [t.kind for t, _ in queue.sent][-1] == "deliver_webhooks"
        # the worker's task delivers it
        worker.run_task(Task("deliver_webhooks"))
    finally:
        runtime._database = None
    assert _outbox(db, guild) == [("entry.created", "delivered", 1)]
    assert len(receiver.wait_for(1)) == 1
