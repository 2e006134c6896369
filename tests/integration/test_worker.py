"""The SQS worker: tasks sent through SqsTaskQueue arrive in SQS (moto), the worker handler
reports exactly the failed records (ReportBatchItemFailures), and DM delivery through it sends
each DM once however often its task arrives."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from _dm_fixtures import (
    discord_fixture,
    dm_row,
    fresh_db_fixture,
    messages_to,
    new_guild,
    new_member,
    queue_dm,
)
from moto import mock_aws

from pointsbot.delivery import tasks
from pointsbot.delivery.tasks import SqsTaskQueue, Task
from pointsbot.discord.rest import set_client
from pointsbot.ops import worker
from pointsbot.platform import config, runtime
from pointsbot.platform.db import Database
from pointsbot_local import handlers
from pointsbot_local.apigw import LambdaContext

# Fixtures used by name in this module.
__all__ = ["discord_fixture", "fresh_db_fixture"]
pytestmark = pytest.mark.through_pgbouncer


done: list[dict[str, Any]] = []


def ok_task(task: Task) -> None:
    done.append(task.payload)


def failing_task(task: Task) -> None:
    raise RuntimeError("this task fails")


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    """moto's SQS with the task queue, installed as the process's task queue."""
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        url = client.create_queue(QueueName="pointsbot-test-tasks")["QueueUrl"]
        tasks.set_task_queue(SqsTaskQueue(url, client))
        yield client, url
        tasks.set_task_queue(None)


@pytest.fixture
def test_kinds(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    monkeypatch.setitem(worker.TASK_HANDLERS, "test_ok", (__name__, "ok_task"))
    monkeypatch.setitem(worker.TASK_HANDLERS, "test_fail", (__name__, "failing_task"))
    done.clear()
    return done


def receive(client: Any, url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        got = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
            "Messages", []
        )
        if not got:
            return messages
        messages.extend(got)


def lambda_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The event Lambda's SQS trigger makes of received messages."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:pointsbot-test-tasks",
                "awsRegion": "us-east-1",
            }
            for m in messages
        ]
    }


def run_worker(event: dict[str, Any], timeout_s: float = 60) -> dict[str, Any]:
    return handlers.load("worker")(event, LambdaContext("worker", timeout_s=timeout_s))


def test_sqs_task_queue_sends_what_sqs_delivers(sqs) -> None:
    client, url = sqs
    tasks.get_task_queue().send(Task("deliver_dms", {"why": "test"}), delay_seconds=0)
    (message,) = receive(client, url)
    assert Task.from_json(message["Body"]) == Task("deliver_dms", {"why": "test"})


def test_the_worker_reports_only_the_failed_records(sqs, test_kinds) -> None:
    client, url = sqs
    queue = tasks.get_task_queue()
    queue.send(Task("test_ok", {"n": 1}))
    queue.send(Task("test_fail", {"n": 2}))
    queue.send(Task("test_ok", {"n": 3}))
    queue.send(Task("no_such_kind", {}))
    client.send_message(QueueUrl=url, MessageBody="this is not a task")
    messages = receive(client, url)
    assert len(messages) == 5
    failing = next(m["MessageId"] for m in messages if '"test_fail"' in m["Body"])

    result = run_worker(lambda_event(messages))

    # Only the failing task comes back; an unreadable or unknown task is dropped (logged), not
    # retried until it reaches the dead-letter queue.
    assert result == {"batchItemFailures": [{"itemIdentifier": failing}]}
    assert sorted(p["n"] for p in test_kinds) == [1, 3]


def test_a_batch_that_fails_entirely_is_reported_as_failed(sqs, test_kinds) -> None:
    client, url = sqs
    tasks.get_task_queue().send(Task("test_fail", {}))
    messages = receive(client, url)
    # Reported, not raised: raising would count as a failed invocation (the errors alarm).
    result = run_worker(lambda_event(messages))
    assert result == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}


@pytest.fixture
def wired(db: Database, discord, standin_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """The worker's database and Discord client are the test's."""
    monkeypatch.setattr(runtime, "_database", db)
    monkeypatch.setenv("DISCORD_API_BASE_URL", standin_url)
    config.reset_settings()
    set_client(discord)
    yield db
    set_client(None)
    config.reset_settings()


def test_dm_delivery_through_sqs_and_the_worker_sends_each_dm_once(sqs, wired: Database) -> None:
    db = wired
    client, url = sqs
    guild = new_guild(db)
    users = [new_member(db, guild) for _ in range(3)]
    ids = [queue_dm(db, guild, u, f"hi {u}") for u in users]
    # The delivery request arrives twice (SQS is at-least-once; each enqueue asks again).
    tasks.get_task_queue().send(Task("deliver_dms", {}))
    tasks.get_task_queue().send(Task("deliver_dms", {}))
    messages = receive(client, url)
    assert len(messages) == 2

    assert run_worker(lambda_event(messages)) == {"batchItemFailures": []}
    assert run_worker(lambda_event(messages)) == {"batchItemFailures": []}  # redelivered

    for dm_id, user in zip(ids, users, strict=True):
        assert dm_row(db, dm_id)["status"] == "sent"
        assert [m["content"] for m in messages_to(user)] == [f"hi {user}"]
    # Nothing is left to retry, so the worker asked for no further delivery.
    assert receive(client, url) == []


def test_a_worker_short_of_time_hands_delivery_on_through_the_queue(sqs, wired: Database) -> None:
    db = wired
    client, url = sqs
    guild = new_guild(db)
    user = new_member(db, guild)
    dm_id = queue_dm(db, guild, user, "later")
    tasks.get_task_queue().send(Task("deliver_dms", {}))
    # Ten seconds left: less than the margin delivery keeps before Lambda's limit.
    assert run_worker(lambda_event(receive(client, url)), timeout_s=10) == {"batchItemFailures": []}
    assert dm_row(db, dm_id)["status"] == "queued"
    (handed_on,) = receive(client, url)
    assert json.loads(handed_on["Body"])["kind"] == "deliver_dms"
    assert run_worker(lambda_event([handed_on])) == {"batchItemFailures": []}
    assert dm_row(db, dm_id)["status"] == "sent"


def test_delivery_fails_the_record_when_the_database_is_down(sqs, monkeypatch: pytest.MonkeyPatch) -> None:
    client, url = sqs
    down = Database("postgresql://nobody@127.0.0.1:9/none", connect_timeout_s=1)
    monkeypatch.setattr(runtime, "_database", down)
    tasks.get_task_queue().send(Task("deliver_dms", {}))
    tasks.get_task_queue().send(Task("deliver_dms", {}))
    messages = receive(client, url)
    result = run_worker(lambda_event(messages))
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == sorted(
        m["MessageId"] for m in messages
    )


def test_a_task_failing_its_last_try_is_logged_and_counted_before_the_dead_letter_queue(
    sqs, test_kinds, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pointsbot.platform.observability import metrics

    counted: list[str] = []
    add_metric = metrics.add_metric
    monkeypatch.setattr(metrics, "add_metric", lambda **kw: (counted.append(kw["name"]), add_metric(**kw)))
    client, url = sqs
    tasks.get_task_queue().send(Task("test_fail", {}))
    (message,) = receive(client, url)
    event = lambda_event([message])
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(worker.MAX_RECEIVES - 1)
    assert run_worker(event)["batchItemFailures"]
    assert "TasksDeadLettered" not in counted
    # The last receive before SQS moves it (maxReceiveCount): say which task and why, and count it.
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = str(worker.MAX_RECEIVES)
    assert run_worker(event)["batchItemFailures"]
    (last,) = [r for r in caplog.records if "goes to the dead-letter queue" in r.getMessage()]
    assert (
        last.levelname == "ERROR" and last.kind == "test_fail" and "this task fails" in str(last.exc_info[1])
    )
    assert counted.count("TasksDeadLettered") == 1
