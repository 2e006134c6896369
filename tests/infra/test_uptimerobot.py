"""infra/uptimerobot.py against a local server standing in for UptimeRobot's v2 API (no real network)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs

import pytest

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "uptimerobot.py"
KEY = "u1234567-0123456789abcdef"
HEALTH = "https://abc123.execute-api.eu-west-1.amazonaws.com/health/deep"


class FakeUptimeRobot:
    """Keeps monitors like UptimeRobot does and answers in its shapes; checks the API key."""

    def __init__(self) -> None:
        self.monitors: dict[int, dict[str, Any]] = {}
        self.calls: list[tuple[str, dict[str, str], str]] = []
        self.contacts = [{"id": "0993765", "friendly_name": "ops@example.org", "type": 2}]
        self._next = 777_000_001
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
                method = self.path.rsplit("/", 1)[-1]
                robot.calls.append((method, form, self.headers.get("content-type", "")))
                answer = robot.answer(method, form)
                payload = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v2"

    def answer(self, method: str, form: dict[str, str]) -> dict[str, Any]:
        if form.get("api_key") != KEY:
            return {"stat": "fail", "error": {"type": "invalid_parameter", "parameter_name": "api_key",
                                              "passed_value": form.get("api_key")}}  # fmt: skip
        if method == "getAlertContacts":
            return {"stat": "ok", "alert_contacts": self.contacts}
        if method == "getMonitors":
            found = [m for m in self.monitors.values() if form.get("search", "") in m["url"]]
            return {
                "stat": "ok",
                "pagination": {"offset": 0, "limit": 50, "total": len(found)},
                "monitors": found,
            }
        if method == "newMonitor":
            if not form.get("url") or not form.get("friendly_name") or not form.get("type"):
                return {"stat": "fail", "error": {"type": "missing_parameter"}}
            monitor_id, self._next = self._next, self._next + 1
            self.monitors[monitor_id] = {**form, "id": monitor_id, "type": int(form["type"]), "status": 1}
            return {"stat": "ok", "monitor": {"id": monitor_id, "status": 1}}
        if method == "editMonitor":
            monitor = self.monitors.get(int(form["id"]))
            if monitor is None:
                return {"stat": "fail", "error": {"type": "not_found"}}
            monitor.update({k: v for k, v in form.items() if k not in ("api_key", "format", "id")})
            return {"stat": "ok", "monitor": {"id": monitor["id"]}}
        return {"stat": "fail", "error": {"type": "invalid_method"}}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def robot() -> Iterator[FakeUptimeRobot]:
    fake = FakeUptimeRobot()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("infra_uptimerobot", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run_cli(robot: FakeUptimeRobot, *args: str, key: str = KEY) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "UPTIMEROBOT_API_KEY": key, "UPTIMEROBOT_API_URL": robot.url}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_the_script_creates_a_monitor_on_the_deep_health_check(robot) -> None:
    # When the operator runs the script with the stack's HealthUrl
    result = run_cli(robot, "--url", HEALTH)
    # Then one HTTP(s) monitor watches it every 5 minutes and alerts the account's contacts
    assert result.returncode == 0, result.stderr
    (monitor,) = robot.monitors.values()
    assert monitor["url"] == HEALTH
    assert monitor["type"] == 1
    assert monitor["interval"] == "300"
    assert monitor["friendly_name"] == "pointsbot abc123.execute-api.eu-west-1.amazonaws.com"
    assert monitor["alert_contacts"] == "0993765_0_0"
    assert f"created monitor {monitor['id']}" in result.stdout
    # And every call was a form-encoded POST carrying the key and asking for JSON
    assert all(ct == "application/x-www-form-urlencoded" and form["format"] == "json"
               for _method, form, ct in robot.calls)  # fmt: skip
    # And the key is never printed
    assert KEY not in result.stdout + result.stderr


def test_running_it_again_updates_instead_of_duplicating(robot) -> None:
    assert run_cli(robot, "--url", HEALTH).returncode == 0
    second = run_cli(robot, "--url", HEALTH, "--name", "points prod", "--interval", "600")
    assert second.returncode == 0, second.stderr
    (monitor,) = robot.monitors.values()
    assert monitor["friendly_name"] == "points prod" and monitor["interval"] == "600"
    assert "updated monitor" in second.stdout
    assert [m for m, _f, _c in robot.calls].count("newMonitor") == 1


def test_keyword_monitor_alerts_when_the_ok_status_is_missing(robot, script) -> None:
    client = script.UptimeRobot(KEY, robot.url)
    monitor = script.ensure_monitor(client, HEALTH, name="pb", keyword='"status": "ok"', alert_contacts=[])
    stored = robot.monitors[int(monitor.id)]
    assert stored["type"] == 2
    assert stored["keyword_type"] == "2" and stored["keyword_value"] == '"status": "ok"'
    assert "alert_contacts" not in stored
    # A different kind of monitor already on the URL is not silently changed
    with pytest.raises(script.UptimeRobotError, match="another type"):
        script.ensure_monitor(client, HEALTH, name="pb", alert_contacts=[])


def test_a_wrong_key_is_a_clear_error_and_changes_nothing(robot) -> None:
    result = run_cli(robot, "--url", HEALTH, key="wrong-key")
    assert result.returncode == 1
    assert "invalid_parameter (api_key)" in result.stderr
    assert "wrong-key" not in result.stderr and "Traceback" not in result.stderr
    assert robot.monitors == {}


def test_missing_key_and_non_https_url_are_refused_before_any_call(robot) -> None:
    assert run_cli(robot, "--url", HEALTH, key="").returncode == 1
    assert run_cli(robot, "--url", "http://example.org/health/deep").returncode == 2
    assert robot.calls == []
