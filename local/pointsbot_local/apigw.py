"""The one event-to-request adapter: HTTP requests in, API Gateway HTTP API (payload 2.0)
events out, and Lambda proxy results back to HTTP, the way API Gateway does it."""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

_TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml")


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def to_event(
    method: str,
    target: str,
    headers: dict[str, str] | list[tuple[str, str]],
    body: bytes,
    *,
    source_ip: str = "127.0.0.1",
    route_key: str = "$default",
) -> dict:
    parts = urlsplit(target)
    items = headers.items() if isinstance(headers, dict) else headers
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in items:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    content_type = merged.get("content-type", "")
    # API Gateway passes text bodies as text and anything else base64-encoded.
    is_text = body and content_type.startswith(_TEXT_TYPES)
    try:
        text_body = body.decode("utf-8") if is_text else None
    except UnicodeDecodeError:
        text_body = None
    now = time.time()
    event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": merged,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": merged.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method.upper(),
                "path": parts.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if body:
        if text_body is not None:
            event["body"] = text_body
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def from_result(result: object) -> HttpResponse:
    """Turn a handler's return value into HTTP as API Gateway's payload 2.0 format does."""
    if not isinstance(result, dict) or "statusCode" not in result:
        import json

        return HttpResponse(200, [("content-type", "application/json")], json.dumps(result).encode())
    headers = [(k, str(v)) for k, v in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((name, str(v)) for v in values)
    headers.extend(("set-cookie", c) for c in result.get("cookies") or [])
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    return HttpResponse(int(result["statusCode"]), headers, raw)


class LambdaContext:
    """Enough of Lambda's context object for the handlers and Powertools."""

    def __init__(self, function_name: str, timeout_s: float = 30.0) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function_name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = uuid.uuid4().hex
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
