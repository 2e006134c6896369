"""A stand-in for Discord's HTTP API, served by the local runtime under /discord-api/v10.

It records every request it gets (so tests and people can see DMs, follow-ups and
registrations), answers in Discord's shapes, and can be told to fail on demand (`inject`).
Endpoints are added with `@standin.route(method, "/path/{param}")` by the modules that need
them; the paths are those of ../shared/discord/openapi.json, relative to the API base.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .apigw import HttpResponse

PREFIX = "/discord-api/v10"


@dataclass
class Request:
    method: str
    path: str  # relative to the API base, e.g. /channels/123/messages
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    route: str = ""

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Exchange:
    """One request the stand-in received and what it answered."""

    at: float
    method: str
    path: str
    route: str
    headers: dict[str, str]
    body: Any
    status: int
    response: Any


@dataclass
class Fault:
    method: str
    route: str
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    remaining: int


Handler = Callable[[Request], HttpResponse]


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(
        status,
        [("content-type", "application/json"), *(headers or {}).items()],
        b"" if status == 204 else json.dumps(payload).encode(),
    )


def error_response(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> HttpResponse:
    """Discord's error shape: {"code": 50007, "message": "Cannot send messages to this user"}."""
    return json_response(status, {"code": code, "message": message}, headers)


class DiscordStandIn:
    def __init__(self) -> None:
        self._routes: list[tuple[str, str, re.Pattern[str], Handler]] = []
        self._faults: list[Fault] = []
        self.exchanges: list[Exchange] = []
        self.lock = threading.RLock()
        self._next_id = int(time.time() * 1000 - 1_420_070_400_000) << 22

    # -- building ------------------------------------------------------------------------
    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")

        def register(handler: Handler) -> Handler:
            self._routes.append((method.upper(), pattern, regex, handler))
            return handler

        return register

    def snowflake(self) -> str:
        """A new id in Discord's format (a string of digits)."""
        with self.lock:
            self._next_id += 1
            return str(self._next_id)

    # -- controlling -----------------------------------------------------------------------
    def inject(
        self,
        method: str,
        route: str,
        status: int,
        body: dict[str, Any] | None = None,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Make the next `times` requests to `route` (a pattern as registered) fail."""
        with self.lock:
            self._faults.append(Fault(method.upper(), route, status, body or {}, headers or {}, times))

    def clear(self) -> None:
        with self.lock:
            self._faults.clear()
            self.exchanges.clear()

    def sent(self, method: str | None = None, route: str | None = None) -> list[Exchange]:
        with self.lock:
            return [
                e
                for e in self.exchanges
                if (method is None or e.method == method.upper()) and (route is None or e.route == route)
            ]

    # -- serving ---------------------------------------------------------------------------
    def _fault_for(self, method: str, route: str) -> Fault | None:
        with self.lock:
            for fault in self._faults:
                if fault.method == method and fault.route == route and fault.remaining > 0:
                    fault.remaining -= 1
                    return fault
        return None

    def handle(self, request: Request) -> HttpResponse:
        for method, pattern, regex, handler in self._routes:
            match = regex.match(request.path)
            if match and method == request.method:
                request.params, request.route = match.groupdict(), pattern
                fault = self._fault_for(method, pattern)
                if fault is not None:
                    return json_response(fault.status, fault.body, fault.headers)
                return handler(request)
        return error_response(404, 0, "404: Not Found")

    def __call__(self, method: str, target: str, headers: dict[str, str], body: bytes) -> HttpResponse:
        parts = urlsplit(target)
        path = parts.path[len(PREFIX) :] if parts.path.startswith(PREFIX) else parts.path
        request = Request(
            method.upper(),
            path or "/",
            dict(parse_qsl(parts.query)),
            {k.lower(): v for k, v in headers.items()},
            body,
        )
        try:
            response = self.handle(request)
        except (ValueError, KeyError) as exc:  # a malformed request body: Discord answers 400
            response = error_response(400, 50109, f"The request body contains invalid JSON. ({exc})")
        try:
            shown_body: Any = json.loads(body) if body else None
        except ValueError:
            shown_body = body.decode("utf-8", "replace")
        try:
            shown_response: Any = json.loads(response.body) if response.body else None
        except ValueError:
            shown_response = response.body.decode("utf-8", "replace")
        with self.lock:
            self.exchanges.append(
                Exchange(
                    time.time(),
                    request.method,
                    request.path,
                    request.route,
                    request.headers,
                    shown_body,
                    response.status,
                    shown_response,
                )
            )
        return response


# The process's stand-in; the local runtime mounts it at PREFIX.
standin = DiscordStandIn()
