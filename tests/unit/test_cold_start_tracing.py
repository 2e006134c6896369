"""The interactions function as deployed (`Tracing: Active`, template.yaml's environment) answers
a cold PING without the X-Ray SDK or botocore's session, and still traces once the keep-alive
has warmed the container. Each case is a fresh interpreter, as a Lambda container is."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from nacl.signing import SigningKey

from pointsbot_local.apigw import to_event
from pointsbot_local.keys import KeyPair
from pointsbot_local.lambda_env import function_environment, lambda_environment, trace_header
from pointsbot_local.simulate import signed

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_DIR = ROOT / "functions" / "interactions"
PING = {
    "id": "1300000000000000001",
    "application_id": "100000000000000001",
    "type": 1,
    "token": "t",
    "version": 1,
}
# What a cold PING must not load: the tracer's SDK and what it patches. (botocore's package
# __init__, a few hundred microseconds, is imported by Powertools' own __init__; the SDK proper,
# botocore.session and its clients, is what costs.)
HEAVY = ("aws_xray_sdk", "botocore.session", "botocore.client", "boto3")

# Runs in the fresh interpreter: import the handler as Lambda does, answer the invocations read
# from stdin (each with its trace header), report the answers and the modules loaded after each.
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


def _deployed_env(public_key: str, **extra: str) -> dict[str, str]:
    """template.yaml's environment for the interactions function, and what Lambda adds."""
    env = function_environment(
        "InteractionsFunction",
        parameters={"DiscordApplicationId": "100000000000000001", "DiscordPublicKey": public_key,
                    "DatabaseUrlSecretArn": "arn:aws:secretsmanager:us-east-1:000000000000:secret:db-AbCdEf",
                    "DiscordBotTokenSecretArn": "arn:aws:secretsmanager:us-east-1:000000000000:secret:tk-AbCdEf"},
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
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("REPORT "))


def _signed_ping(keys: KeyPair) -> dict:
    body, headers = signed(PING, keys)
    return {"event": to_event("POST", "/interactions", headers, body), "trace_header": trace_header()}


@pytest.fixture
def keys() -> KeyPair:
    key = SigningKey.generate()
    return KeyPair(key.encode().hex(), key.verify_key.encode().hex())


def test_a_cold_ping_as_deployed_loads_neither_the_xray_sdk_nor_botocore(keys: KeyPair) -> None:
    # Given the function's environment as template.yaml deploys it, tracing active
    env = _deployed_env(keys.public_hex)
    assert env["POWERTOOLS_SERVICE_NAME"] and "AWS_XRAY_DAEMON_ADDRESS" in env
    # When a fresh container imports the handler and answers its first PING
    init, ping = _container(env, [_signed_ping(keys)])
    # Then tracing is on, the PING is answered, and nothing of the tracer was loaded for it
    assert init == {"tracing_enabled": True, "loaded": []}
    assert (ping["status"], ping["body"], ping["loaded"]) == (200, {"type": 1}, [])


def test_once_the_keepalive_warmed_the_container_every_invocation_is_traced(keys: KeyPair) -> None:
    # Given an X-Ray daemon stand-in (UDP) and the deployed environment pointing at it
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(10)
    host, port = daemon.getsockname()
    # (the database is unreachable: the warm-up reports it and goes on, as in an outage)
    env = _deployed_env(keys.public_hex, AWS_XRAY_DAEMON_ADDRESS=f"{host}:{port}",
                        DATABASE_URL="postgresql://bench@127.0.0.1:1/none", DISCORD_BOT_TOKEN="t")  # fmt: skip
    ping = _signed_ping(keys)
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
