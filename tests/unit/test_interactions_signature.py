"""The interactions endpoint's front door: signatures, timestamps, bodies (no database)."""

from __future__ import annotations

import base64
import json
import time

import pytest
from nacl.signing import SigningKey

from pointsbot.commands import endpoint
from pointsbot.discord import interactions
from pointsbot.platform.config import reset_settings
from pointsbot_local.apigw import LambdaContext, to_event
from pointsbot_local.keys import KeyPair

pytestmark = pytest.mark.unit

PING = {
    "id": "1300000000000000000",
    "application_id": "100000000000000001",
    "type": 1,
    "token": "t",
    "version": 1,
}


@pytest.fixture
def keys(monkeypatch) -> KeyPair:
    key = SigningKey.generate()
    pair = KeyPair(key.encode().hex(), key.verify_key.encode().hex())
    monkeypatch.setenv("DISCORD_PUBLIC_KEY", pair.public_hex)
    reset_settings()
    yield pair
    reset_settings()


def _event(body: bytes, headers: dict[str, str], *, base64_body: bool = False) -> dict:
    event = to_event("POST", "/interactions", {"content-type": "application/json", **headers}, body)
    if base64_body:
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return event


def _signed(keys: KeyPair, body: bytes, stamp: str | None = None) -> dict[str, str]:
    stamp = stamp or str(int(time.time()))
    return {"x-signature-ed25519": keys.sign(stamp, body), "x-signature-timestamp": stamp}


def _flip(text: str, index: int) -> str:
    """The same hex or digit string with one character changed."""
    swap = {"0": "1"}.get(text[index], "0")
    return text[:index] + swap + text[index + 1 :]


def test_valid_ping_gets_pong(keys):
    body = json.dumps(PING).encode()
    answer = endpoint.handle(_event(body, _signed(keys, body)))
    assert (answer.status, answer.body) == (200, {"type": 1})


@pytest.mark.parametrize("where", ["body", "signature", "timestamp"])
def test_one_changed_byte_is_refused(keys, where):
    # Given a correctly signed request
    body = json.dumps(PING).encode()
    headers = _signed(keys, body)
    # When one byte of it changes after signing
    if where == "body":
        body = body.replace(b'"token": "t"', b'"token": "u"')
    elif where == "signature":
        headers["x-signature-ed25519"] = _flip(headers["x-signature-ed25519"], 10)
    else:
        headers["x-signature-timestamp"] = str(int(headers["x-signature-timestamp"]) - 1)
    # Then it is refused as unsigned, not answered and not crashed on
    answer = endpoint.handle(_event(body, headers))
    assert answer.status == 401
    assert answer.body == {"error": "invalid request signature"}


def test_wrong_key_is_refused(keys):
    body = json.dumps(PING).encode()
    other = SigningKey.generate()
    stranger = KeyPair(other.encode().hex(), other.verify_key.encode().hex())
    assert endpoint.handle(_event(body, _signed(stranger, body))).status == 401


@pytest.mark.parametrize("missing", [("x-signature-ed25519",), ("x-signature-timestamp",), ("x-signature-ed25519", "x-signature-timestamp")])  # fmt: skip
def test_missing_headers_are_refused(keys, missing):
    body = json.dumps(PING).encode()
    headers = {k: v for k, v in _signed(keys, body).items() if k not in missing}
    assert endpoint.handle(_event(body, headers)).status == 401


@pytest.mark.parametrize(
    ("offset", "status"),
    [(-301, 401), (-299, 200), (59, 200), (61, 401), (-100_000, 401)],
    ids=["stale", "nearly-stale", "slightly-ahead", "future", "ancient"],
)
def test_timestamp_window(keys, offset, status):
    # A correctly signed request whose timestamp is outside [-5 min, +1 min] is a replay.
    now = time.time()
    body = json.dumps(PING).encode()
    headers = _signed(keys, body, str(int(now) + offset))
    assert endpoint.handle(_event(body, headers), now=now).status == status


@pytest.mark.parametrize("stamp", ["", "abc", "1.5", "-12", "١٢٣", "9" * 30])
def test_garbage_timestamps_are_refused(keys, stamp):
    body = json.dumps(PING).encode()
    headers = {"x-signature-ed25519": keys.sign(stamp, body), "x-signature-timestamp": stamp}
    assert endpoint.handle(_event(body, headers)).status == 401


@pytest.mark.parametrize("signature", ["", "zz" * 64, "00" * 63, "00" * 65, "ab"])
def test_garbage_signatures_are_refused(keys, signature):
    body = json.dumps(PING).encode()
    headers = {**_signed(keys, body), "x-signature-ed25519": signature}
    assert endpoint.handle(_event(body, headers)).status == 401


def test_base64_encoded_body_is_verified_on_the_decoded_bytes(keys):
    body = json.dumps(PING).encode()
    event = _event(body, _signed(keys, body), base64_body=True)
    assert event["isBase64Encoded"] is True
    assert endpoint.handle(event).body == {"type": 1}


def test_non_ascii_body_is_verified_byte_for_byte(keys):
    # Discord signs the UTF-8 bytes; names like these must not break verification.
    payload = {**PING, "note": "Zoë 🎉 日本語"}
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    assert endpoint.handle(_event(body, _signed(keys, body))).body == {"type": 1}
    # ... and the same text with one character changed is refused
    tampered = body.replace("Zoë".encode(), b"Zoe")
    assert endpoint.handle(_event(tampered, _signed(keys, body))).status == 401


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"type": "1"}', b"", b"\xff\xfe"])
def test_signed_but_malformed_json_is_400(keys, body):
    assert endpoint.handle(_event(body, _signed(keys, body))).status == 400


def test_signed_object_that_is_not_an_interaction_is_400(keys):
    body = json.dumps({"type": 2, "id": "1"}).encode()  # no token, no user, no data
    assert endpoint.handle(_event(body, _signed(keys, body))).status == 400


def test_oversized_body_is_413_before_any_work(keys):
    body = json.dumps({**PING, "pad": "x" * interactions.MAX_BODY_BYTES}).encode()
    assert endpoint.handle(_event(body, _signed(keys, body))).status == 413


def test_invalid_base64_is_400(keys):
    event = _event(b"x", _signed(keys, b"x"))
    event["body"], event["isBase64Encoded"] = "***not base64***", True
    assert endpoint.handle(event).status == 400


def test_a_misconfigured_public_key_refuses_rather_than_crashes(monkeypatch):
    monkeypatch.setenv("DISCORD_PUBLIC_KEY", "not-hex")
    reset_settings()
    body = json.dumps(PING).encode()
    try:
        assert (
            endpoint.handle(
                _event(body, {"x-signature-ed25519": "00" * 64, "x-signature-timestamp": "1"})
            ).status
            == 401
        )
    finally:
        reset_settings()


def test_lambda_handler_answers_http_shaped_results(keys, capsys):
    # The Lambda entry point itself (decorators included) on a real API Gateway event.
    from pointsbot_local import handlers

    handler = handlers.load("interactions")
    body = json.dumps(PING).encode()
    good = handler(_event(body, _signed(keys, body)), LambdaContext("interactions"))
    bad = handler(_event(body, {"x-signature-ed25519": "00" * 64, "x-signature-timestamp": str(int(time.time()))}),
                  LambdaContext("interactions"))  # fmt: skip
    assert good["statusCode"] == 200 and json.loads(good["body"]) == {"type": 1}
    assert bad["statusCode"] == 401
    # A metric per command and outcome is emitted in CloudWatch's embedded format.
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    outcomes = {(m.get("command"), m.get("outcome")) for m in emitted}
    assert ("ping", "ok") in outcomes and ("-", "rejected_401") in outcomes


def test_a_broken_setting_is_a_401_not_a_500(keys, monkeypatch):
    monkeypatch.setenv("POINTS_MAX_CHANGE", "lots")
    reset_settings()
    body = json.dumps(PING).encode()
    assert endpoint.handle(_event(body, _signed(keys, body))).status == 401


def test_a_failure_after_verification_is_a_private_apology(keys, monkeypatch):
    def broken(payload):
        raise RuntimeError("a bug")

    monkeypatch.setattr(interactions, "parse", broken)
    body = json.dumps({**PING, "type": 2}).encode()
    answer = endpoint.handle(_event(body, _signed(keys, body)))
    assert answer.status == 200 and answer.body["data"]["flags"] == 64
    assert answer.body["data"]["content"] == endpoint.SOMETHING_WENT_WRONG


def test_the_keepalive_ping_is_answered_without_a_signature(keys, monkeypatch):
    from pointsbot.ops.keepalive import KEEPALIVE_EVENT, keepalive_response

    warmed = []
    monkeypatch.setattr(endpoint, "warm", lambda settings: warmed.append(True))
    answer = endpoint.handle(dict(KEEPALIVE_EVENT))
    assert answer.as_http() == keepalive_response() and warmed == [True]
    # ... and an outside request cannot pass for it: a body with a keepalive key is no ping
    body = json.dumps({"keepalive": True}).encode()
    assert endpoint.handle({**_event(body, {}), "keepalive": "yes"}).status == 401


@pytest.mark.parametrize("depth", [65, 2_000, 60_000])
def test_deeply_nested_json_is_a_400_logged_without_a_trace(keys, caplog, depth):
    # Given a correctly signed interaction nesting arrays far deeper than Discord ever does
    # (60,000 levels fit in the body limit; Python's parser gives up at about 1,000)
    body = b'{"id":"1300000000000000000","type":2,"x":' + b"[" * depth + b"]" * depth + b"}"
    assert len(body) <= interactions.MAX_BODY_BYTES
    # When it reaches the Lambda entry point
    from pointsbot_local import handlers

    answer = handlers.load("interactions")(_event(body, _signed(keys, body)), LambdaContext("interactions"))
    # Then it is a 400, and the log says so at warning level, with no stack trace
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"]) == {"error": "JSON nested too deeply"}
    logged = [
        (r.levelname, r.getMessage(), r.exc_info) for r in caplog.records if r.name.startswith("pointsbot")
    ]
    assert logged == [("WARNING", "request refused", None)]
