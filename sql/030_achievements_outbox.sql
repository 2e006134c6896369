-- Achievements, the DM outbox's delivery state, and the achievement sweep's progress.

-- The criteria pointsbot.achievements knows; a typo can never be stored.
ALTER TABLE achievements ADD CONSTRAINT achievements_criterion_check CHECK (criterion IN (
    'balance_at_least', 'earned_at_least', 'transactions_at_least', 'earned_within_days',
    'top_k', 'email_approved', 'member_days'));
ALTER TABLE achievements ADD CONSTRAINT achievements_threshold_check CHECK (threshold >= 0);
ALTER TABLE achievements ADD CONSTRAINT achievements_window_check CHECK (window_days IS NULL OR window_days > 0);
CREATE INDEX achievements_active_idx ON achievements (guild_id, criterion) WHERE active;

-- A member's DM channel id, learned from POST /users/@me/channels, so a second DM to the same
-- member costs one request instead of two. DM channels belong to the user, not the guild.
CREATE TABLE dm_channels (
    user_id     BIGINT PRIMARY KEY,
    channel_id  BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The delivery pacer shared by every worker: a token bucket kept as a "theoretical arrival
-- time" (GCRA). Reserving n requests moves `tat` on by n / rate; a worker sleeps until its
-- slot. One row, so any number of workers together stay within the configured rate.
CREATE TABLE dm_pacer (
    id   SMALLINT PRIMARY KEY CHECK (id = 1),
    tat  TIMESTAMPTZ NOT NULL DEFAULT '-infinity'
);
INSERT INTO dm_pacer (id) VALUES (1);

-- The achievement sweep's progress: a keyset cursor over members (guild_id, user_id), so a
-- sweep stopped by Lambda's time limit continues where it stopped on the next run.
CREATE TABLE achievement_sweeps (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    started_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at       TIMESTAMPTZ,
    cursor_guild_id   BIGINT,
    cursor_user_id    BIGINT,
    members_checked   BIGINT NOT NULL DEFAULT 0,
    awards            BIGINT NOT NULL DEFAULT 0,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- At most one sweep in progress.
CREATE UNIQUE INDEX achievement_sweeps_one_open_idx ON achievement_sweeps ((TRUE)) WHERE finished_at IS NULL;
