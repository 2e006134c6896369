"""The local HTTP server: routes requests to the same handlers Lambda calls.

Routes mirror template.yaml's HTTP API: /interactions, /health, /health/deep, /admin and /api/v1.
Other parts of the local runtime (the Discord stand-in) mount themselves with `mount`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import apigw, handlers

MAX_BODY = 1_048_576  # API Gateway HTTP API's own payload limit is 10 MB; Discord's bodies are small

# (method or "*", path prefix, function name). First match wins.
ROUTES: list[tuple[str, str, str]] = [
    ("POST", "/interactions", "interactions"),
    ("GET", "/health", "health"),
    ("*", "/admin", "admin_site"),
    ("*", "/api/v1", "api"),
]

# Extra in-process apps: prefix -> callable(method, path, headers, body) -> HttpResponse
MOUNTS: dict[str, Callable[[str, str, dict[str, str], bytes], apigw.HttpResponse]] = {}


# Observers of a function's requests: name -> callables(request body, status, answer body), called
# after the answer is made (the Discord stand-in shows the interactions' answers on its page).
OBSERVERS: dict[str, list[Callable[[bytes, int, bytes], None]]] = {}


def observe(name: str, observer: Callable[[bytes, int, bytes], None]) -> None:
    if observer not in OBSERVERS.setdefault(name, []):
        OBSERVERS[name].append(observer)


def mount(prefix: str, app: Callable[[str, str, dict[str, str], bytes], apigw.HttpResponse]) -> None:
    MOUNTS[prefix] = app


def _route(method: str, path: str) -> str | None:
    for route_method, prefix, name in ROUTES:
        if (route_method in ("*", method)) and (path == prefix or path.startswith(prefix + "/")):
            return name
    return None


class _Handler(BaseHTTPRequestHandler):
    server_version = "pointsbot-local"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet by default
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def _send(self, response: apigw.HttpResponse) -> None:
        self.send_response(response.status)
        names = {k.lower() for k, _ in response.headers}
        for name, value in response.headers:
            self.send_header(name, value)
        if "content-length" not in names:
            self.send_header("content-length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _dispatch(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            self._send(apigw.HttpResponse(413, [("content-type", "text/plain")], b"payload too large"))
            return
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        # Longest prefix first, so a more specific mount wins.
        for prefix, app in sorted(MOUNTS.items(), key=lambda item: -len(item[0])):
            if path == prefix or path.startswith(prefix + "/"):
                self._send(app(self.command, self.path, dict(self.headers.items()), body))
                return
        name = _route(self.command, path)
        if name is None or not handlers.available(name):
            self._send(
                apigw.HttpResponse(404, [("content-type", "application/json")], b'{"message":"Not Found"}')
            )
            return
        event = apigw.to_event(self.command, self.path, list(self.headers.items()), body,
                               source_ip=self.client_address[0])  # fmt: skip
        try:
            result = handlers.load(name)(event, apigw.LambdaContext(name))
            response = apigw.from_result(result)
        except Exception:  # what API Gateway does when a function fails
            import traceback

            traceback.print_exc()
            response = apigw.HttpResponse(500, [("content-type", "application/json")],
                                          b'{"message":"Internal Server Error"}')  # fmt: skip
        self._send(response)
        for observer in OBSERVERS.get(name, ()):
            try:
                observer(body, response.status, response.body)
            except Exception:  # an observer is for people looking on; it never breaks a request
                import traceback

                traceback.print_exc()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch


class LocalServer:
    """The HTTP server on a background thread; `url` is where it listens."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, verbose: bool = False) -> None:
        self.httpd = ThreadingHTTPServer((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.verbose = verbose  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="local-http", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
