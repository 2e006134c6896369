-- The admin site: server-side sessions, local admin accounts, sign-in throttling, and the
-- indexes that keep member search and the transactions monitor fast at millions of rows.

-- A browser session. Only a hash of the cookie's token is stored, so a leaked table does not
-- hand out live sessions. An anonymous session (no identity yet) carries the CSRF token of the
-- sign-in form and the OAuth state; signing in replaces it with a new one.
CREATE TABLE admin_sessions (
    token_hash    TEXT PRIMARY KEY,
    identity      JSONB,
    csrf_token    TEXT NOT NULL,
    oauth_state   TEXT,
    flashes       JSONB NOT NULL DEFAULT '[]'::jsonb,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX admin_sessions_expires_idx ON admin_sessions (expires_at);

-- Local admin accounts for first set-up and local runs (Discord sign-in is the normal way).
CREATE TABLE admin_accounts (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    guild_ids     BIGINT[] NOT NULL DEFAULT '{}',
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX admin_accounts_name_idx ON admin_accounts (lower(name));

-- Failed sign-in attempts, counted per account name and per client address.
CREATE TABLE admin_login_failures (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    throttle_key  TEXT NOT NULL,
    failed_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX admin_login_failures_key_idx ON admin_login_failures (throttle_key, failed_at);

-- Bulk operations: one row per submitted batch (its form token is the idempotency key base),
-- so a second submission finds the first and progress can be shown while it runs.
CREATE TABLE admin_bulk_batches (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id      BIGINT NOT NULL REFERENCES guilds (guild_id),
    form_token    TEXT NOT NULL,
    operation     TEXT NOT NULL CHECK (operation IN ('award', 'deduct', 'set')),
    silent        BOOLEAN NOT NULL DEFAULT FALSE,
    rows          JSONB NOT NULL,
    total         INTEGER NOT NULL,
    done          INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    errors        JSONB NOT NULL DEFAULT '[]'::jsonb,
    status        TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done')),
    actor_id      BIGINT,
    actor_name    TEXT NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at   TIMESTAMPTZ,
    UNIQUE (guild_id, form_token)
);

-- Member search: name, username and email by prefix (text_pattern_ops makes LIKE 'abc%' an
-- index range scan whatever the database collation). Balance ranges use points_leaderboard_idx.
-- pg_trgm would allow substring search but is not in every Postgres build (the embedded one).
CREATE INDEX members_display_name_prefix_idx ON members (guild_id, lower(display_name) text_pattern_ops);
CREATE INDEX members_username_prefix_idx ON members (guild_id, lower(username) text_pattern_ops);
CREATE INDEX members_email_prefix_idx ON members (guild_id, lower(email) text_pattern_ops);

-- Transactions monitor: each filter walks an index in id order (keyset paging on id).
CREATE INDEX transactions_actor_idx ON transactions (guild_id, actor_id, id DESC) WHERE actor_id IS NOT NULL;
CREATE INDEX transactions_kind_idx ON transactions (guild_id, kind, id DESC);
CREATE INDEX transactions_source_idx ON transactions (guild_id, source, id DESC);

-- Dashboard: the daily chart sums amounts per day; an index that covers them avoids the heap.
CREATE INDEX transactions_daily_idx ON transactions (guild_id, created_at) INCLUDE (amount);

-- Who earned an achievement, newest first.
CREATE INDEX member_achievements_holders_idx ON member_achievements (achievement_id, earned_at DESC);
