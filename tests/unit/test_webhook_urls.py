"""Webhook URLs and SSRF: what pointsbot.delivery.webhook_http lets the bot call, and what not.

Every address form a resolver or a browser accepts for a private, loopback, link-local, CGNAT,
multicast, unspecified or metadata address is refused, in IPv4 and IPv6 (v4-mapped, 6to4,
NAT64 included), as are DNS names that resolve to one, whatever else they resolve to."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

from pointsbot.delivery import webhook_http
from pointsbot.delivery.webhook_http import AddressPolicy, UnsafeURL, check_url, legacy_ipv4

ROOT = Path(__file__).resolve().parents[2]


def _no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"{host} must not be looked up: it is an address already")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        # IPv4 ranges
        ("https://127.0.0.1/hook", "loopback"),
        ("https://127.255.255.254/", "loopback"),
        ("https://10.1.2.3/", "private"),
        ("https://172.16.0.1/", "private"),
        ("https://172.31.255.255/", "private"),
        ("https://192.168.0.10/", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),  # the metadata service
        ("https://169.254.0.1/", "link-local"),
        ("https://100.64.0.1/", "carrier-grade"),
        ("https://100.127.255.254/", "carrier-grade"),
        ("https://224.0.0.1/", "multicast"),
        ("https://239.255.255.250/", "multicast"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://0.1.2.3/", "reserved|private"),
        ("https://255.255.255.255/", "reserved|private"),
        ("https://198.18.0.1/", "reserved|private"),  # benchmarking
        ("https://192.0.2.1/", "reserved|private"),  # documentation
        # IPv4 in the other forms resolvers accept
        ("https://2130706433/", "loopback"),  # decimal
        ("https://0177.0.0.1/", "loopback"),  # octal
        ("https://017700000001/", "loopback"),
        ("https://0x7f000001/", "loopback"),  # hex
        ("https://0x7f.0.0.1/", "loopback"),
        ("https://0x7f.1/", "loopback"),
        ("https://127.1/", "loopback"),  # short form
        ("https://0xa9.0xfe.0xa9.0xfe/", "link-local"),  # 169.254.169.254 in hex
        ("https://2852039166/", "link-local"),  # 169.254.169.254 in decimal
        ("https://012.0.0.1/", "private"),  # 10.0.0.1 in octal
        ("https://127.0.0.1./", "loopback"),  # trailing dot
        # IPv6
        ("https://[::1]/", "loopback"),
        ("https://[::]/", "unspecified"),
        ("https://[fe80::1]/", "link-local"),
        ("https://[fe80::1%25eth0]/", "link-local"),
        ("https://[fc00::1]/", "private"),
        ("https://[fd00:ec2::254]/", "private"),  # AWS's IPv6 metadata address
        ("https://[ff02::1]/", "multicast"),
        ("https://[::ffff:127.0.0.1]/", "loopback"),  # v4-mapped
        ("https://[::ffff:7f00:1]/", "loopback"),
        ("https://[::ffff:169.254.169.254]/", "link-local"),
        ("https://[::ffff:10.0.0.1]/", "private"),
        ("https://[2002:7f00:1::]/", "loopback"),  # 6to4 of 127.0.0.1
        ("https://[2002:a9fe:a9fe::1]/", "link-local"),  # 6to4 of the metadata address
        ("https://[64:ff9b::a9fe:a9fe]/", "link-local"),  # NAT64 of the metadata address
        ("https://[64:ff9b::7f00:1]/", "loopback"),
        ("https://[::127.0.0.1]/", "reserved|private|loopback"),  # IPv4-compatible (deprecated)
    ],
)
def test_addresses_outside_the_public_internet_are_refused(url: str, words: str) -> None:
    with pytest.raises(UnsafeURL) as refused:
        check_url(url, resolve=_no_dns)
    assert re.search(words, refused.value.message), refused.value.message
    assert "public internet" in refused.value.message


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("192.168.257", "192.168.1.1"),
        ("0x7F.0X0.0.1", "127.0.0.1"),
        ("8.8.8.8", "8.8.8.8"),
    ],
)
def test_legacy_ipv4_forms_are_read_as_inet_aton_reads_them(text: str, address: str) -> None:
    assert legacy_ipv4(text) == ipaddress.IPv4Address(address)


def test_names_that_are_not_numbers_are_not_addresses() -> None:
    for name in ("example.com", "0x7g.1", "1.2.3.4.5", "127.0.0.1a", "a.1"):
        assert legacy_ipv4(name) is None


@pytest.mark.parametrize(
    ("answers", "words"),
    [
        (["127.0.0.1"], "loopback"),
        (["93.184.215.14", "10.0.0.5"], "private"),  # one bad answer is enough
        (["::1"], "loopback"),
        (["169.254.169.254"], "link-local"),
        (["::ffff:192.168.1.1"], "private"),
    ],
)
def test_a_name_that_resolves_to_a_refused_address_is_refused(answers: list[str], words: str) -> None:
    with pytest.raises(UnsafeURL, match=words) as refused:
        check_url("https://hooks.example.org/x", resolve=lambda host, port: answers)
    assert "hooks.example.org" in refused.value.message


def test_localhost_through_the_system_resolver_is_refused() -> None:
    for url in ("https://localhost/hook", "https://LOCALHOST./hook", "https://localhost:8443/"):
        with pytest.raises(UnsafeURL, match="loopback"):
            check_url(url)


def test_a_name_that_does_not_resolve_is_refused_with_words() -> None:
    def nxdomain(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(UnsafeURL, match="could not be found"):
        check_url("https://nowhere.invalid/", resolve=nxdomain)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://93.184.215.14/", "https://"),
        ("ftp://93.184.215.14/", "https://"),
        ("//93.184.215.14/", "https://"),
        ("https://user:pw@93.184.215.14/", "user name or password"),
        ("https://93.184.215.14/#frag", "fragment"),
        ("https:///nohost", "no host"),
        ("https://93.184.215.14:99999/", "not valid"),
        ("https://93.184.215.14:0/", "port"),
        ("https://[::1/", "not valid"),
        ("https://93.184.215.14/a b", "space"),
        ("https://93.184.215.14/\r\nX: y", "control"),
        ("", "empty"),
        ("https://a.example/" + "x" * 2000, "too long"),
        ("https://256.1.1.1/", "not a valid"),
    ],
)
def test_malformed_or_non_https_urls_are_refused(url: str, words: str) -> None:
    with pytest.raises(UnsafeURL, match=words):
        check_url(url, resolve=lambda host, port: ["93.184.215.14"])


def test_a_public_url_is_kept_with_the_addresses_it_resolved_to() -> None:
    calls = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]

    target = check_url("https://Hooks.Example.org:8443/in/pointsbot?x=1", resolve=resolve)
    assert calls == [("hooks.example.org", 8443)]
    assert (target.host, target.port, target.path) == ("hooks.example.org", 8443, "/in/pointsbot?x=1")
    assert target.addresses == ("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    assert check_url("https://93.184.215.14/", resolve=_no_dns).addresses == ("93.184.215.14",)
    assert check_url("https://[2606:4700::1111]/", resolve=_no_dns).host == "2606:4700::1111"


def test_an_international_name_is_looked_up_in_its_ascii_form() -> None:
    seen = []
    check_url("https://bücher.example/", resolve=lambda host, port: seen.append(host) or ["93.184.215.14"])
    assert seen == ["xn--bcher-kva.example"]


def test_the_local_exception_is_an_explicit_policy_and_allows_only_what_it_names() -> None:
    policy = AddressPolicy(allowed=frozenset({"127.0.0.1"}))
    assert check_url("https://127.0.0.1:9/", policy=policy).addresses == ("127.0.0.1",)
    with pytest.raises(UnsafeURL, match="private"):
        check_url("https://10.0.0.1/", policy=policy)
    with pytest.raises(UnsafeURL, match="https"):
        check_url("http://127.0.0.1/", policy=policy)
    assert webhook_http.address_policy() is webhook_http.PUBLIC_ONLY


def test_only_the_local_runtime_and_the_tests_may_install_an_address_policy() -> None:
    """The exception for a local receiver exists in the local runtime and the tests only: no
    deployed code calls set_address_policy, and no setting or template variable names one."""
    shipped = [ROOT / "layers", ROOT / "functions", ROOT / "admin_site"]
    callers = [
        str(path.relative_to(ROOT))
        for folder in shipped
        for path in folder.rglob("*.py")
        if "set_address_policy(" in path.read_text(encoding="utf-8")
        and path.name != "webhook_http.py"  # where it is defined
    ]
    assert callers == []
    template = (ROOT / "template.yaml").read_text(encoding="utf-8")
    settings = (ROOT / "layers/core/pointsbot/platform/settings_table.py").read_text(encoding="utf-8")
    for text in (template, settings):
        assert not re.search(r"WEBHOOK_(ALLOW|PRIVATE|LOCAL|INSECURE)", text)


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    body = b'{"id":"evt_1"}'
    expected = hmac.new(b"whsec_test", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert webhook_http.signature_header("whsec_test", 1700000000, body) == f"t=1700000000,v1={expected}"
