-- Time-windowed leaderboards and seasons (issue 15).
--
-- Each member's score in each window (a calendar week and a calendar month in the guild's time
-- zone, and every season whose dates hold the entry) is kept in window_scores by a trigger on
-- the ledger, in the transaction that writes the entry: the Python write path is unchanged. A
-- window's counts per score bucket (window_counts) are kept in the same statement, in the
-- pattern of sql/036's balance_counts (same buckets, same fold with SKIP LOCKED), so a window's
-- rank and the first row of any of its pages are found without counting the members above.
--
-- Which entries count is the guild's choice (guilds.settings):
--   time_zone                 IANA name, default 'UTC' (checked with zoneinfo when set)
--   window_excluded_sources   JSON list of sources, default ["purchase", "purchase_refund"]
--   window_excluded_kinds     JSON list of kinds, default [] (e.g. "transfer_out", "deduct")
-- A season reset (source season_reset, and its reverts) never counts. A revert counts in the
-- windows of the entry it reverts (the points were never earned there), if that entry counted.
-- A change of these settings applies to entries written from then on.

CREATE TABLE seasons (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id        BIGINT NOT NULL REFERENCES guilds (guild_id),
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    starts_at       TIMESTAMPTZ NOT NULL,
    ends_at         TIMESTAMPTZ NOT NULL,
    -- Prizes: every member placed 1..prize_places (ties at the cut-off included) gets
    -- prize_points (source season_prize) and/or prize_role_id.
    prize_places    INTEGER NOT NULL DEFAULT 0 CHECK (prize_places BETWEEN 0 AND 100),
    prize_points    BIGINT NOT NULL DEFAULT 0 CHECK (prize_points >= 0),
    prize_role_id   BIGINT,
    reset_balances  BOOLEAN NOT NULL DEFAULT FALSE,
    post_channel_id BIGINT,
    created_by      BIGINT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The end run, one step per transaction so a killed run resumes where it stopped:
    -- 0 not begun, 1 standings archived, 2 prizes given, 3 balances reset, 4 done (posted).
    end_step        SMALLINT NOT NULL DEFAULT 0 CHECK (end_step BETWEEN 0 AND 4),
    ended_at        TIMESTAMPTZ,
    members_archived BIGINT,
    reset_operation_id BIGINT REFERENCES operations (id),
    reset_cursor    BIGINT NOT NULL DEFAULT 0,      -- the last user id reset
    reset_reverted_operation_id BIGINT REFERENCES operations (id),
    revert_cursor   BIGINT NOT NULL DEFAULT 0,      -- the last reset entry id reverted
    revert_done     BOOLEAN NOT NULL DEFAULT FALSE,
    posted_message_id BIGINT,
    CHECK (ends_at > starts_at)
);
CREATE UNIQUE INDEX seasons_guild_name_idx ON seasons (guild_id, lower(name));
CREATE INDEX seasons_guild_time_idx ON seasons (guild_id, starts_at, ends_at);
CREATE INDEX seasons_due_idx ON seasons (ends_at) WHERE end_step < 4;

-- A season's final table: every member's score and place (competition rank: ties share it),
-- and a position (1..n, ties by user id) for paging.
CREATE TABLE season_standings (
    season_id  BIGINT NOT NULL REFERENCES seasons (id),
    user_id    BIGINT NOT NULL,
    score      BIGINT NOT NULL,
    place      BIGINT NOT NULL,
    position   BIGINT NOT NULL,
    PRIMARY KEY (season_id, user_id)
);
CREATE UNIQUE INDEX season_standings_position_idx ON season_standings (season_id, position);

-- period: 'week:YYYY-MM-DD' (the Monday, local), 'month:YYYY-MM-01', 'season:<id>'.
CREATE TABLE window_scores (
    guild_id  BIGINT NOT NULL,
    period    TEXT NOT NULL,
    user_id   BIGINT NOT NULL,
    score     BIGINT NOT NULL,
    PRIMARY KEY (guild_id, period, user_id)
);
CREATE INDEX window_scores_board_idx ON window_scores (guild_id, period, score DESC, user_id);

CREATE TABLE window_counts (
    guild_id BIGINT NOT NULL,
    period   TEXT NOT NULL,
    tier     SMALLINT NOT NULL CHECK (tier IN (0, 1)),
    bucket   BIGINT NOT NULL,
    members  BIGINT NOT NULL
);
CREATE INDEX window_counts_bucket_idx ON window_counts (guild_id, period, tier, bucket) INCLUDE (members);

-- The windows an entry of `guild` made at `at` falls in, as period keys.
CREATE FUNCTION entry_periods(guild BIGINT, at TIMESTAMPTZ, tz TEXT) RETURNS SETOF TEXT
LANGUAGE sql STABLE AS $$
    SELECT 'week:' || to_char(date_trunc('week', at AT TIME ZONE tz), 'YYYY-MM-DD')
    UNION ALL
    SELECT 'month:' || to_char(date_trunc('month', at AT TIME ZONE tz), 'YYYY-MM-DD')
    UNION ALL
    SELECT 'season:' || id FROM seasons WHERE guild_id = guild AND starts_at <= at AND ends_at > at
$$;

-- Add `amount` to `user`'s score in `periods`, and move the bucket counts in the same statement.
CREATE FUNCTION window_add(guild BIGINT, member BIGINT, periods TEXT[], amount BIGINT) RETURNS void
LANGUAGE sql AS $$
    WITH up AS (
        INSERT INTO window_scores AS w (guild_id, period, user_id, score)
        SELECT guild, p, member, amount FROM unnest(periods) AS p ORDER BY p
        ON CONFLICT (guild_id, period, user_id) DO UPDATE SET score = w.score + EXCLUDED.score
        RETURNING w.period, w.score, (w.xmax = 0) AS fresh
    ), moves AS (
        SELECT period, tier, bucket, sum(d) AS d
        FROM (SELECT period, 0::smallint AS tier, balance_bucket(score) AS bucket, 1 AS d FROM up
              UNION ALL SELECT period, 1::smallint, balance_class(score), 1 FROM up
              UNION ALL SELECT period, 0::smallint, balance_bucket(score - amount), -1 FROM up WHERE NOT fresh
              UNION ALL SELECT period, 1::smallint, balance_class(score - amount), -1 FROM up WHERE NOT fresh) m
        GROUP BY period, tier, bucket HAVING sum(d) <> 0
    ), taken AS (
        SELECT t.row_id FROM moves, LATERAL (
            SELECT c.ctid AS row_id FROM window_counts c
            WHERE c.guild_id = guild AND c.period = moves.period AND c.tier = moves.tier
              AND c.bucket = moves.bucket
            FOR UPDATE SKIP LOCKED) t
    ), folded AS (
        DELETE FROM window_counts c WHERE c.ctid = ANY (ARRAY(SELECT row_id FROM taken))
        RETURNING c.period, c.tier, c.bucket, c.members
    )
    INSERT INTO window_counts (guild_id, period, tier, bucket, members)
    SELECT guild, period, tier, bucket, sum(n)
    FROM (SELECT period, tier, bucket, members AS n FROM folded
          UNION ALL SELECT period, tier, bucket, d FROM moves) parts
    GROUP BY period, tier, bucket HAVING sum(n) <> 0
$$;

CREATE FUNCTION transactions_window_scores() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cfg   JSONB;
    src   TEXT := NEW.source;
    knd   TEXT := NEW.kind;
    at    TIMESTAMPTZ := NEW.created_at;
BEGIN
    IF NEW.amount = 0 THEN
        RETURN NULL;
    END IF;
    IF NEW.kind = 'revert' AND NEW.reverts_id IS NOT NULL THEN
        SELECT source, kind, created_at INTO src, knd, at FROM transactions WHERE id = NEW.reverts_id;
        IF src = 'season_reset' THEN
            RETURN NULL;
        END IF;
    END IF;
    SELECT settings INTO cfg FROM guilds WHERE guild_id = NEW.guild_id;
    IF coalesce(cfg -> 'window_excluded_sources', '["purchase", "purchase_refund"]'::jsonb) ? src
       OR coalesce(cfg -> 'window_excluded_kinds', '[]'::jsonb) ? knd THEN
        RETURN NULL;
    END IF;
    PERFORM window_add(NEW.guild_id, NEW.user_id,
                       ARRAY(SELECT entry_periods(NEW.guild_id, at, coalesce(cfg ->> 'time_zone', 'UTC'))),
                       NEW.amount);
    RETURN NULL;
END;
$$;

-- Resets (and their reverts, which carry the same source) never count: not even called.
CREATE TRIGGER transactions_window_scores
    AFTER INSERT ON transactions
    FOR EACH ROW WHEN (NEW.source <> 'season_reset')
    EXECUTE FUNCTION transactions_window_scores();
