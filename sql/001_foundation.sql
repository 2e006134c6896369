-- Foundation schema: guilds, members, balances, the append-only ledger and what hangs off it.
-- Discord ids are BIGINT here and strings everywhere else.

CREATE TABLE guilds (
    guild_id      BIGINT PRIMARY KEY,
    name          TEXT NOT NULL DEFAULT '',
    -- Per-guild overrides of the configured limits and switches (see pointsbot.guilds).
    settings      JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A member's profile in one guild. Created on first contact (a command, an admin, a bonus).
CREATE TABLE members (
    guild_id      BIGINT NOT NULL REFERENCES guilds (guild_id),
    user_id       BIGINT NOT NULL,
    username      TEXT,
    display_name  TEXT,
    email         TEXT,
    notes         TEXT NOT NULL DEFAULT '',
    dm_opt_out    BOOLEAN NOT NULL DEFAULT FALSE,
    joined_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    erased_at     TIMESTAMPTZ,
    PRIMARY KEY (guild_id, user_id)
);
CREATE INDEX members_display_name_idx ON members (guild_id, lower(display_name));
CREATE INDEX members_email_idx ON members (guild_id, lower(email));

-- Current balance per guild member. Always equal to the sum of the member's ledger amounts.
CREATE TABLE points (
    guild_id      BIGINT NOT NULL,
    user_id       BIGINT NOT NULL,
    balance       BIGINT NOT NULL DEFAULT 0,
    -- Credits counted against the daily cap, for the UTC day in daily_date.
    daily_date    DATE,
    daily_credited BIGINT NOT NULL DEFAULT 0,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (guild_id, user_id),
    FOREIGN KEY (guild_id, user_id) REFERENCES members (guild_id, user_id)
);
-- Leaderboard order: balance descending, then user id, so ties have one stable order.
CREATE INDEX points_leaderboard_idx ON points (guild_id, balance DESC, user_id);

-- Counters kept beside the ledger in the same transaction (what achievements look at).
CREATE TABLE user_stats (
    guild_id            BIGINT NOT NULL,
    user_id             BIGINT NOT NULL,
    transaction_count   BIGINT NOT NULL DEFAULT 0,
    total_earned        BIGINT NOT NULL DEFAULT 0,
    total_spent         BIGINT NOT NULL DEFAULT 0,
    last_transaction_at TIMESTAMPTZ,
    PRIMARY KEY (guild_id, user_id),
    FOREIGN KEY (guild_id, user_id) REFERENCES members (guild_id, user_id)
);

-- One row per ledger operation, keyed by its idempotency key: the second arrival of the same
-- key finds this row and replays the result instead of applying the change again.
CREATE TABLE operations (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id         BIGINT NOT NULL REFERENCES guilds (guild_id),
    idempotency_key  TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,
    kind             TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (guild_id, idempotency_key)
);

CREATE TABLE transactions (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operation_id    BIGINT NOT NULL REFERENCES operations (id),
    guild_id        BIGINT NOT NULL,
    user_id         BIGINT NOT NULL,
    amount          BIGINT NOT NULL,
    balance_after   BIGINT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN (
                        'award', 'deduct', 'set', 'transfer_in', 'transfer_out',
                        'revert', 'achievement', 'email_bonus')),
    reason          TEXT NOT NULL DEFAULT '',
    actor_id        BIGINT,
    source          TEXT NOT NULL CHECK (source IN ('slash', 'admin_site', 'achievement', 'system')),
    silent          BOOLEAN NOT NULL DEFAULT FALSE,
    counterparty_id BIGINT,
    reverts_id      BIGINT UNIQUE REFERENCES transactions (id),
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (guild_id, user_id) REFERENCES members (guild_id, user_id)
);
CREATE INDEX transactions_member_idx ON transactions (guild_id, user_id, id DESC);
CREATE INDEX transactions_guild_idx ON transactions (guild_id, id DESC);
CREATE INDEX transactions_guild_created_idx ON transactions (guild_id, created_at);
CREATE INDEX transactions_operation_idx ON transactions (operation_id);

-- The ledger is append-only: a correction is a new entry that reverses an old one.
CREATE FUNCTION transactions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'transactions is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER transactions_no_update_or_delete
    BEFORE UPDATE OR DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION transactions_append_only();
CREATE TRIGGER transactions_no_truncate
    BEFORE TRUNCATE ON transactions
    FOR EACH STATEMENT EXECUTE FUNCTION transactions_append_only();

-- Achievement definitions per guild; criterion is one of pointsbot.achievements' kinds.
CREATE TABLE achievements (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id        BIGINT NOT NULL REFERENCES guilds (guild_id),
    name            TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    bonus_points    BIGINT NOT NULL DEFAULT 0 CHECK (bonus_points >= 0),
    criterion       TEXT NOT NULL,
    threshold       BIGINT NOT NULL DEFAULT 0,
    window_days     INTEGER,
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (guild_id, name)
);

CREATE TABLE member_achievements (
    guild_id        BIGINT NOT NULL,
    user_id         BIGINT NOT NULL,
    achievement_id  BIGINT NOT NULL REFERENCES achievements (id),
    earned_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    transaction_id  BIGINT REFERENCES transactions (id),
    PRIMARY KEY (guild_id, user_id, achievement_id),
    FOREIGN KEY (guild_id, user_id) REFERENCES members (guild_id, user_id)
);
CREATE INDEX member_achievements_achievement_idx ON member_achievements (achievement_id);

CREATE TABLE email_submissions (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id        BIGINT NOT NULL,
    user_id         BIGINT NOT NULL,
    email           TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    note            TEXT NOT NULL DEFAULT '',
    submitted_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    reviewed_at     TIMESTAMPTZ,
    reviewed_by     BIGINT,
    bonus_transaction_id BIGINT REFERENCES transactions (id),
    FOREIGN KEY (guild_id, user_id) REFERENCES members (guild_id, user_id)
);
-- One pending submission per member.
CREATE UNIQUE INDEX email_submissions_one_pending_idx
    ON email_submissions (guild_id, user_id) WHERE status = 'pending';
CREATE INDEX email_submissions_status_idx ON email_submissions (guild_id, status, submitted_at);

-- The DM outbox: every DM is a row first, then delivered by the worker.
CREATE TABLE direct_messages (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id        BIGINT NOT NULL,
    user_id         BIGINT NOT NULL,
    content         TEXT NOT NULL,
    reason          TEXT NOT NULL DEFAULT 'admin',
    status          TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    discord_message_id BIGINT,
    dedupe_key      TEXT,
    created_by      BIGINT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_at      TIMESTAMPTZ,
    sent_at         TIMESTAMPTZ,
    FOREIGN KEY (guild_id, user_id) REFERENCES members (guild_id, user_id),
    UNIQUE (guild_id, dedupe_key)
);
CREATE INDEX direct_messages_due_idx ON direct_messages (next_attempt_at) WHERE status IN ('queued', 'sending');
CREATE INDEX direct_messages_member_idx ON direct_messages (guild_id, user_id, id DESC);
CREATE INDEX direct_messages_guild_idx ON direct_messages (guild_id, status, id DESC);

-- Who did what on the admin side, with before and after.
CREATE TABLE admin_audit (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id        BIGINT,
    actor_id        BIGINT,
    actor_name      TEXT NOT NULL DEFAULT '',
    action          TEXT NOT NULL,
    target          TEXT NOT NULL DEFAULT '',
    before          JSONB,
    after           JSONB,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX admin_audit_guild_idx ON admin_audit (guild_id, id DESC);
