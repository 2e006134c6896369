"""Configuration: every setting the bot reads, from environment variables with defaults.

This is the one place that reads the environment, by the declarations in settings_table.py
(`SETTINGS_TABLE`, handed on from here too).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from . import secrets
from .amounts import MAX_BALANCE
from .settings_table import SETTINGS_TABLE


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


def _bool(raw: str, env: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{env} must be true or false, not {raw!r}")


@dataclass(frozen=True)
class Settings:
    database_url: str
    db_statement_timeout_ms: int
    db_connect_timeout_s: int
    db_prepare_threshold: int
    db_pool_max: int
    interaction_db_statement_timeout_ms: int
    interaction_db_connect_timeout_s: int
    discord_public_key: str
    discord_application_id: str
    discord_bot_token: str
    discord_api_base_url: str
    bot_url: str
    max_change: int
    daily_cap: int
    allow_negative: bool
    transfers_enabled: bool
    currency_name: str
    dm_notifications: bool
    dm_rate_per_second: int
    dm_max_attempts: int
    dm_retry_base_s: int
    dm_lease_s: int
    dm_deliver_budget_s: int
    achievement_sweep_schedule: str
    achievement_sweep_batch: int
    interactions_function_name: str
    task_queue_url: str
    log_level: str
    stage: str
    secrets_max_age_s: int
    api_rate_limit: int
    api_rate_window_s: int
    webhook_retry_base_s: int
    webhook_retry_max_s: int
    webhook_retry_hours: int
    webhook_disable_after: int
    webhook_timeout_s: int
    admin_base_url: str
    public_board_rate_limit: int
    public_board_rate_window_s: int
    discord_client_secret: str
    discord_oauth_authorize_url: str
    admin_session_idle_minutes: int
    admin_session_max_hours: int
    admin_rights_recheck_minutes: int
    admin_rights_grace_minutes: int
    admin_login_max_failures: int

    def with_overrides(self, **changes: Any) -> Settings:
        return Settings(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every setting once; a bad value raises ConfigError naming the variable."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS_TABLE:
        raw = env.get(setting.env)
        if raw is None or (raw == "" and setting.kind is not str):
            values[setting.field] = setting.default
        elif setting.kind is bool:
            values[setting.field] = _bool(raw, setting.env)
        elif setting.kind is int:
            try:
                values[setting.field] = int(raw.strip())
            except ValueError:
                raise ConfigError(f"{setting.env} must be a whole number, not {raw!r}") from None
        else:
            values[setting.field] = raw
    settings = Settings(**values)
    if not 0 < settings.max_change <= MAX_BALANCE:
        raise ConfigError(
            f"POINTS_MAX_CHANGE must be above zero and at most {MAX_BALANCE} (the balance range)"
        )
    if not 0 <= settings.daily_cap <= MAX_BALANCE:
        raise ConfigError(f"POINTS_DAILY_CAP must be zero (no cap) to {MAX_BALANCE} (the balance range)")
    for env, value, low in (
        ("DM_RATE_PER_SECOND", settings.dm_rate_per_second, 1),
        ("DM_MAX_ATTEMPTS", settings.dm_max_attempts, 1),
        ("DM_RETRY_BASE_S", settings.dm_retry_base_s, 1),
        ("DM_LEASE_S", settings.dm_lease_s, 30),
        ("DM_DELIVER_BUDGET_S", settings.dm_deliver_budget_s, 1),
        ("WEBHOOK_RETRY_BASE_S", settings.webhook_retry_base_s, 1),
        ("WEBHOOK_RETRY_MAX_S", settings.webhook_retry_max_s, 1),
        ("WEBHOOK_RETRY_HOURS", settings.webhook_retry_hours, 1),
        ("WEBHOOK_DISABLE_AFTER", settings.webhook_disable_after, 1),
        ("WEBHOOK_TIMEOUT_S", settings.webhook_timeout_s, 1),
        ("ACHIEVEMENT_SWEEP_BATCH", settings.achievement_sweep_batch, 1),
        ("SECRETS_MAX_AGE_S", settings.secrets_max_age_s, 10),
        ("PUBLIC_BOARD_RATE_LIMIT", settings.public_board_rate_limit, 1),
        ("PUBLIC_BOARD_RATE_WINDOW_S", settings.public_board_rate_window_s, 1),
    ):
        if value < low:
            raise ConfigError(f"{env} must be at least {low}")
    if settings.admin_rights_recheck_minutes < 1:
        raise ConfigError("ADMIN_RIGHTS_RECHECK_MINUTES must be at least 1")
    if settings.admin_rights_grace_minutes < settings.admin_rights_recheck_minutes:
        raise ConfigError("ADMIN_RIGHTS_GRACE_MINUTES must be at least ADMIN_RIGHTS_RECHECK_MINUTES")
    return settings


_cached: Settings | None = None


def get_settings() -> Settings:
    """The process's settings, read on first use (not at import, so tests can set the env), and
    again when a secret they hold is older than SECRETS_MAX_AGE_S."""
    global _cached
    if _cached is None or secrets.refresh_due():
        # In AWS the secret settings arrive as *_SECRET_ARN references, read here on first use.
        _cached = load_settings(secrets.with_secrets(os.environ))
    return _cached


_public: Settings | None = None


def get_public_settings() -> Settings:
    """The settings without reading any secret: what a PING and a signature check need.

    Secret settings given only by reference (`X_SECRET_ARN`) stay empty here, so a cold start
    that is answering a PING does not wait for Secrets Manager.
    """
    global _public
    if _cached is not None:
        return _cached
    if _public is None:
        _public = load_settings(os.environ)
    return _public


def reset_settings() -> None:
    """Forget the cached settings (tests that change the environment call this)."""
    global _cached, _public
    _cached = None
    _public = None
