"""The local runtime's API Gateway HTTP API (payload 2.0) adapter, both directions."""

from __future__ import annotations

import base64
import json

import pytest

from pointsbot_local import apigw

pytestmark = pytest.mark.unit


def test_text_body_and_request_shape():
    body = b'{"type": 1, "id": "9223372036854775807"}'
    event = apigw.to_event(
        "post", "/interactions?a=1&a=2&b=", [("Content-Type", "application/json"), ("X-Signature-Ed25519", "ab"),
                                             ("Host", "example.org"), ("User-Agent", "Discord-Interactions/1.0")],
        body, source_ip="10.0.0.9",
    )  # fmt: skip
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/interactions" and event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}  # repeated names joined by commas
    assert event["headers"]["x-signature-ed25519"] == "ab"  # names lower-cased
    assert event["isBase64Encoded"] is False and event["body"] == body.decode()
    http = event["requestContext"]["http"]
    assert http == {"method": "POST", "path": "/interactions", "protocol": "HTTP/1.1",
                    "sourceIp": "10.0.0.9", "userAgent": "Discord-Interactions/1.0"}  # fmt: skip
    assert event["requestContext"]["domainName"] == "example.org"
    assert isinstance(event["requestContext"]["timeEpoch"], int)


def test_binary_and_undecodable_bodies_are_base64():
    raw = bytes(range(256))
    event = apigw.to_event("POST", "/x", {"content-type": "application/octet-stream"}, raw)
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == raw
    bad_text = apigw.to_event("POST", "/x", {"content-type": "text/plain"}, b"\xff\xfe")
    assert bad_text["isBase64Encoded"] is True and base64.b64decode(bad_text["body"]) == b"\xff\xfe"


def test_no_body_no_query_no_cookies():
    event = apigw.to_event("GET", "/health", {}, b"")
    assert "body" not in event and "queryStringParameters" not in event and "cookies" not in event
    assert event["rawPath"] == "/health"


def test_cookies_and_repeated_headers():
    event = apigw.to_event(
        "GET", "/admin", [("Cookie", "a=1; b=2"), ("cookie", "c=3"), ("X-Forwarded-For", "1.1.1.1"),
                          ("x-forwarded-for", "2.2.2.2")], b"",
    )  # fmt: skip
    assert event["cookies"] == ["a=1", "b=2", "c=3"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-forwarded-for"] == "1.1.1.1,2.2.2.2"


def test_results_back_to_http():
    response = apigw.from_result(
        {"statusCode": 302, "headers": {"Location": "/admin/"}, "cookies": ["s=1; HttpOnly", "t=2"],
         "multiValueHeaders": {"X-A": ["1", "2"]}, "body": "moved"}
    )  # fmt: skip
    assert response.status == 302 and response.body == b"moved"
    assert ("Location", "/admin/") in response.headers
    assert [v for k, v in response.headers if k == "set-cookie"] == ["s=1; HttpOnly", "t=2"]
    assert [v for k, v in response.headers if k == "X-A"] == ["1", "2"]
    png = apigw.from_result({"statusCode": 200, "body": base64.b64encode(b"\x89PNG").decode(),
                             "isBase64Encoded": True})  # fmt: skip
    assert png.body == b"\x89PNG"
    assert apigw.from_result({"statusCode": 204}).body == b""


def test_a_plain_dict_result_is_json_200_as_api_gateway_does():
    response = apigw.from_result({"id": "9223372036854775807"})
    assert response.status == 200
    assert ("content-type", "application/json") in response.headers
    assert json.loads(response.body) == {"id": "9223372036854775807"}


def test_lambda_context_counts_down():
    context = apigw.LambdaContext("interactions", timeout_s=3)
    assert context.function_name == "interactions"
    assert 0 < context.get_remaining_time_in_millis() <= 3000
    assert apigw.LambdaContext("x", timeout_s=0).get_remaining_time_in_millis() == 0
