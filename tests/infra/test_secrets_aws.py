"""Secret settings read from Secrets Manager and SSM (moto) by get_settings(), lazily and once."""

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


def test_secrets_are_fetched_once_per_container(aws, monkeypatch) -> None:
    created = aws["sm"].create_secret(Name="pointsbot/test/token", SecretString="first")
    monkeypatch.setenv("DISCORD_BOT_TOKEN_SECRET_ARN", created["ARN"])
    assert config.get_settings().discord_bot_token == "first"
    # The secret is rotated (or even deleted); a warm container keeps what it read
    aws["sm"].delete_secret(SecretId=created["ARN"], ForceDeleteWithoutRecovery=True)
    config.reset_settings()
    assert config.get_settings().discord_bot_token == "first"
    # A new container reads it again, and a missing secret is a clear error
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
