"""Outbound webhook HTTP, safe against SSRF: which URLs may be called, the signature, the POST.

A webhook URL is chosen by a guild's admin, so the bot must never be made to call into its own
network (the cloud's metadata service, a database, anything private). `check_url` takes an
https URL, reads an IP written in any of the forms a resolver accepts (dotted, decimal, octal,
hex, short, IPv6, v4-mapped), resolves a name once, and refuses it unless every address is a
public unicast one (stdlib `ipaddress`, plus the ranges it calls global but that embed or lead
to private ones). `post` then connects to one of exactly those checked addresses (the name is
not looked up again, so a DNS answer that changes between check and connect cannot steer it),
sends the name for TLS (SNI, certificate check) and the Host header, follows no redirect, and
reads at most `max_response_bytes` of the answer within a short deadline.

Hand-written over the standard library rather than requests/urllib3: pinning the connection to
the checked address means taking over the connect step, which both libraries hide behind their
own resolver and pools; http.client's one `connect` method is the smallest place to do it.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..platform.errors import InvalidInput

SIGNATURE_HEADER = "Pointsbot-Signature"
MAX_URL = 2000
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Sequence[str]]

# Ranges `ipaddress` calls global (or not private) that must still not be called: they are
# multicast, or carry an IPv4 address inside an IPv6 one (NAT64), which is checked on its own.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class UnsafeURL(InvalidInput):
    """A webhook URL the bot must not call; the message says why, for the admin."""

    code = "unsafe_url"


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses outside the public internet may be called, and whether plain http may.
    Deployed code has none (PUBLIC_ONLY); only the local runtime and tests install another, so
    `make run` can show deliveries to a receiver on 127.0.0.1 (set_address_policy)."""

    allowed: frozenset[str] = frozenset()  # addresses (as ipaddress writes them) allowed although not public
    allow_http: bool = False
    ssl_context: ssl.SSLContext | None = None  # e.g. trusting a local receiver's own certificate


PUBLIC_ONLY = AddressPolicy()
_policy = PUBLIC_ONLY


def set_address_policy(policy: AddressPolicy | None) -> None:
    """For the local runtime and tests only (nothing in pointsbot calls it; a test checks)."""
    global _policy
    _policy = policy or PUBLIC_ONLY


def address_policy() -> AddressPolicy:
    return _policy


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (the addresses found once) and what to ask for."""

    url: str
    scheme: str
    host: str  # as sent in Host and SNI (IDNA-encoded; an IPv6 address without brackets)
    port: int
    path: str  # path and query
    addresses: tuple[str, ...]


# -- the check ----------------------------------------------------------------------------------
def blocked_reason(ip: IPAddress) -> str | None:
    """Why `ip` must not be called, or None for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in (ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None):
            if inner is not None:
                why = blocked_reason(inner)
                if why:
                    return why
        if any(ip in net for net in _NAT64):
            return blocked_reason(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (the cloud's metadata service lives there)"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"):
        return "a shared (carrier-grade NAT) address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


_NUMBER = re.compile(r"^(0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*)$")


def legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address `host` names in inet_aton's forms (what resolvers and browsers accept:
    127.0.0.1, 2130706433, 0177.0.0.1, 0x7f.1, 127.1), or None when it is not one."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_NUMBER.match(p) for p in parts):
        return None
    values = []
    for p in parts:
        if p[:2] in ("0x", "0X"):
            values.append(int(p[2:] or "0", 16))
        elif len(p) > 1 and p[0] == "0":
            values.append(int(p, 8))
        else:
            values.append(int(p))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        raise UnsafeURL("The address in the URL is not a valid IPv4 address.")
    number = last
    for i, v in enumerate(head):
        number += v << (24 - 8 * i)
    return ipaddress.IPv4Address(number)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return legacy_ipv4(host)


def system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(info[4][0] for info in infos))


def check_url(url: object, *, resolve: Resolver | None = None, policy: AddressPolicy | None = None) -> Target:
    """The URL as a Target to connect to, or UnsafeURL saying why not (for the admin)."""
    policy = policy or _policy
    if not isinstance(url, str) or not url.strip():
        raise UnsafeURL("The URL is empty.")
    url = url.strip()
    if len(url) > MAX_URL:
        raise UnsafeURL(f"The URL is too long (at most {MAX_URL} characters).")
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise UnsafeURL("The URL has a space or a control character in it.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeURL("The URL is not valid (look at the port and the brackets).") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and policy.allow_http):
        raise UnsafeURL("The URL must start with https:// (webhooks are only sent over TLS).")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("The URL must not carry a user name or password; use the signing secret instead.")
    if parts.fragment:
        raise UnsafeURL("The URL must not have a #fragment.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeURL("The URL has no host name.")
    if port == 0:
        raise UnsafeURL("The URL's port must be between 1 and 65535.")
    port = port or (443 if scheme == "https" else 80)
    literal = _literal(host.split("%", 1)[0] if ":" in host else host)
    if literal is not None:
        addresses = [str(literal)]
        host = str(literal)
    else:
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise UnsafeURL("The URL's host name is not a valid name.") from None
        try:
            addresses = list((resolve or system_resolve)(host, port))
        except (OSError, UnicodeError):
            raise UnsafeURL(f"The host name {host} could not be found (DNS).") from None
        if not addresses:
            raise UnsafeURL(f"The host name {host} could not be found (DNS).")
    checked = []
    for text in addresses:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
        why = None if str(ip) in policy.allowed else blocked_reason(ip)
        if why:
            shown = host if literal is not None else f"{host} ({ip})"
            raise UnsafeURL(
                f"The URL leads to {why}, {shown}; webhooks only go to public internet addresses."
            )
        checked.append(str(ip))
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(url, scheme, host, port, path, tuple(checked))


# -- the signature ------------------------------------------------------------------------------
def sign(secret: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 of "<timestamp>.<body>" under the secret (its UTF-8 text), as hex."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


# -- the POST -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer (refused, timed out, TLS failed)
    body: bytes  # at most max_response_bytes
    error: str | None  # why it failed, for the delivery log (None for a 2xx)
    address: str | None  # the address connected to

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to `address`, with `host` for SNI, the certificate and the Host header."""

    def __init__(self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


_default_context: ssl.SSLContext | None = None


def _context() -> ssl.SSLContext:
    global _default_context
    if _policy.ssl_context is not None:
        return _policy.ssl_context
    if _default_context is None:
        _default_context = ssl.create_default_context()
    return _default_context


def post(
    target: Target,
    body: bytes,
    headers: dict[str, str],
    *,
    connect_timeout_s: float = 3.0,
    total_timeout_s: float = 10.0,
    max_response_bytes: int = 16384,
) -> Answer:
    """POST `body` to the checked target: its addresses in turn until one connects; no redirect
    is followed (a 3xx is an answer like any other), the answer is read for at most
    total_timeout_s and max_response_bytes."""
    started = time.monotonic()
    last_error = "no address to connect to"
    for address in target.addresses:
        if target.scheme == "https":
            conn: http.client.HTTPConnection = _PinnedHTTPS(target.host, target.port, address, connect_timeout_s,
                                                            _context())  # fmt: skip
        else:
            conn = _PinnedHTTP(target.host, target.port, address, connect_timeout_s)
        try:
            try:
                conn.connect()
            except (OSError, ssl.SSLError) as exc:
                last_error = _describe(exc)
                continue
            remaining = total_timeout_s - (time.monotonic() - started)
            if remaining <= 0:
                return Answer(None, b"", "timed out", address)
            conn.sock.settimeout(remaining)
            conn.request("POST", target.path, body=body, headers={**headers, "Connection": "close"})
            response = conn.getresponse()
            received = bytearray()
            while len(received) < max_response_bytes:
                if time.monotonic() - started > total_timeout_s:
                    break
                conn.sock.settimeout(max(0.01, total_timeout_s - (time.monotonic() - started)))
                chunk = (
                    response.read1(max_response_bytes - len(received)) if hasattr(response, "read1") else b""
                )
                if not chunk:
                    break
                received += chunk
            status = response.status
            error = None if 200 <= status < 300 else f"HTTP {status}"
            if 300 <= status < 400:
                error = f"HTTP {status}: redirects are not followed"
            return Answer(status, bytes(received), error, address)
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            return Answer(None, b"", _describe(exc), address)
        finally:
            conn.close()
    return Answer(None, b"", last_error, None)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted: {exc.verify_message}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return f"{type(exc).__name__}: {exc}"[:300]
