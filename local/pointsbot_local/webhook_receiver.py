"""A recording webhook receiver for the local runtime and the tests: HTTPS on 127.0.0.1 with a
certificate made on start (cryptography), every request kept with its headers and body.

Webhooks go only to public addresses (pointsbot.delivery.webhook_http); `address_policy()`
gives the exception that lets deliveries reach this receiver (its address allowed, its
certificate trusted). Only the local runtime and the tests install it; the deployed functions
never do, and no setting can.

`make run` serves it on a free port and prints its URL; `GET <url>/_inspect` lists what came in.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pointsbot.delivery.webhook_http import AddressPolicy

# A name no DNS answers, in the certificate too: tests resolve it to 127.0.0.1 themselves, to see
# that a delivery connects to the address the check found (and sends the name for TLS and Host).
TEST_NAME = "webhooks.pointsbot.test"
# The receiver `make run` started (pointsbot_local.__main__), for the tests that use that stack.
current: WebhookReceiver | None = None


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Behaviour:
    """How the receiver answers: `statuses` in turn (the last repeats), optional extras."""

    statuses: list[int] = field(default_factory=lambda: [200])
    delay_s: float = 0.0
    location: str | None = None  # a Location header (to test that redirects are not followed)
    body: bytes = b'{"ok":true}'


def _certificate(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pointsbot local webhook receiver")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName(TEST_NAME),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "receiver.crt", directory / "receiver.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class WebhookReceiver:
    def __init__(self, port: int = 0) -> None:
        self.received: list[Received] = []
        self.behaviour = Behaviour()
        self._lock = threading.Lock()
        self._count = 0
        self._dir = tempfile.TemporaryDirectory(prefix="pointsbot-receiver-")
        cert, key = _certificate(Path(self._dir.name))
        self.cert_path = cert
        server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_context.load_cert_chain(cert, key)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/_inspect"):
                    with receiver._lock:
                        shown = [{"path": r.path, "headers": r.headers, "body": r.body.decode("utf-8", "replace")}
                                 for r in receiver.received[-100:]]  # fmt: skip
                    self._answer(200, json.dumps(shown, indent=1).encode())
                else:
                    self._answer(404, b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, dict(self.headers.items()), body, time.time())
                    )
                    behaviour = receiver.behaviour
                    status = behaviour.statuses[min(receiver._count, len(behaviour.statuses) - 1)]
                    receiver._count += 1
                if behaviour.delay_s:
                    time.sleep(behaviour.delay_s)
                self._answer(status, behaviour.body, behaviour.location)

            def _answer(self, status: int, body: bytes, location: str | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if location:
                    self.send_header("Location", location)
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(body)

        class Server(ThreadingHTTPServer):
            # TLS is set up in each connection's own thread (a handshake in the accepting thread
            # would hold up every other connection), with room for many waiting connections.
            request_queue_size = 128
            daemon_threads = True

            def finish_request(self, request, client_address) -> None:
                try:
                    request = server_context.wrap_socket(request, server_side=True)
                except (OSError, ssl.SSLError):
                    return
                super().finish_request(request, client_address)

        self.server = Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="webhook-receiver", daemon=True
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/hooks"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._dir.cleanup()

    def answer_with(self, *statuses: int, delay_s: float = 0.0, location: str | None = None,
                    body: bytes = b'{"ok":true}') -> None:  # fmt: skip
        with self._lock:
            self.behaviour = Behaviour(list(statuses) or [200], delay_s, location, body)
            self._count = 0

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
            self._count = 0

    def wait_for(
        self, n: int, timeout_s: float = 10.0, where: Callable[[Received], bool] = lambda r: True
    ) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                found = [r for r in self.received if where(r)]
            if len(found) >= n:
                return found
            time.sleep(0.02)
        return found

    def address_policy(self) -> AddressPolicy:
        """127.0.0.1 allowed, this receiver's certificate trusted (and the public CAs too)."""
        context = ssl.create_default_context()
        context.load_verify_locations(self.cert_path)
        return AddressPolicy(allowed=frozenset({"127.0.0.1"}), allow_http=False, ssl_context=context)
