"""Calls of the API's Lambda handler as API Gateway would make them, in-process or from a
process of its own (for the concurrency tests: Powertools' resolver keeps the current event
per process, as one Lambda container answers one request at a time)."""

from __future__ import annotations

import json
import os
from typing import Any

from pointsbot_local import apigw


def call(method: str, path: str, *, key: str | None = None, body: Any = None, idem: str | None = None,
         headers: dict[str, str] | None = None, raw: bytes | None = None) -> tuple[int, dict, Any]:  # fmt: skip
    from pointsbot.api.app import lambda_handler

    sent = {"host": "api.test", **(headers or {})}
    if key is not None:
        sent["authorization"] = f"Bearer {key}"
    if idem is not None:
        sent["idempotency-key"] = idem
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    if data:
        sent["content-type"] = "application/json"
    result = lambda_handler(apigw.to_event(method, path, sent, data), apigw.LambdaContext("api"))
    text = result.get("body") or ""
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = text
    return result["statusCode"], {k.lower(): v for k, v in (result.get("headers") or {}).items()}, parsed


def call_in_process(database_url: str, barrier, args: tuple, kwargs: dict) -> tuple[int, dict, Any]:
    """In a spawned process: a container of its own on `database_url`, released with the others."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    from pointsbot.platform import runtime

    runtime.reset()
    from pointsbot.api import app  # noqa: F401 - the import (init) is done before the barrier

    barrier.wait(timeout=60)
    return call(*args, **kwargs)


def call_to_queue(database_url: str, barrier, results, args: tuple, kwargs: dict) -> None:
    results.put(call_in_process(database_url, barrier, args, kwargs))
