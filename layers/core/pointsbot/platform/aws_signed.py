"""One AWS JSON-protocol call (Secrets Manager, SSM) signed with Signature Version 4 by the
standard library, for the interactions function's cold start.

Why not boto3 here: importing boto3 and making a client costs about 0.2 s of CPU, which the
first command after a cold start would spend on Discord's 3-second clock just to read the
database URL. Inside Lambda the credentials are in the environment, so a signed POST is all a
read needs. Outside Lambda (a profile, SSO, an instance role) only botocore's credential chain
knows where to look: `secrets.py` uses boto3 there. The signature is held to botocore's own
(`SigV4Auth`) by tests/infra/test_aws_signed.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

# Bounds like the boto3 clients' (secrets.py): the first answer has 3 s in all. The timeout is
# per socket operation (the connect, each read), as urllib applies it.
TIMEOUT_S = 2.0
ATTEMPTS = 2

# botocore's names for each service: the endpoint prefix, the name signed, the target prefix,
# and the variable that overrides the endpoint (as botocore reads it).
_SERVICES = {
    "secretsmanager": (
        "secretsmanager",
        "secretsmanager",
        "secretsmanager",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    ),
    "ssm": ("ssm", "ssm", "AmazonSSM", "AWS_ENDPOINT_URL_SSM"),
}


class AwsCallFailed(Exception):
    """The call was refused or could not be made; `response` is shaped as botocore's
    ClientError's (`{"Error": {"Code": ...}}`), so callers read both the same way."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.response = {"Error": {"Code": code, "Message": message}}


def available(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether to sign here: inside Lambda, with the function's credentials in the environment."""
    return bool(
        environ.get("AWS_LAMBDA_FUNCTION_NAME")
        and environ.get("AWS_ACCESS_KEY_ID")
        and environ.get("AWS_SECRET_ACCESS_KEY")
    )


def endpoint_url(service: str, region: str, environ: Mapping[str, str] = os.environ) -> str:
    _prefix, _signed, _target, variable = _SERVICES[service]
    override = environ.get(variable) or environ.get("AWS_ENDPOINT_URL")
    if override:
        if urlsplit(override).scheme not in ("http", "https"):
            raise AwsCallFailed("InvalidEndpoint", f"{variable} must be an http(s) URL")
        return override
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{_prefix}.{region}.{suffix}/"


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sign(
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    service: str,
    region: str,
    access_key: str,
    secret_key: str,
    session_token: str | None,
    amz_date: str,
) -> dict[str, str]:
    """`headers` with X-Amz-Date, X-Amz-Security-Token and Authorization added: SigV4 over
    every header given, the host and the body (a POST to the endpoint's path)."""
    parts = urlsplit(url)
    signed_headers = {**headers, "X-Amz-Date": amz_date}
    if session_token:
        signed_headers["X-Amz-Security-Token"] = session_token
    canonical = {k.lower(): " ".join(str(v).split()) for k, v in signed_headers.items()}
    canonical["host"] = parts.netloc
    names = ";".join(sorted(canonical))
    request = "\n".join([
        "POST",
        parts.path or "/",
        parts.query,
        "".join(f"{name}:{canonical[name]}\n" for name in sorted(canonical)),
        names,
        hashlib.sha256(body).hexdigest(),
    ])  # fmt: skip
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(request.encode()).hexdigest()])
    key = _hmac(
        _hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), amz_date[:8]), region), service), "aws4_request"
    )
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    signed_headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={names}, Signature={signature}"
    )
    return signed_headers


def call(
    service: str, action: str, params: dict[str, Any], region: str, environ: Mapping[str, str] = os.environ
) -> dict[str, Any]:
    """POST one action (e.g. secretsmanager GetSecretValue) and return its JSON answer.
    Raises AwsCallFailed with the service's error code, or the network's error's name."""
    import urllib.error
    import urllib.request

    _prefix, signed_name, target, _variable = _SERVICES[service]
    url = endpoint_url(service, region, environ)
    body = json.dumps(params).encode()
    last: AwsCallFailed | None = None
    for attempt in range(ATTEMPTS):
        headers = sign(
            url, {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{target}.{action}"}, body,
            service=signed_name, region=region, access_key=environ["AWS_ACCESS_KEY_ID"],
            secret_key=environ["AWS_SECRET_ACCESS_KEY"], session_token=environ.get("AWS_SESSION_TOKEN"),
            amz_date=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        )  # fmt: skip
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - http(s) only
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:  # noqa: S310
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            last = _refusal(exc)
            if exc.code < 500 and "Throttl" not in last.response["Error"]["Code"]:
                raise last from None
        except (OSError, ValueError) as exc:  # refused, reset, timed out, not JSON
            last = AwsCallFailed(type(exc).__name__, str(exc)[:200])
        if attempt + 1 < ATTEMPTS:
            time.sleep(0.05)
    assert last is not None
    raise last


def _refusal(exc: Any) -> AwsCallFailed:
    """The service's error code from a refused call's JSON body ("...#ResourceNotFoundException")."""
    try:
        data = json.loads(exc.read() or b"{}")
    except ValueError:
        data = {}
    code = str(data.get("__type") or f"HTTP{exc.code}").rsplit("#", 1)[-1]
    return AwsCallFailed(code, str(data.get("message") or data.get("Message") or "")[:200])
