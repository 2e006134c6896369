"""The deploy hook (functions/register_commands) speaking CloudFormation's custom resource protocol.

CloudFormation's side is a local HTTP server taking the answer PUT (in AWS a presigned S3 URL);
Discord's side is the project's Discord stand-in served over HTTP; SSM is moto; the schema
hook migrates a real, empty Postgres database.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pointsbot.commands import command_definitions
from pointsbot.commands import sync as commands_sync
from pointsbot.discord.rest import DiscordClient
from pointsbot.ops import deploy_hooks
from pointsbot.platform import runtime, secrets
from pointsbot_local import discord_standin_rest as standin_rest
from pointsbot_local import handlers
from pointsbot_local import pg as local_pg
from pointsbot_local.apigw import LambdaContext
from pointsbot_local.discord_standin import PREFIX, DiscordStandIn, standin

pytestmark = pytest.mark.infra

APP_ID = "100000000000000042"
HASH_PARAMETER = "/pointsbot/test/discord-commands-hash"
COMMANDS_ROUTE = "/applications/{application_id}/commands"
DEFINITIONS = command_definitions()


# --------------------------------------------------------------------- local HTTP servers
@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpStub:
    """A server on 127.0.0.1 running `app(method, path, headers, body) -> (status, headers, body)`."""

    app: Any
    server: ThreadingHTTPServer = field(init=False)

    def __post_init__(self) -> None:
        app = self.app

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = app(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class CloudFormation:
    """Takes the custom resource's answers, as S3 does for CloudFormation's presigned URL."""

    def __init__(self) -> None:
        self.answers: list[Received] = []
        self.fail_next = 0
        self._lock = threading.Lock()
        self.stub = HttpStub(self._app)

    def _app(self, method: str, path: str, headers: dict[str, str], body: bytes):
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return 503, [], b"<Error>SlowDown</Error>"
            self.answers.append(Received(method, path, {k.lower(): v for k, v in headers.items()}, body))
        return 200, [], b""

    def response_url(self) -> str:
        # Shaped like the real thing: a bucket path and a signature in the query string.
        return (
            f"{self.stub.url}/cloudformation-custom-resource-response/{uuid.uuid4().hex}?X-Amz-Signature=abc"
        )

    @property
    def last(self) -> dict[str, Any]:
        return self.answers[-1].json()


@pytest.fixture
def cloudformation() -> Iterator[CloudFormation]:
    receiver = CloudFormation()
    yield receiver
    receiver.stub.close()


@pytest.fixture
def discord() -> Iterator[tuple[DiscordStandIn, str]]:
    """The project's Discord stand-in (with its REST endpoints) over HTTP; yields it and its base URL."""
    standin_rest.reset()

    def app(method: str, path: str, headers: dict[str, str], body: bytes):
        response = standin(method, path, headers, body)
        return response.status, response.headers, response.body

    stub = HttpStub(app)
    yield standin, stub.url + PREFIX
    stub.close()
    standin_rest.reset()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's SSM with the hash parameter as template.yaml creates it."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-east-1")
        ssm.put_parameter(Name=HASH_PARAMETER, Value="none", Type="String")
        yield ssm


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch, discord, aws) -> Iterator[None]:
    """The register_commands function's environment, as template.yaml sets it."""
    _standin, base_url = discord
    monkeypatch.setenv("DISCORD_API_BASE_URL", base_url)
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "test-bot-token")
    monkeypatch.setenv("DISCORD_APPLICATION_ID", APP_ID)
    monkeypatch.setenv("COMMANDS_HASH_PARAMETER", HASH_PARAMETER)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    runtime.reset()
    yield
    runtime.reset()
    secrets.clear_cache()


def event(cloudformation: CloudFormation, request_type: str, resource_type: str = "Custom::DiscordCommands",
          physical_id: str | None = None, **properties: Any) -> dict[str, Any]:  # fmt: skip
    body: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:000000000000:function:register",
        "ResponseURL": cloudformation.response_url(),
        "StackId": "arn:aws:cloudformation:us-east-1:000000000000:stack/pointsbot-test/1",
        "RequestId": uuid.uuid4().hex,
        "LogicalResourceId": "DiscordCommands"
        if resource_type == "Custom::DiscordCommands"
        else "SchemaMigrations",
        "ResourceType": resource_type,
        "ResourceProperties": {"ServiceToken": "x", "LayerVersion": "arn:layer:1", **properties},
    }
    if physical_id is not None:
        body["PhysicalResourceId"] = physical_id
    if request_type == "Update":
        body["OldResourceProperties"] = {"ServiceToken": "x", "LayerVersion": "arn:layer:0", **properties}
    return body


def invoke(event_body: dict[str, Any], timeout_s: float = 300.0) -> Any:
    """The deployed entry point, loaded by file like Lambda does."""
    return handlers.load("register_commands")(event_body, LambdaContext("register_commands", timeout_s))


def overwrites(standin: DiscordStandIn) -> list[Any]:
    return standin.sent("PUT", COMMANDS_ROUTE)


def registered() -> list[str]:
    """The names of the global commands the stand-in now holds for the application."""
    return [c["name"] for c in standin_rest.state.commands.get(APP_ID, [])]


def change_definitions(monkeypatch: pytest.MonkeyPatch, changed: list[dict[str, Any]]) -> None:
    """A new version of the code: the definitions the hook hashes and the sync registers."""
    monkeypatch.setattr(deploy_hooks, "load_definitions", lambda: changed)
    monkeypatch.setattr(commands_sync, "definitions", lambda: [dict(c) for c in changed])


# ---------------------------------------------------------------------------- commands
def test_create_registers_the_commands_and_answers_success(cloudformation, discord, aws, lambda_env) -> None:
    standin, _ = discord
    # When CloudFormation creates the resource
    invoke(event(cloudformation, "Create", ApplicationId=APP_ID))
    # Then Discord got one bulk overwrite with the definitions, as the bot, and holds them
    (put,) = overwrites(standin)
    assert put.path == f"/applications/{APP_ID}/commands"
    assert put.body == DEFINITIONS
    assert registered() == [c["name"] for c in DEFINITIONS]
    assert put.headers["authorization"] == "Bot test-bot-token"
    assert put.headers["user-agent"].startswith("DiscordBot (")
    # And CloudFormation got one answer, PUT with the empty content type the URL is signed for
    (answer,) = cloudformation.answers
    assert answer.method == "PUT" and answer.headers.get("content-type", "") == ""
    body = answer.json()
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == f"discord-commands-{APP_ID}"
    assert body["Data"]["Changed"] == "true" and body["Data"]["Count"] == str(len(DEFINITIONS))
    assert {body["StackId"], body["LogicalResourceId"]} == {
        "arn:aws:cloudformation:us-east-1:000000000000:stack/pointsbot-test/1",
        "DiscordCommands",
    }
    # And the hash of what was registered is kept for the next deploy
    stored = aws.get_parameter(Name=HASH_PARAMETER)["Parameter"]["Value"]
    assert stored == f"{APP_ID}:{deploy_hooks.definitions_hash(DEFINITIONS)}"


def test_update_with_the_same_definitions_does_not_call_discord(cloudformation, discord, lambda_env) -> None:
    standin, _ = discord
    invoke(event(cloudformation, "Create", ApplicationId=APP_ID))
    physical_id = cloudformation.last["PhysicalResourceId"]
    # When a deploy changes code but not the definitions
    invoke(event(cloudformation, "Update", physical_id=physical_id, ApplicationId=APP_ID))
    # Then Discord is not even asked (hash-gated), and CloudFormation still hears back, same resource
    assert len(overwrites(standin)) == 1
    assert len(standin.sent("GET", COMMANDS_ROUTE)) == 1  # the Create's comparison only
    assert cloudformation.last["Status"] == "SUCCESS"
    assert cloudformation.last["Data"]["Changed"] == "false"
    assert cloudformation.last["PhysicalResourceId"] == physical_id


def test_update_with_changed_definitions_overwrites_them(
    cloudformation, discord, lambda_env, monkeypatch
) -> None:
    standin, _ = discord
    invoke(event(cloudformation, "Create", ApplicationId=APP_ID))
    # When a deploy brings one more command
    changed = [*DEFINITIONS, {"name": "ping", "description": "Is the bot there?", "type": 1}]
    change_definitions(monkeypatch, changed)
    invoke(event(cloudformation, "Update", physical_id=f"discord-commands-{APP_ID}", ApplicationId=APP_ID))
    # Then the whole set is overwritten and Discord holds the new one too
    assert [len(e.body) for e in overwrites(standin)] == [len(DEFINITIONS), len(DEFINITIONS) + 1]
    assert registered()[-1] == "ping"
    assert cloudformation.last["Data"] == {
        "Changed": "true",
        "Hash": deploy_hooks.definitions_hash(changed),
        "Count": str(len(changed)),
    }
    assert "+ping" in cloudformation.last["Reason"]


def test_the_hash_ignores_key_order_but_not_content() -> None:
    reordered = [dict(reversed(list(c.items()))) for c in DEFINITIONS]
    assert deploy_hooks.definitions_hash(reordered) == deploy_hooks.definitions_hash(DEFINITIONS)
    renamed = [{**DEFINITIONS[0], "description": "Something else"}, *DEFINITIONS[1:]]
    assert deploy_hooks.definitions_hash(renamed) != deploy_hooks.definitions_hash(DEFINITIONS)


@pytest.mark.parametrize("fault", ["discord-outage", "wrong-token"])
def test_discord_failure_does_not_fail_the_deploy_and_is_retried_next_deploy(
    cloudformation, discord, aws, lambda_env, capsys, monkeypatch, fault
) -> None:
    standin, _ = discord
    if fault == "discord-outage":
        standin.inject("PUT", COMMANDS_ROUTE, 503, {"message": "upstream connect error"})
        expected = "503"
    else:
        monkeypatch.setenv("DISCORD_BOT_TOKEN", "")  # the stand-in, like Discord, refuses it
        runtime.reset()
        expected = "401"
    # When Discord fails the sync
    invoke(event(cloudformation, "Create", ApplicationId=APP_ID))
    # Then CloudFormation hears SUCCESS (the deploy goes on) with the reason spelled out
    answer = cloudformation.last
    assert answer["Status"] == "SUCCESS"
    assert "NOT registered" in answer["Reason"] and expected in answer["Reason"]
    assert answer["Data"]["Changed"] == "false"
    assert registered() == []
    # And the failure is counted in the metric the CommandSyncFailed alarm watches
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    metrics = [m for m in emitted if deploy_hooks.SYNC_FAILED_METRIC in m]
    assert metrics, "no CommandSyncFailed metric was emitted"
    assert metrics[0][deploy_hooks.SYNC_FAILED_METRIC] in (1.0, [1.0])
    assert metrics[0]["service"] == "pointsbot"
    # And nothing was recorded, so the next deploy with the same definitions tries again
    assert aws.get_parameter(Name=HASH_PARAMETER)["Parameter"]["Value"] == "none"
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "test-bot-token")
    runtime.reset()
    invoke(event(cloudformation, "Update", physical_id=answer["PhysicalResourceId"], ApplicationId=APP_ID))
    assert cloudformation.last["Data"]["Changed"] == "true"
    assert registered() == [c["name"] for c in DEFINITIONS]


def test_delete_clears_the_commands(cloudformation, discord, lambda_env) -> None:
    standin, _ = discord
    invoke(event(cloudformation, "Delete", physical_id=f"discord-commands-{APP_ID}", ApplicationId=APP_ID))
    (put,) = overwrites(standin)
    assert put.body == []
    assert cloudformation.last["Status"] == "SUCCESS"
    assert cloudformation.last["PhysicalResourceId"] == f"discord-commands-{APP_ID}"


def test_delete_succeeds_even_when_discord_fails(cloudformation, discord, lambda_env) -> None:
    standin, _ = discord
    standin.inject("PUT", COMMANDS_ROUTE, 502, {"message": "bad gateway"})
    invoke(event(cloudformation, "Delete", physical_id=f"discord-commands-{APP_ID}", ApplicationId=APP_ID))
    # A stack must stay deletable: CloudFormation would otherwise be stuck in DELETE_FAILED.
    assert cloudformation.last["Status"] == "SUCCESS"
    assert "not cleared" in cloudformation.last["Reason"]


def test_bad_input_and_broken_code_answer_failed_never_silence(
    cloudformation, lambda_env, monkeypatch
) -> None:
    invoke(event(cloudformation, "Create", ApplicationId="not-a-number"))
    assert cloudformation.last["Status"] == "FAILED"
    assert "ApplicationId" in cloudformation.last["Reason"]

    invoke(event(cloudformation, "Create", resource_type="Custom::Unknown"))
    assert cloudformation.last["Status"] == "FAILED"

    def broken() -> list[dict[str, Any]]:
        raise ImportError("no module named pointsbot.commands")

    monkeypatch.setattr(deploy_hooks, "load_definitions", broken)
    invoke(event(cloudformation, "Update", physical_id=f"discord-commands-{APP_ID}", ApplicationId=APP_ID))
    answer = cloudformation.last
    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == "ImportError: no module named pointsbot.commands"
    # An Update that fails keeps the resource's identity, so CloudFormation does not replace it.
    assert answer["PhysicalResourceId"] == f"discord-commands-{APP_ID}"
    assert len(cloudformation.answers) == 3


def test_the_answer_is_sent_before_lambda_would_time_out(cloudformation, lambda_env, monkeypatch) -> None:
    release = threading.Event()
    started = threading.Event()

    def slow() -> list[dict[str, Any]]:
        started.set()
        release.wait(30)
        return DEFINITIONS

    monkeypatch.setattr(deploy_hooks, "load_definitions", slow)
    # Given a function with 0.3 s left beyond the safety margin, and a hook that hangs
    context = LambdaContext("register_commands", timeout_s=deploy_hooks.SAFETY_MARGIN_S + 0.3)
    result: dict[str, Any] = {}
    worker = threading.Thread(
        target=lambda: result.update(handlers.load("register_commands")(
            event(cloudformation, "Create", ApplicationId=APP_ID), context)),
    )  # fmt: skip
    worker.start()
    assert started.wait(10)
    # Then CloudFormation hears FAILED while the hook still hangs
    for _ in range(200):
        if cloudformation.answers:
            break
        threading.Event().wait(0.05)
    assert cloudformation.last["Status"] == "FAILED"
    assert "ran out of time" in cloudformation.last["Reason"]
    # And when the hook finishes after all, no second answer goes out
    release.set()
    worker.join(30)
    assert len(cloudformation.answers) == 1
    assert result["Status"] == "FAILED"


def test_the_answer_is_retried_when_s3_stumbles(cloudformation, lambda_env) -> None:
    cloudformation.fail_next = 1
    invoke(
        event(
            cloudformation, "Delete", resource_type="Custom::SchemaMigrations", physical_id="pointsbot-schema"
        )
    )
    assert [a.json()["Status"] for a in cloudformation.answers] == ["SUCCESS"]


def test_real_client_and_ssm_store_are_what_the_default_hooks_build(lambda_env) -> None:
    hooks = deploy_hooks.Hooks()
    client = hooks.discord_client()
    assert isinstance(client, DiscordClient) and client.token == "test-bot-token"
    store = hooks.hash_store()
    assert isinstance(store, deploy_hooks.SsmHashStore) and store.get() == "none"


# ------------------------------------------------------------------------------ schema
@pytest.fixture
def empty_database(pg_admin_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    dsn = local_pg.create_database(pg_admin_dsn, "pb_deploy")
    monkeypatch.setenv("DATABASE_URL", dsn)
    runtime.reset()
    yield dsn
    runtime.reset()
    local_pg.drop_database(pg_admin_dsn, dsn)


def test_schema_hook_applies_the_migrations_shipped_in_the_layer(
    cloudformation, lambda_env, empty_database, monkeypatch, cfn
) -> None:
    monkeypatch.setenv("POINTSBOT_SQL_DIR", str(cfn.root / "layers" / "core" / "pointsbot_sql"))
    newest = max(int(p.name[:3]) for p in (cfn.root / "sql").glob("*.sql"))
    count = len(list((cfn.root / "sql").glob("*.sql")))
    # When the stack is created
    invoke(event(cloudformation, "Create", resource_type="Custom::SchemaMigrations"))
    # Then every migration is applied and CloudFormation hears the schema version
    assert cloudformation.last["Status"] == "SUCCESS", cloudformation.last["Reason"]
    assert cloudformation.last["Data"] == {"Applied": str(count), "SchemaVersion": str(newest)}
    # And the next deploy applies nothing
    invoke(
        event(
            cloudformation, "Update", resource_type="Custom::SchemaMigrations", physical_id="pointsbot-schema"
        )
    )
    assert cloudformation.last["Data"] == {"Applied": "0", "SchemaVersion": str(newest)}
    # And deleting the stack leaves the data alone
    invoke(
        event(
            cloudformation, "Delete", resource_type="Custom::SchemaMigrations", physical_id="pointsbot-schema"
        )
    )
    assert cloudformation.last["Status"] == "SUCCESS"
    assert (
        runtime.get_database().run(lambda conn: conn.execute("SELECT count(*) FROM guilds").fetchone()[0])
        == 0
    )


def test_a_failing_migration_fails_the_deploy(
    cloudformation, lambda_env, empty_database, monkeypatch, tmp_path: Path
) -> None:
    (tmp_path / "001_fine.sql").write_text("CREATE TABLE fine (id int);")
    (tmp_path / "002_broken.sql").write_text("CREATE TABLE broken (id int REFERENCES nowhere (id));")
    monkeypatch.setenv("POINTSBOT_SQL_DIR", str(tmp_path))
    invoke(
        event(
            cloudformation, "Update", resource_type="Custom::SchemaMigrations", physical_id="pointsbot-schema"
        )
    )
    answer = cloudformation.last
    assert answer["Status"] == "FAILED"
    assert "nowhere" in answer["Reason"]
    assert answer["PhysicalResourceId"] == "pointsbot-schema"


def test_an_operator_can_rerun_the_sync_by_hand(cloudformation, discord, aws, lambda_env) -> None:
    standin, _ = discord
    invoke(event(cloudformation, "Create", ApplicationId=APP_ID))
    # Given someone removed the commands on Discord's side since the deploy
    standin_rest.state.commands.clear()
    # When the operator invokes the function directly (aws lambda invoke), with no CloudFormation event
    result = invoke({"action": "sync-commands"})
    # Then the hash gate is bypassed, the sync sees the difference and registers them again
    assert result["Status"] == "SUCCESS" and result["Data"]["Changed"] == "true"
    assert registered() == [c["name"] for c in DEFINITIONS]
    assert len(overwrites(standin)) == 2
    # And a re-run with nothing to do sends nothing; CloudFormation heard only the deploy's answer
    assert invoke({"action": "sync-commands"})["Data"]["Changed"] == "false"
    assert len(overwrites(standin)) == 2
    assert len(cloudformation.answers) == 1
    assert invoke({"action": "drop-tables"})["Status"] == "FAILED"
