"""Create (or update) the UptimeRobot monitor on the bot's deep health check.

    UPTIMEROBOT_API_KEY=... python infra/uptimerobot.py --url https://<api>/health/deep

The key comes from the environment (not the command line, which shell history keeps); use the
account's "Main API key". Running it again updates the monitor with the same URL instead of
creating a second one. Standard library only, so it runs with any Python 3.11.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

API_BASE = "https://api.uptimerobot.com/v2"
HTTP_MONITOR = 1  # UptimeRobot's monitor type "HTTP(s)": down on a non-2xx/3xx answer or a time-out
KEYWORD_MONITOR = 2
ALERT_WHEN_KEYWORD_MISSING = 2  # keyword_type 2 ("not exists"): alert when the text is missing


class UptimeRobotError(RuntimeError):
    """UptimeRobot refused a call; the message says why (never the API key)."""


@dataclass(frozen=True)
class Monitor:
    id: str
    friendly_name: str
    url: str
    created: bool


class UptimeRobot:
    """The few calls of UptimeRobot's v2 API this script needs (form-encoded POSTs, JSON answers)."""

    def __init__(self, api_key: str, base_url: str = API_BASE, timeout: float = 20.0) -> None:
        if not api_key:
            raise UptimeRobotError("no API key: set UPTIMEROBOT_API_KEY")
        self._api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def call(self, method: str, **fields: Any) -> dict[str, Any]:
        form = {"api_key": self._api_key, "format": "json", **{k: str(v) for k, v in fields.items()}}
        request = urllib.request.Request(  # noqa: S310 - the base URL is UptimeRobot's, or a test's
            f"{self.base_url}/{method}",
            data=urlencode(form).encode(),
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cache-Control": "no-cache"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise UptimeRobotError(f"{method}: HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            raise UptimeRobotError(f"{method}: {exc}") from None
        if answer.get("stat") != "ok":
            error = answer.get("error") or {}
            detail = error.get("message") or error.get("type") or "refused"
            if error.get("parameter_name"):
                detail += f" ({error['parameter_name']})"
            raise UptimeRobotError(f"{method}: {detail}")
        return answer

    def find_monitor(self, url: str) -> dict[str, Any] | None:
        answer = self.call("getMonitors", search=url)
        for monitor in answer.get("monitors") or []:
            if monitor.get("url") == url:
                return monitor
        return None

    def alert_contacts(self) -> list[str]:
        answer = self.call("getAlertContacts")
        return [str(c["id"]) for c in answer.get("alert_contacts") or []]


def ensure_monitor(
    robot: UptimeRobot,
    url: str,
    *,
    name: str,
    interval_s: int = 300,
    keyword: str | None = None,
    alert_contacts: list[str] | None = None,
) -> Monitor:
    """The monitor on `url`, created or brought up to date; alerts go to `alert_contacts` (default: all)."""
    contacts = robot.alert_contacts() if alert_contacts is None else alert_contacts
    fields: dict[str, Any] = {"friendly_name": name, "url": url, "interval": interval_s}
    if contacts:
        # id_threshold_recurrence: alert at once, no repeats.
        fields["alert_contacts"] = "-".join(f"{c}_0_0" for c in contacts)
    monitor_type = KEYWORD_MONITOR if keyword else HTTP_MONITOR
    if keyword:
        fields.update(keyword_type=ALERT_WHEN_KEYWORD_MISSING, keyword_value=keyword)
    existing = robot.find_monitor(url)
    if existing is not None:
        if int(existing.get("type", monitor_type)) != monitor_type:
            raise UptimeRobotError(
                f"a monitor of another type already watches {url} (id {existing['id']}); delete it first"
            )
        robot.call("editMonitor", id=existing["id"], **{k: v for k, v in fields.items() if k != "url"})
        return Monitor(str(existing["id"]), name, url, created=False)
    answer = robot.call("newMonitor", type=monitor_type, **fields)
    return Monitor(str(answer["monitor"]["id"]), name, url, created=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="infra/uptimerobot.py", description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="the stack's HealthUrl output (…/health/deep)")
    parser.add_argument("--name", default=None, help="monitor name (default: pointsbot <host>)")
    parser.add_argument("--interval", type=int, default=300, help="seconds between checks (free plan: 300)")
    parser.add_argument(
        "--keyword", default=None, help='also require this text in the body, e.g. \'"status": "ok"\''
    )
    parser.add_argument("--alert-contact", action="append", default=None,
                        help="alert contact id (repeatable; default: every contact of the account)")  # fmt: skip
    parser.add_argument("--api-base", default=os.environ.get("UPTIMEROBOT_API_URL", API_BASE))
    args = parser.parse_args(argv)
    parts = urlsplit(args.url)
    if parts.scheme != "https" and parts.hostname not in ("127.0.0.1", "localhost"):
        print("uptimerobot: --url must be the https HealthUrl of the stack", file=sys.stderr)
        return 2
    try:
        robot = UptimeRobot(os.environ.get("UPTIMEROBOT_API_KEY", ""), args.api_base)
        monitor = ensure_monitor(
            robot,
            args.url,
            name=args.name or f"pointsbot {parts.hostname}",
            interval_s=args.interval,
            keyword=args.keyword,
            alert_contacts=args.alert_contact,
        )
    except UptimeRobotError as exc:
        print(f"uptimerobot: {exc}", file=sys.stderr)
        return 1
    print(f"{'created' if monitor.created else 'updated'} monitor {monitor.id} on {monitor.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
