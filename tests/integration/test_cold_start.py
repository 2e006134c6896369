"""The interactions function as deployed (template.yaml's environment, `Tracing: Active`, secrets
by reference) on a cold start: the first PING loads neither the X-Ray SDK nor botocore's
session, the first command reads its secrets and answers without boto3, and the container
traces once the keep-alive has warmed it. Each case is a fresh interpreter, as a Lambda
container is (timings live in bench/bench_interactions.py, not here)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from _command_helpers import seed
from nacl.signing import SigningKey

from pointsbot_local.apigw import to_event
from pointsbot_local.keys import KeyPair
from pointsbot_local.lambda_env import function_environment, lambda_environment, trace_header
from pointsbot_local.simulate import command_payload, message_text, signed

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_DIR = ROOT / "functions" / "interactions"
GUILD, MEMBER = "1300000000000000100", "1300000000000000101"
DB_ARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:pointsbot-dev-database-AbCdEf"
TOKEN_ARN = "arn:aws:secretsmanager:us-east-1:000000000000:secret:pointsbot-dev-bot-token-AbCdEf"
PING = {
    "id": "1300000000000000001",
    "application_id": "100000000000000001",
    "type": 1,
    "token": "t",
    "version": 1,
}
# What a cold answer must not load: the tracer's SDK, and botocore's session and clients (what
# boto3 costs). botocore's package __init__, a few hundred microseconds, is imported by
# Powertools' own __init__ for its user-agent hook; that one is not counted.
HEAVY = ("aws_xray_sdk", "botocore.session", "botocore.client", "boto3")

# Runs in the fresh interpreter: import the handler as Lambda does, answer the invocations read
# from stdin (each under its trace header), report the answers and the modules loaded after each.
CONTAINER = """
import json, os, sys
sys.path.insert(0, {function_dir!r})
from pointsbot.platform import observability
import app

class Context:
    function_name = "pointsbot-dev-InteractionsFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:pointsbot-dev-InteractionsFunction"
    aws_request_id = "cold"

reports = [{{"tracing_enabled": observability.tracing_enabled(),
             "loaded": [m for m in {heavy!r} if m in sys.modules]}}]
for invocation in json.loads(sys.stdin.read()):
    os.environ["_X_AMZN_TRACE_ID"] = invocation["trace_header"]
    answer = app.lambda_handler(invocation["event"], Context())
    reports.append({{"status": answer["statusCode"], "body": json.loads(answer["body"]),
                    "loaded": [m for m in {heavy!r} if m in sys.modules]}})
print("REPORT " + json.dumps(reports))
"""


@pytest.fixture
def keys() -> KeyPair:
    key = SigningKey.generate()
    return KeyPair(key.encode().hex(), key.verify_key.encode().hex())


@pytest.fixture
def secrets_manager(database_url: str) -> Iterator[str]:
    """Secrets Manager's GetSecretValue over HTTP for the template's two secrets (the signature
    itself is checked in tests/infra/test_aws_signed.py)."""
    values = {DB_ARN: database_url, TOKEN_ARN: "cold-bot-token"}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            asked = json.loads(self.rfile.read(int(self.headers["content-length"])))
            found = (
                self.headers["x-amz-target"] == "secretsmanager.GetSecretValue"
                and asked["SecretId"] in values
            )
            reply = {"ARN": asked["SecretId"], "SecretString": values[asked["SecretId"]]} if found else {
                "__type": "ResourceNotFoundException"}  # fmt: skip
            payload = json.dumps(reply).encode()
            self.send_response(200 if found else 400)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _deployed_env(public_key: str, **extra: str) -> dict[str, str]:
    """template.yaml's environment for the interactions function, and what Lambda adds."""
    env = function_environment(
        "InteractionsFunction",
        parameters={"DiscordApplicationId": "100000000000000001", "DiscordPublicKey": public_key,
                    "DatabaseUrlSecretArn": DB_ARN, "DiscordBotTokenSecretArn": TOKEN_ARN},
        resources={"TaskQueue": "https://sqs.us-east-1.amazonaws.com/000000000000/pointsbot-dev-tasks"},
    )  # fmt: skip
    env.update(
        lambda_environment("InteractionsFunction"), LAMBDA_TASK_ROOT=str(FUNCTION_DIR), PATH="/usr/bin:/bin"
    )
    env.update(extra)
    return env


def _container(env: dict[str, str], invocations: list[dict]) -> list[dict]:
    code = CONTAINER.format(function_dir=str(FUNCTION_DIR), heavy=HEAVY)
    result = subprocess.run([sys.executable, "-c", code], input=json.dumps(invocations), env=env,
                            capture_output=True, text=True, timeout=120, cwd=ROOT)  # fmt: skip
    lines = [line for line in result.stdout.splitlines() if line.startswith("REPORT ")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("REPORT "))


def _invocation(keys: KeyPair, payload: dict) -> dict:
    body, headers = signed(payload, keys)
    return {"event": to_event("POST", "/interactions", headers, body), "trace_header": trace_header()}


def test_a_cold_ping_as_deployed_loads_neither_the_xray_sdk_nor_botocore(keys: KeyPair) -> None:
    # Given the function's environment as template.yaml deploys it, tracing active
    env = _deployed_env(keys.public_hex)
    assert env["POWERTOOLS_SERVICE_NAME"] and "AWS_XRAY_DAEMON_ADDRESS" in env
    # When a fresh container imports the handler and answers its first PING
    init, ping = _container(env, [_invocation(keys, PING)])
    # Then tracing is on, the PING is answered, and nothing of the tracer was loaded for it
    assert init == {"tracing_enabled": True, "loaded": []}
    assert (ping["status"], ping["body"], ping["loaded"]) == (200, {"type": 1}, [])


def test_a_cold_first_command_reads_its_secrets_and_answers_without_boto3(
    keys: KeyPair, secrets_manager: str, db, settings
) -> None:
    # Given a member with a balance, and the database URL only as the template gives it: a
    # Secrets Manager reference (the service at a stand-in's address)
    seed(db, settings, GUILD, MEMBER, 1234)
    env = _deployed_env(keys.public_hex, AWS_ENDPOINT_URL_SECRETS_MANAGER=secrets_manager)
    assert "DATABASE_URL" not in env and env["DATABASE_URL_SECRET_ARN"] == DB_ARN
    # When a fresh container's first invocation is /balance
    _, answer = _container(
        env, [_invocation(keys, command_payload("balance", user_id=MEMBER, guild_id=GUILD))]
    )
    # Then the balance was read through the secret, and neither boto3 nor the tracer was loaded
    assert answer["status"] == 200 and "1,234" in message_text(answer["body"]["data"]), answer
    assert answer["loaded"] == []


def test_once_the_keepalive_warmed_the_container_every_invocation_is_traced(keys: KeyPair) -> None:
    # Given an X-Ray daemon stand-in (UDP) and the deployed environment pointing at it
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(10)
    host, port = daemon.getsockname()
    # (the database is unreachable: the warm-up reports it and goes on, as in an outage)
    env = _deployed_env(keys.public_hex, AWS_XRAY_DAEMON_ADDRESS=f"{host}:{port}",
                        DATABASE_URL="postgresql://cold@127.0.0.1:1/none", DISCORD_BOT_TOKEN="t")  # fmt: skip
    ping = _invocation(keys, PING)
    # When the keep-alive's ping warms a fresh container, then a PING arrives
    _, warmed, answered = _container(
        env, [{"event": {"keepalive": True}, "trace_header": trace_header()}, ping]
    )
    # Then the tracer was made by the warm-up, off any member's clock
    assert warmed["body"] == {"keepalive": "ok"} and "aws_xray_sdk" in warmed["loaded"]
    assert (answered["status"], answered["body"]) == (200, {"type": 1})
    # and the PING's invocation reached the daemon as Powertools' handler subsegment, in its trace
    root = ping["trace_header"].split(";")[0].removeprefix("Root=")
    subsegments = []
    try:
        while not any(s.get("trace_id") == root for s in subsegments):
            datagram, _ = daemon.recvfrom(65536)
            subsegments += [json.loads(part) for part in datagram.decode().splitlines()[1:]]
    except TimeoutError:
        pass
    finally:
        daemon.close()
    traced = [s for s in subsegments if s.get("trace_id") == root]
    assert [s["name"] for s in traced] == ["## _handle"], subsegments
    assert traced[0]["annotations"]["Service"] == "pointsbot"
