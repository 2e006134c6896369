"""The keep-alive: warms the interactions function with its ping, checks the database, emits
HealthCheck, asks for delivery of DMs left due; and the local scheduler that runs it."""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Any

import boto3
import pytest
from _dm_fixtures import RecordingQueue, new_guild, new_member, queue_dm
from botocore.response import StreamingBody
from botocore.stub import Stubber

from pointsbot.delivery import tasks
from pointsbot.ops import keepalive
from pointsbot.platform import runtime
from pointsbot.platform.db import Database
from pointsbot_local import handlers, scheduler
from pointsbot_local.apigw import LambdaContext


@pytest.fixture
def queue() -> RecordingQueue:
    recording = RecordingQueue([])
    tasks.set_task_queue(recording)
    yield recording
    tasks.set_task_queue(None)


def test_the_ping_is_recognised_and_answered_without_work() -> None:
    assert keepalive.is_keepalive(dict(keepalive.KEEPALIVE_EVENT))
    assert not keepalive.is_keepalive({"rawPath": "/interactions", "body": "{}"})
    assert not keepalive.is_keepalive({"keepalive": "yes"})
    assert keepalive.keepalive_response()["statusCode"] == 200


def test_a_round_warms_checks_and_asks_for_due_dms(db: Database, queue: RecordingQueue) -> None:
    pings: list[dict[str, Any]] = []
    result = keepalive.run(db, warmer=pings.append)
    assert pings == [keepalive.KEEPALIVE_EVENT]
    assert result.healthy and result.warmed and result.dms_due == 0 and not result.delivery_requested
    assert queue.sent == []

    guild = new_guild(db)
    queue_dm(db, guild, new_member(db, guild))
    db.run(
        lambda c: c.execute(
            "INSERT INTO interaction_replies (interaction_id, guild_id, user_id, command, created_at) "
            "VALUES (1, %s, 2, 'balance', now() - interval '2 days'), (2, %s, 2, 'balance', now())",
            (guild, guild),
        )
    )
    result = keepalive.run(db, warmer=pings.append)
    assert result.dms_due == 1 and result.delivery_requested
    assert result.replies_pruned == 1  # the old stored answer; the fresh one stays
    assert [t.kind for t, _ in queue.sent] == ["deliver_dms"]


def test_a_round_reports_a_database_down_and_a_cold_function(queue: RecordingQueue) -> None:
    down = Database("postgresql://nobody@127.0.0.1:9/none", connect_timeout_s=1)

    def broken_warmer(event: dict[str, Any]) -> None:
        raise ConnectionError("invoke failed")

    result = keepalive.run(down, warmer=broken_warmer)
    assert not result.healthy and not result.warmed
    assert "database" in result.error and "warm" in result.error


def _metrics(output: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            record = json.loads(line)
            for metric in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = record[metric["Name"]]
                values[metric["Name"]] = value[0] if isinstance(value, list) else value
    return values


def test_the_function_emits_health_check_1_or_0(
    db: Database, queue: RecordingQueue, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    handler = handlers.load("keepalive")
    keepalive.set_warmer(lambda event: None)
    try:
        monkeypatch.setattr(runtime, "_database", db)
        assert handler({}, LambdaContext("keepalive"))["healthy"] is True
        assert _metrics(capsys.readouterr().out)["HealthCheck"] == 1

        monkeypatch.setattr(
            runtime, "_database", Database("postgresql://nobody@127.0.0.1:9/none", connect_timeout_s=1)
        )
        assert handler({}, LambdaContext("keepalive"))["healthy"] is False
        assert _metrics(capsys.readouterr().out)["HealthCheck"] == 0
    finally:
        keepalive.set_warmer(None)


def test_in_aws_the_warmer_invokes_the_interactions_function_with_the_ping() -> None:
    client = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    body = b'{"statusCode": 200}'
    with Stubber(client) as stub:
        stub.add_response(
            "invoke",
            {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(body), len(body))},
            {"FunctionName": "pointsbot-interactions:live", "InvocationType": "RequestResponse",
             "Payload": json.dumps(keepalive.KEEPALIVE_EVENT).encode()},
        )  # fmt: skip
        answer = keepalive.LambdaWarmer("pointsbot-interactions:live", client)(
            dict(keepalive.KEEPALIVE_EVENT)
        )
        stub.assert_no_pending_responses()
    assert answer == {"statusCode": 200}


# -- the local scheduler ------------------------------------------------------------------------
def test_rate_expressions_are_read_like_eventbridge() -> None:
    assert scheduler.parse_rate("rate(5 minutes)") == 300
    assert scheduler.parse_rate("rate(1 hour)") == 3600
    assert scheduler.parse_rate("rate(2 days)") == 172800
    for bad in ("cron(0 * * * ? *)", "rate(0 minutes)", "rate(5 fortnights)", ""):
        with pytest.raises(ValueError):
            scheduler.parse_rate(bad)


def test_the_scheduler_runs_each_job_and_survives_a_failing_one() -> None:
    ran = threading.Event()

    def failing() -> None:
        raise RuntimeError("boom")

    jobs = [scheduler.Job("fails", 3600, failing), scheduler.Job("works", 3600, ran.set)]
    sched = scheduler.Scheduler(jobs, first_run_after_s=0).start()
    try:
        assert ran.wait(10)
        deadline = time.monotonic() + 10
        while jobs[1].runs < 1 and time.monotonic() < deadline:  # the count follows the run
            time.sleep(0.01)
    finally:
        sched.stop()
    assert jobs[0].runs == 1 and jobs[0].last_error == "RuntimeError: boom"
    assert jobs[1].runs == 1 and jobs[1].last_error is None


def test_the_local_schedules_are_the_sweep_and_the_keepalive() -> None:
    jobs = {job.name: job for job in scheduler.default_jobs("rate(30 minutes)")}
    assert jobs["achievements-sweep"].every_s == 1800 and jobs["keepalive"].every_s == 300
    assert {job.name: job.every_s for job in scheduler.default_jobs("cron(0 3 * * ? *)")}[
        "achievements-sweep"
    ] == 3600
