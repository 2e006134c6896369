"""Every setting the bot reads: its variable, field, kind, default, what it does, whether secret.

Declarations only. `config` reads the environment by this table; `secrets` fills in the secret
settings given by reference. The README's table and the template checks are tested against it,
so a new setting is added here first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Setting:
    env: str
    field: str
    kind: type
    default: Any
    help: str
    secret: bool = False


# One row a setting reads best as one line.
# fmt: off
SETTINGS_TABLE: tuple[Setting, ...] = (
    # Database
    Setting(
        "DATABASE_URL",
        "database_url",
        str,
        "",
        "Postgres URL. Empty: the local runtime starts an embedded Postgres.",
        secret=True,
    ),
    Setting(
        "DB_STATEMENT_TIMEOUT_MS",
        "db_statement_timeout_ms",
        int,
        5000,
        "Statement timeout for every database session, in milliseconds.",
    ),
    Setting(
        "DB_CONNECT_TIMEOUT_S",
        "db_connect_timeout_s",
        int,
        5,
        "Seconds to wait for a database connection.",
    ),
    Setting(
        "DB_PREPARE_THRESHOLD",
        "db_prepare_threshold",
        int,
        5,
        "psycopg prepare threshold; -1 behind a transaction-mode pooler (PgBouncer, Supavisor, RDS Proxy): no server-side prepared statements, and the statement timeout is set per transaction (SET LOCAL) instead of at connect, which PgBouncer refuses.",
    ),
    Setting(
        "DB_POOL_MAX",
        "db_pool_max",
        int,
        10,
        "Largest connection pool of the local runtime (Lambda keeps one connection per container).",
    ),
    Setting(
        "INTERACTION_DB_STATEMENT_TIMEOUT_MS",
        "interaction_db_statement_timeout_ms",
        int,
        1000,
        "Statement timeout of the interactions function's inline attempt; slower work is deferred to the worker.",
    ),
    Setting(
        "INTERACTION_DB_CONNECT_TIMEOUT_S",
        "interaction_db_connect_timeout_s",
        int,
        2,
        "Connect timeout of the interactions function's inline attempt (psycopg's floor is 2 s).",
    ),
    # Discord
    Setting(
        "DISCORD_PUBLIC_KEY",
        "discord_public_key",
        str,
        "",
        "Hex Ed25519 public key of the Discord application (verifies interactions).",
    ),
    Setting(
        "DISCORD_APPLICATION_ID",
        "discord_application_id",
        str,
        "",
        "Discord application id (snowflake).",
    ),
    Setting(
        "DISCORD_BOT_TOKEN",
        "discord_bot_token",
        str,
        "",
        "Bot token for Discord's REST API.",
        secret=True,
    ),
    Setting(
        "DISCORD_API_BASE_URL",
        "discord_api_base_url",
        str,
        "https://discord.com/api/v10",
        "Base URL of Discord's HTTP API (the local stand-in in development).",
    ),
    Setting(
        "BOT_URL",
        "bot_url",
        str,
        "https://github.com/pointsbot/pointsbot",
        "URL in the User-Agent header sent to Discord.",
    ),
    # Ledger limits and switches (guild settings may override each)
    Setting(
        "POINTS_MAX_CHANGE",
        "max_change",
        int,
        1_000_000,
        "Largest single change of a balance (absolute amount; at most 1000000000000, the balance range).",
    ),
    Setting(
        "POINTS_DAILY_CAP",
        "daily_cap",
        int,
        0,
        "Most points a member may be credited per UTC day (0: no cap). Set, revert and achievement bonuses do not count.",
    ),
    Setting(
        "POINTS_ALLOW_NEGATIVE",
        "allow_negative",
        bool,
        False,
        "Whether admin deductions may take a balance below zero.",
    ),
    Setting(
        "POINTS_TRANSFERS_ENABLED",
        "transfers_enabled",
        bool,
        True,
        "Whether members may give points to each other (/give).",
    ),
    Setting(
        "POINTS_CURRENCY_NAME",
        "currency_name",
        str,
        "points",
        "What the points are called in messages (plural; for one: the name less its plural ending, e.g. point, unless a server sets its own singular).",
    ),
    Setting(
        "DM_NOTIFICATIONS",
        "dm_notifications",
        bool,
        True,
        "Whether members get a DM when their points change (unless silent).",
    ),
    # DM delivery and achievements
    Setting(
        "DM_RATE_PER_SECOND",
        "dm_rate_per_second",
        int,
        48,
        "Discord requests per second all bot calls together may make (DMs, DM channel opens, any call with the bot token), shared by every worker; Discord allows 50.",
    ),
    Setting(
        "DM_MAX_ATTEMPTS",
        "dm_max_attempts",
        int,
        5,
        "Tries per DM after Discord errors (5xx, network) before it is marked failed.",
    ),
    Setting(
        "DM_RETRY_BASE_S",
        "dm_retry_base_s",
        int,
        15,
        "First retry delay of a failed DM in seconds; doubles on each further try (at most 15 minutes).",
    ),
    Setting(
        "DM_LEASE_S",
        "dm_lease_s",
        int,
        300,
        "Seconds a worker may hold a claimed DM; after that another worker may take it over.",
    ),
    Setting(
        "DM_DELIVER_BUDGET_S",
        "dm_deliver_budget_s",
        int,
        60,
        "Seconds one delivery task runs before it hands the rest on to a new task.",
    ),
    Setting(
        "ACHIEVEMENT_SWEEP_SCHEDULE",
        "achievement_sweep_schedule",
        str,
        "rate(1 hour)",
        "EventBridge schedule of the achievement sweep (the local runtime understands rate(...) too).",
    ),
    Setting(
        "INTERACTIONS_FUNCTION_NAME",
        "interactions_function_name",
        str,
        "",
        "Name of the interactions Lambda function the keep-alive warms (empty: no warming).",
    ),
    Setting(
        "ACHIEVEMENT_SWEEP_BATCH",
        "achievement_sweep_batch",
        int,
        5000,
        "Members per batch (one transaction) of the achievement sweep.",
    ),
    # Operations
    Setting("TASK_QUEUE_URL", "task_queue_url", str, "", "SQS queue URL for deferred work and DM delivery (the local runtime uses an in-process queue)."),
    Setting("LOG_LEVEL", "log_level", str, "INFO", "Log level of the Powertools logger."),
    Setting("STAGE", "stage", str, "local", "Deployment stage name (local, dev, prod)."),
    Setting("SECRETS_MAX_AGE_S", "secrets_max_age_s", int, 300, "Seconds a secret read from Secrets Manager (X_SECRET_ARN) is kept before it is read again, so a rotated secret reaches running functions without a redeploy (at least 10)."),
    # Integration API (/api/v1)
    Setting("API_RATE_LIMIT", "api_rate_limit", int, 120, "Requests one API key may make per window (API_RATE_WINDOW_S); more get 429 with Retry-After."),
    Setting("API_RATE_WINDOW_S", "api_rate_window_s", int, 60, "The API's rate window in seconds (a fixed window per key, starting on multiples of it)."),
    Setting("WEBHOOK_RETRY_BASE_S", "webhook_retry_base_s", int, 60, "First retry delay of a failed webhook delivery in seconds; doubles on each further try, up to WEBHOOK_RETRY_MAX_S."),
    Setting("WEBHOOK_RETRY_MAX_S", "webhook_retry_max_s", int, 3600, "Longest delay between two tries of a webhook delivery, in seconds."),
    Setting("WEBHOOK_RETRY_HOURS", "webhook_retry_hours", int, 24, "Hours a webhook event is retried after it happened; then its delivery is marked failed."),
    Setting("WEBHOOK_DISABLE_AFTER", "webhook_disable_after", int, 20, "Failed delivery attempts in a row after which a webhook is switched off (flagged on the admin site, written to the audit log)."),
    Setting("WEBHOOK_TIMEOUT_S", "webhook_timeout_s", int, 10, "Seconds a webhook receiver has to answer (connecting: at most 3 of them); its answer is read up to 16 KB."),
    # Admin site
    Setting("PUBLIC_BOARD_RATE_LIMIT", "public_board_rate_limit", int, 60, "Requests one client address may make to the public leaderboard pages per window (PUBLIC_BOARD_RATE_WINDOW_S); more get 429 with Retry-After."),
    Setting("PUBLIC_BOARD_RATE_WINDOW_S", "public_board_rate_window_s", int, 60, "The public leaderboard's rate window in seconds (a fixed window per client address, starting on multiples of it)."),
    Setting("ADMIN_BASE_URL", "admin_base_url", str, "", "Public URL of the admin site (e.g. https://admin.example.org/admin); the OAuth2 redirect URI is it plus /oauth/callback. Empty: taken from the request."),
    Setting("DISCORD_CLIENT_SECRET", "discord_client_secret", str, "", "OAuth2 client secret of the Discord application (admin sign-in; the client id is DISCORD_APPLICATION_ID).", secret=True),
    Setting("DISCORD_OAUTH_AUTHORIZE_URL", "discord_oauth_authorize_url", str, "https://discord.com/oauth2/authorize", "Discord's OAuth2 authorize page (the local stand-in's in development)."),
    Setting("ADMIN_SESSION_IDLE_MINUTES", "admin_session_idle_minutes", int, 60, "An admin session ends after this many minutes without a request."),
    Setting("ADMIN_SESSION_MAX_HOURS", "admin_session_max_hours", int, 12, "An admin session ends this many hours after sign-in, however active."),
    Setting("ADMIN_RIGHTS_RECHECK_MINUTES", "admin_rights_recheck_minutes", int, 5, "A Discord sign-in's admin rights are asked of Discord again once the last answer is this many minutes old: guilds no longer managed leave the session, which ends when none is left. Local accounts are not re-checked."),
    Setting("ADMIN_RIGHTS_GRACE_MINUTES", "admin_rights_grace_minutes", int, 15, "While Discord cannot be reached, a Discord session goes on for at most this many minutes after its rights were last confirmed, then ends."),
    Setting("ADMIN_LOGIN_MAX_FAILURES", "admin_login_max_failures", int, 5, "Failed local sign-ins per account name from one client address allowed in 15 minutes (an address may fail 4x this over all names, a name 20x over all addresses; a browser with the name's device cookie, set at its last sign-in, is held to this many on its own and to no other limit)."),
)
# fmt: on
