"""Secret settings read from Secrets Manager and SSM (moto) by get_settings(), lazily, and again
after SECRETS_MAX_AGE_S so a rotation reaches warm containers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from pointsbot.platform import config, secrets

pytestmark = pytest.mark.infra

REGION = "eu-west-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    # No default region: the code must take it from the ARN.
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    for setting in config.SETTINGS_TABLE:
        monkeypatch.delenv(setting.env, raising=False)
        monkeypatch.delenv(secrets.reference_variable(setting.env), raising=False)
    secrets.clear_cache()
    config.reset_settings()
    with mock_aws():
        yield {
            "sm": boto3.client("secretsmanager", region_name=REGION),
            "ssm": boto3.client("ssm", region_name=REGION),
        }
    secrets.clear_cache()
    config.reset_settings()


def test_get_settings_reads_each_referenced_secret(aws, monkeypatch) -> None:
    # Given the two secrets an operator stores, referenced by ARN as template.yaml does
    token = aws["sm"].create_secret(Name="pointsbot/test/discord-bot-token", SecretString="bot-token-1")
    url = aws["sm"].create_secret(Name="pointsbot/test/database-url",
                                  SecretString="postgresql://bot:pw@db.example:5432/points?sslmode=require")  # fmt: skip
    monkeypatch.setenv("DISCORD_BOT_TOKEN_SECRET_ARN", token["ARN"])
    monkeypatch.setenv("DATABASE_URL_SECRET_ARN", url["ARN"])
    # When the settings are read
    settings = config.get_settings()
    # Then the values are the secrets'
    assert settings.discord_bot_token == "bot-token-1"
    assert settings.database_url == "postgresql://bot:pw@db.example:5432/points?sslmode=require"
    # And the secret setting with no reference stays at its default
    assert settings.discord_client_secret == ""


def test_several_secrets_from_both_services_at_once_and_one_missing_is_named(aws, monkeypatch) -> None:
    token = aws["sm"].create_secret(Name="pointsbot/test/bot", SecretString="bot-token-2")
    aws["ssm"].put_parameter(Name="/pointsbot/test/oauth", Value="oauth-2", Type="SecureString")
    monkeypatch.setenv("DISCORD_BOT_TOKEN_SECRET_ARN", token["ARN"])
    monkeypatch.setenv(
        "DISCORD_CLIENT_SECRET_SECRET_ARN",
        f"arn:aws:ssm:{REGION}:123456789012:parameter/pointsbot/test/oauth",
    )
    missing = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:pointsbot/test/db-AbCdEf"
    monkeypatch.setenv("DATABASE_URL_SECRET_ARN", missing)
    with pytest.raises(secrets.SecretUnavailable) as caught:
        config.get_settings()
    assert "DATABASE_URL" in str(caught.value) and missing in str(caught.value)
    aws["sm"].create_secret(Name="pointsbot/test/db", SecretString="postgresql://x@h/db")
    monkeypatch.setenv(
        "DATABASE_URL_SECRET_ARN", aws["sm"].describe_secret(SecretId="pointsbot/test/db")["ARN"]
    )
    settings = config.get_settings()
    assert (settings.discord_bot_token, settings.discord_client_secret, settings.database_url) == (
        "bot-token-2",
        "oauth-2",
        "postgresql://x@h/db",
    )


class Clock:
    """secrets.clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(secrets, "clock", fake, raising=False)
    return fake


def count_reads(reference: str) -> list[str]:
    """The GetSecretValue calls the module's own client makes from now on."""
    calls: list[str] = []
    client = secrets._client_for(reference)
    client.meta.events.register(
        "before-call.secrets-manager.GetSecretValue", lambda **kwargs: calls.append(kwargs["model"].name)
    )
    return calls


def test_a_rotated_secret_is_read_again_after_the_max_age_and_not_before(aws, monkeypatch, clock) -> None:
    # Given a warm container that read the bot token, with secrets kept 300 s
    created = aws["sm"].create_secret(Name="pointsbot/test/token", SecretString="first")
    monkeypatch.setenv("DISCORD_BOT_TOKEN_SECRET_ARN", created["ARN"])
    monkeypatch.setenv("SECRETS_MAX_AGE_S", "300")
    reads = count_reads(created["ARN"])
    assert config.get_settings().discord_bot_token == "first"
    # When the token is rotated
    aws["sm"].put_secret_value(SecretId=created["ARN"], SecretString="second")
    # Then within the age the container keeps what it read, without asking again
    clock.now += 299
    assert config.get_settings().discord_bot_token == "first"
    assert len(reads) == 1
    # And after it, the next use reads the new value once, and keeps that
    clock.now += 2
    assert config.get_settings().discord_bot_token == "second"
    assert config.get_settings().discord_bot_token == "second"
    assert len(reads) == 2
    assert config.get_settings().secrets_max_age_s == 300


def test_the_database_and_discord_client_follow_a_rotated_secret(aws, monkeypatch, clock) -> None:
    from pointsbot.discord import rest as discord_rest
    from pointsbot.platform import runtime

    url = aws["sm"].create_secret(
        Name="pointsbot/test/db", SecretString="postgresql://bot:old@db.example/points"
    )
    token = aws["sm"].create_secret(Name="pointsbot/test/bot", SecretString="token-old")
    monkeypatch.setenv("DATABASE_URL_SECRET_ARN", url["ARN"])
    monkeypatch.setenv("DISCORD_BOT_TOKEN_SECRET_ARN", token["ARN"])
    runtime.reset()
    discord_rest.set_client(None)
    try:
        first_db, first_client = runtime.get_database(), discord_rest.get_client()
        assert (first_db.dsn, first_client.token) == ("postgresql://bot:old@db.example/points", "token-old")
        aws["sm"].put_secret_value(SecretId=url["ARN"], SecretString="postgresql://bot:new@db.example/points")
        aws["sm"].put_secret_value(SecretId=token["ARN"], SecretString="token-new")
        assert runtime.get_database() is first_db and discord_rest.get_client() is first_client
        clock.now += secrets.DEFAULT_MAX_AGE_S
        assert runtime.get_database().dsn == "postgresql://bot:new@db.example/points"
        assert discord_rest.get_client().token == "token-new"
    finally:
        runtime.reset()
        discord_rest.set_client(None)


def test_a_failed_re_read_keeps_the_old_value_and_tries_again_soon(aws, monkeypatch, clock, caplog) -> None:
    created = aws["sm"].create_secret(Name="pointsbot/test/token", SecretString="first")
    monkeypatch.setenv("DISCORD_BOT_TOKEN_SECRET_ARN", created["ARN"])
    reads = count_reads(created["ARN"])
    assert config.get_settings().discord_bot_token == "first"
    # Secrets Manager cannot answer (here: access to the secret is gone) when the age has passed
    aws["sm"].delete_secret(SecretId=created["ARN"], ForceDeleteWithoutRecovery=True)
    clock.now += secrets.DEFAULT_MAX_AGE_S
    assert config.get_settings().discord_bot_token == "first"
    assert "could not read DISCORD_BOT_TOKEN again" in caplog.text
    assert len(reads) == 2
    # The next try is 30 s later, not on every use
    clock.now += 29
    assert config.get_settings().discord_bot_token == "first"
    assert len(reads) == 2
    clock.now += 1
    assert config.get_settings().discord_bot_token == "first"
    assert len(reads) == 3


def test_a_new_container_reads_again_and_a_missing_secret_is_named(aws, monkeypatch) -> None:
    created = aws["sm"].create_secret(Name="pointsbot/test/token", SecretString="first")
    monkeypatch.setenv("DISCORD_BOT_TOKEN_SECRET_ARN", created["ARN"])
    assert config.get_settings().discord_bot_token == "first"
    aws["sm"].delete_secret(SecretId=created["ARN"], ForceDeleteWithoutRecovery=True)
    secrets.clear_cache()
    config.reset_settings()
    with pytest.raises(secrets.SecretUnavailable) as caught:
        config.get_settings()
    assert "DISCORD_BOT_TOKEN" in str(caught.value) and created["ARN"] in str(caught.value)
    assert "ResourceNotFoundException" in str(caught.value)


def test_a_value_in_the_environment_wins_over_the_reference(aws, monkeypatch) -> None:
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "from-env")
    monkeypatch.setenv(
        "DISCORD_BOT_TOKEN_SECRET_ARN", f"arn:aws:secretsmanager:{REGION}:123456789012:secret:gone-AbCdEf"
    )
    assert config.get_settings().discord_bot_token == "from-env"


def test_ssm_secure_string_parameters_work_too(aws, monkeypatch) -> None:
    aws["ssm"].put_parameter(Name="/pointsbot/test/client-secret", Value="oauth-secret", Type="SecureString")
    arn = f"arn:aws:ssm:{REGION}:123456789012:parameter/pointsbot/test/client-secret"
    monkeypatch.setenv("DISCORD_CLIENT_SECRET_SECRET_ARN", arn)
    assert config.get_settings().discord_client_secret == "oauth-secret"


def test_rds_style_json_secret_becomes_a_database_url(aws, monkeypatch) -> None:
    rds = {"engine": "postgres", "host": "db.abc.eu-west-1.rds.amazonaws.com", "port": 5432,
           "username": "bot", "password": "p@ss:w/rd", "dbname": "points"}  # fmt: skip
    created = aws["sm"].create_secret(Name="rds!db-123", SecretString=json.dumps(rds))
    monkeypatch.setenv("DATABASE_URL_SECRET_ARN", created["ARN"])
    assert config.get_settings().database_url == (
        "postgresql://bot:p%40ss%3Aw%2Frd@db.abc.eu-west-1.rds.amazonaws.com:5432/points?sslmode=require"
    )


def test_json_secret_with_the_setting_name_as_key(aws, monkeypatch) -> None:
    created = aws["sm"].create_secret(Name="bundle", SecretString=json.dumps({"DISCORD_BOT_TOKEN": "t-2"}))
    monkeypatch.setenv("DISCORD_BOT_TOKEN_SECRET_ARN", created["ARN"])
    assert config.get_settings().discord_bot_token == "t-2"
    wrong = aws["sm"].create_secret(Name="wrong", SecretString=json.dumps({"token": "t-3"}))
    monkeypatch.setenv("DATABASE_URL_SECRET_ARN", wrong["ARN"])
    config.reset_settings()
    with pytest.raises(secrets.SecretUnavailable, match="DATABASE_URL"):
        config.get_settings()


def test_importing_the_package_reads_no_secret() -> None:
    # A reference that cannot be resolved (no credentials, no network) must not matter at import.
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DATABASE_URL_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:x-AbCdEf",
        "DISCORD_BOT_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:000000000000:secret:y-AbCdEf",
    }
    probe = (
        "import sys, pkgutil, importlib, pointsbot\n"
        "for m in pkgutil.walk_packages(pointsbot.__path__, 'pointsbot.'):\n"
        "    importlib.import_module(m.name)\n"
        "from pointsbot.platform import secrets\n"
        "assert not secrets._cache and not secrets._clients\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
