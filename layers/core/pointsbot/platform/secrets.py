"""Secret settings from AWS Secrets Manager (or SSM Parameter Store), re-read after a bounded age.

A secret setting X (a row of settings_table.SETTINGS_TABLE with secret=True) comes from the
environment variable X when that is set (local runs, tests). Otherwise, when `X_SECRET_ARN`
names a Secrets Manager secret or an SSM parameter, `config.get_settings()` reads it from
there on first use - never at import - and keeps the value for `SECRETS_MAX_AGE_S` seconds;
the first use after that reads it again, so a rotated secret reaches warm containers without
a redeploy. (The same idea as Powertools parameters' `max_age`; kept here because this module
also fetches several secrets at once on a cold start, with short timeouts, from either service.)
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from .settings_table import SETTINGS_TABLE

SUFFIX = "_SECRET_ARN"
MAX_AGE_VARIABLE = "SECRETS_MAX_AGE_S"
DEFAULT_MAX_AGE_S = 300
# After a failed re-read the old value is kept (a warm container goes on working through a
# Secrets Manager hiccup) and the read is tried again this much later.
_RETRY_AFTER_FAILURE_S = 30.0

_log = logging.getLogger(__name__)
# reference -> (the raw string, when it is to be read again on the `clock`)
_cache: dict[str, tuple[str, float]] = {}
clock: Callable[[], float] = time.monotonic  # tests move it
_clients: dict[tuple[str, str], Any] = {}
_lock = threading.Lock()


class SecretUnavailable(RuntimeError):
    """A secret could not be read; the message names the setting and the reference, never a value."""


def reference_variable(env: str) -> str:
    """The environment variable that holds the ARN of setting `env`'s secret."""
    return env + SUFFIX


def _region_of(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if arn.startswith("arn:") and len(parts) > 5 and parts[3] else None


def _client(service: str, region: str | None) -> Any:
    key = (service, region or "")
    if key not in _clients:
        # Imported here: boto3 costs a noticeable part of a cold start, and local runs never need it.
        import boto3
        from botocore.config import Config

        # Short timeouts: the interactions function has 3 s for its first answer, cold start included.
        config = Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 2, "mode": "standard"})
        _clients[key] = boto3.client(service, region_name=region, config=config)
    return _clients[key]


def _is_ssm(reference: str) -> bool:
    return ":ssm:" in reference and ":parameter/" in reference


def _client_for(reference: str) -> Any:
    return _client("ssm" if _is_ssm(reference) else "secretsmanager", _region_of(reference))


def _parameter_name(reference: str) -> str:
    path = reference.split(":parameter", 1)[1]  # "/name" or "/a/b/name"
    # An ARN drops the leading slash of a path name but not of a plain one ("parameter/token").
    return path[1:] if path.count("/") == 1 else path


def fetch_secret_string(reference: str) -> str:
    """The raw string stored under `reference` (a Secrets Manager ARN or name, or an SSM parameter ARN).

    Inside Lambda the request is signed by the standard library (`aws_signed`): boto3's import
    and client would cost the first command about 0.2 s of Discord's 3. Elsewhere, boto3.
    """
    from . import aws_signed  # imported on first use: it loads hashlib's OpenSSL, which a PING never needs

    if aws_signed.available():
        return _fetch_signed(reference)
    if _is_ssm(reference):
        answer = _client_for(reference).get_parameter(Name=_parameter_name(reference), WithDecryption=True)
        return answer["Parameter"]["Value"]
    answer = _client_for(reference).get_secret_value(SecretId=reference)
    return _secret_string(reference, answer)


def _fetch_signed(reference: str) -> str:
    from . import aws_signed

    region = (
        _region_of(reference) or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
    )
    if _is_ssm(reference):
        params = {"Name": _parameter_name(reference), "WithDecryption": True}
        return aws_signed.call("ssm", "GetParameter", params, region)["Parameter"]["Value"]
    return _secret_string(
        reference, aws_signed.call("secretsmanager", "GetSecretValue", {"SecretId": reference}, region)
    )


def _secret_string(reference: str, answer: Mapping[str, Any]) -> str:
    if "SecretString" not in answer:
        raise SecretUnavailable(f"{reference} holds a binary secret; store the value as a string")
    return answer["SecretString"]


def _database_url_from_rds(data: Mapping[str, Any]) -> str:
    """An RDS-style JSON secret (username, password, host, port, dbname) as a Postgres URL."""
    user = quote(str(data["username"]), safe="")
    password = quote(str(data["password"]), safe="")
    port = data.get("port") or 5432
    dbname = quote(str(data.get("dbname") or "postgres"), safe="")
    return f"postgresql://{user}:{password}@{data['host']}:{port}/{dbname}?sslmode=require"


def secret_value(env: str, raw: str) -> str:
    """The setting's value from what the secret holds: a plain string, or JSON with the value.

    JSON forms: {"<ENV>": "..."}, {"value": "..."}, and for DATABASE_URL the JSON that RDS
    and Secrets Manager's database rotation write (username, password, host, port, dbname).
    """
    text = raw.strip()
    if not text.startswith("{"):
        return text
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if not isinstance(data, dict):
        return text
    for key in (env, "value"):
        if isinstance(data.get(key), str):
            return data[key]
    if env == "DATABASE_URL" and {"username", "password", "host"} <= data.keys():
        return _database_url_from_rds(data)
    raise SecretUnavailable(f"the secret for {env} is JSON without a {env!r} or 'value' key")


def max_age_s(environ: Mapping[str, str]) -> int:
    """How long a fetched secret is kept (`SECRETS_MAX_AGE_S`; config.py validates it)."""
    try:
        return max(int(environ.get(MAX_AGE_VARIABLE) or DEFAULT_MAX_AGE_S), 1)
    except ValueError:
        return DEFAULT_MAX_AGE_S


def read_secret(
    env: str,
    reference: str,
    fetch: Callable[[str], str] = fetch_secret_string,
    max_age: float = DEFAULT_MAX_AGE_S,
) -> str:
    """The value of setting `env` from `reference`, fetched again once `max_age` seconds passed."""
    with _lock:
        cached = _cache.get(reference)
    if cached is not None and clock() < cached[1]:
        return secret_value(env, cached[0])
    try:
        raw = fetch(reference)
    except Exception as exc:  # botocore's errors, a timeout: say which setting, hide the details' values
        if isinstance(exc, SecretUnavailable):
            error = exc
        else:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
            error = SecretUnavailable(f"could not read {env} from {reference}: {code}")
        if cached is None:
            raise error from exc
        _log.warning("could not read %s again; keeping the value read before (%s)", env, error)
        with _lock:
            _cache[reference] = (cached[0], clock() + min(_RETRY_AFTER_FAILURE_S, max_age))
        return secret_value(env, cached[0])
    with _lock:
        _cache[reference] = (raw, clock() + max_age)
    return secret_value(env, raw)


def refresh_due() -> bool:
    """Whether a secret read before is old enough to be read again."""
    with _lock:
        return bool(_cache) and clock() >= min(until for _, until in _cache.values())


def with_secrets(
    environ: Mapping[str, str], fetch: Callable[[str], str] = fetch_secret_string
) -> Mapping[str, str]:
    """`environ` with every secret setting that is only given by reference filled in."""
    wanted = {
        setting.env: environ[reference_variable(setting.env)]
        for setting in SETTINGS_TABLE
        if setting.secret and not environ.get(setting.env) and environ.get(reference_variable(setting.env))
    }
    if not wanted:
        return environ
    resolved = dict(environ)
    max_age = max_age_s(environ)
    if len(wanted) == 1:
        ((env, reference),) = wanted.items()
        resolved[env] = read_secret(env, reference, fetch, max_age)
        return resolved
    # Several secrets on a cold start: fetch them at once, it is on the interactions function's
    # 3-second clock. The clients are made first, here: boto3's default session is not thread-safe.
    from concurrent.futures import ThreadPoolExecutor

    from . import aws_signed

    if fetch is fetch_secret_string and not aws_signed.available():
        for reference in wanted.values():
            _client_for(reference)
    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        values = pool.map(lambda item: read_secret(item[0], item[1], fetch, max_age), wanted.items())
        resolved.update(zip(wanted, values, strict=True))
    return resolved


def clear_cache() -> None:
    """Forget fetched secrets and clients (tests)."""
    with _lock:
        _cache.clear()
        _clients.clear()
