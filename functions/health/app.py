"""GET /health (alive, no database) and GET /health/deep (database round trip), for UptimeRobot."""

from __future__ import annotations

import json

from pointsbot.platform import health, runtime


def _answer(status: int, body: dict) -> dict:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", "cache-control": "no-store"},
        "body": json.dumps(body),
    }


def lambda_handler(event: dict, context: object) -> dict:
    path = event.get("rawPath", "")
    if path.rstrip("/").endswith("/health/deep"):
        result = health.deep_check(runtime.get_database())
        return _answer(200 if result.ok else 503, result.as_dict())
    return _answer(200, {"status": "ok"})
