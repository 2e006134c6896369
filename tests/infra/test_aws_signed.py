"""Secrets read inside Lambda without boto3: the request signed by the standard library
(`pointsbot.platform.aws_signed`), held to botocore's own SigV4 signer, against a stand-in that
checks every signature the way AWS does (recomputed with the caller's date and credentials)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from pointsbot.platform import aws_signed, config, secrets

pytestmark = pytest.mark.infra

REGION = "eu-west-1"
ACCESS, SECRET, TOKEN = "ASIAEXAMPLEEXAMPLE12", "example-secret-access-key", "example-session-token"
DB_ARN = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:pointsbot/db-AbCdEf"
TOKEN_ARN = f"arn:aws:ssm:{REGION}:123456789012:parameter/pointsbot/bot-token"


_signing = threading.Lock()  # the clock below is patched for one signature at a time


def _botocore_authorization(
    url: str, headers: dict[str, str], body: bytes, service: str, token: str | None
) -> str:
    """What botocore's SigV4Auth signs for the same request at the caller's X-Amz-Date."""
    request = AWSRequest(method="POST", url=url, data=body,
                         headers={k: v for k, v in headers.items() if k.lower() in ("content-type", "x-amz-target")})  # fmt: skip
    instant = datetime.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    with _signing, mock.patch("botocore.auth.get_current_datetime", return_value=instant):
        SigV4Auth(Credentials(ACCESS, SECRET, token), service, REGION).add_auth(request)
    return request.headers["Authorization"]


@pytest.mark.parametrize("token", [TOKEN, None], ids=["session token", "long-term keys"])
@pytest.mark.parametrize(
    ("service", "url", "target"),
    [
        (
            "secretsmanager",
            "https://secretsmanager.eu-west-1.amazonaws.com/",
            "secretsmanager.GetSecretValue",
        ),
        ("ssm", "http://127.0.0.1:4566/", "AmazonSSM.GetParameter"),
    ],
)
def test_the_signature_is_botocores(service: str, url: str, target: str, token: str | None) -> None:
    body = json.dumps({"SecretId": DB_ARN}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
    signed = aws_signed.sign(url, headers, body, service=service, region=REGION, access_key=ACCESS,
                             secret_key=SECRET, session_token=token, amz_date="20261204T170000Z")  # fmt: skip
    assert signed["Authorization"] == _botocore_authorization(url, signed, body, service, token)


class _AwsStandIn:
    """Secrets Manager's GetSecretValue and SSM's GetParameter over HTTP; a request whose
    signature botocore would not have made is refused as AWS refuses it."""

    def __init__(self) -> None:
        self.secrets = {DB_ARN: "postgresql://bot:pw@db.example/points"}
        self.parameters = {"/pointsbot/bot-token": "bot-token-1"}
        self.calls: list[str] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                target = self.headers["x-amz-target"]
                service = "ssm" if target.startswith("AmazonSSM.") else "secretsmanager"
                url = f"http://{self.headers['host']}{self.path}"
                sent = {k: v for k, v in self.headers.items() if k.lower() in (
                    "content-type", "x-amz-target", "x-amz-date", "x-amz-security-token")}  # fmt: skip
                sent = {("X-Amz-Date" if k.lower() == "x-amz-date" else k): v for k, v in sent.items()}
                expected = _botocore_authorization(
                    url, sent, body, service, self.headers.get("x-amz-security-token")
                )
                asked = json.loads(body)
                stand_in.calls.append(target)
                if self.headers["authorization"] != expected:
                    self._answer(
                        400, {"__type": "InvalidSignatureException", "message": "signature mismatch"}
                    )
                elif target == "secretsmanager.GetSecretValue" and asked["SecretId"] in stand_in.secrets:
                    self._answer(
                        200, {"ARN": asked["SecretId"], "SecretString": stand_in.secrets[asked["SecretId"]]}
                    )
                elif target == "AmazonSSM.GetParameter" and asked["Name"] in stand_in.parameters:
                    self._answer(
                        200,
                        {"Parameter": {"Name": asked["Name"], "Value": stand_in.parameters[asked["Name"]]}},
                    )
                else:
                    self._answer(
                        400, {"__type": "com.amazonaws#ResourceNotFoundException", "Message": "not found"}
                    )

            def _answer(self, status: int, data: dict[str, Any]) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("content-type", "application/x-amz-json-1.1")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def in_lambda(monkeypatch: pytest.MonkeyPatch) -> Iterator[_AwsStandIn]:
    """Inside Lambda: the function's name and credentials in the environment, AWS at the stand-in;
    boto3 is not to be used at all."""
    stand_in = _AwsStandIn()
    for name, value in {"AWS_LAMBDA_FUNCTION_NAME": "pointsbot-test-interactions", "AWS_REGION": REGION,
                        "AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN,
                        "AWS_ENDPOINT_URL": stand_in.url}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    for setting in config.SETTINGS_TABLE:
        monkeypatch.delenv(setting.env, raising=False)
        monkeypatch.delenv(secrets.reference_variable(setting.env), raising=False)

    def no_boto3(*args: object) -> None:
        raise AssertionError("boto3 was used inside Lambda")

    monkeypatch.setattr(secrets, "_client", no_boto3)
    secrets.clear_cache()
    config.reset_settings()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()
    secrets.clear_cache()
    config.reset_settings()


def test_inside_lambda_the_settings_read_both_services_signed_by_the_standard_library(
    in_lambda, monkeypatch
) -> None:
    # Given the database URL in Secrets Manager and the bot token in SSM, referenced by ARN
    monkeypatch.setenv("DATABASE_URL_SECRET_ARN", DB_ARN)
    monkeypatch.setenv("DISCORD_BOT_TOKEN_SECRET_ARN", TOKEN_ARN)
    # When the settings are read (both at once, on threads)
    settings = config.get_settings()
    # Then both values came from the stand-in, which accepted every signature
    assert (settings.database_url, settings.discord_bot_token) == (
        "postgresql://bot:pw@db.example/points",
        "bot-token-1",
    )
    assert sorted(in_lambda.calls) == ["AmazonSSM.GetParameter", "secretsmanager.GetSecretValue"]


def test_a_missing_secret_is_named_with_the_services_reason(in_lambda, monkeypatch) -> None:
    missing = DB_ARN.replace("pointsbot/db", "pointsbot/gone")
    monkeypatch.setenv("DATABASE_URL_SECRET_ARN", missing)
    with pytest.raises(secrets.SecretUnavailable) as caught:
        config.get_settings()
    message = str(caught.value)
    assert "DATABASE_URL" in message and missing in message and "ResourceNotFoundException" in message
    # a refusal is an answer: asked once, not retried
    assert in_lambda.calls == ["secretsmanager.GetSecretValue"]


def test_a_wrong_key_is_refused_by_the_signature_check(in_lambda, monkeypatch) -> None:
    # Given credentials whose secret is not the one the service knows
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    monkeypatch.setenv("DATABASE_URL_SECRET_ARN", DB_ARN)
    # Then the read fails with the service's reason, naming the setting
    with pytest.raises(secrets.SecretUnavailable, match=r"DATABASE_URL.*InvalidSignatureException"):
        config.get_settings()


def test_outside_lambda_boto3_reads_them(monkeypatch) -> None:
    # Credentials from a profile or a role only botocore's chain finds: not signed here
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    assert not aws_signed.available({"AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET})
    assert aws_signed.available({"AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_ACCESS_KEY_ID": ACCESS,
                                 "AWS_SECRET_ACCESS_KEY": SECRET})  # fmt: skip
