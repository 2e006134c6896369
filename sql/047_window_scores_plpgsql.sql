-- The window trigger of sql/046, cheaper per ledger write: the same rules and the same rows,
-- but its statements written in the PL/pgSQL body, whose plans are prepared once per session.
-- 046 called two SQL-language functions, which PostgreSQL plans afresh at every call (a
-- statement with five CTEs, planned for each entry); measured in bench/bench_seasons.py.

CREATE OR REPLACE FUNCTION transactions_window_scores() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cfg      JSONB;
    src      TEXT := NEW.source;
    knd      TEXT := NEW.kind;
    at       TIMESTAMPTZ := NEW.created_at;
    tz       TEXT;
    local_at TIMESTAMP;
    periods  TEXT[];
BEGIN
    IF NEW.amount = 0 THEN
        RETURN NULL;
    END IF;
    IF NEW.kind = 'revert' AND NEW.reverts_id IS NOT NULL THEN
        SELECT t.source, t.kind, t.created_at INTO src, knd, at FROM transactions t WHERE t.id = NEW.reverts_id;
        IF src = 'season_reset' THEN
            RETURN NULL;
        END IF;
    END IF;
    SELECT g.settings INTO cfg FROM guilds g WHERE g.guild_id = NEW.guild_id;
    IF coalesce(cfg -> 'window_excluded_sources', '["purchase", "purchase_refund"]'::jsonb) ? src
       OR coalesce(cfg -> 'window_excluded_kinds', '[]'::jsonb) ? knd THEN
        RETURN NULL;
    END IF;
    tz := coalesce(cfg ->> 'time_zone', 'UTC');
    local_at := at AT TIME ZONE tz;
    periods := ARRAY['week:' || to_char(date_trunc('week', local_at), 'YYYY-MM-DD'),
                     'month:' || to_char(date_trunc('month', local_at), 'YYYY-MM-DD')]
               || ARRAY(SELECT 'season:' || s.id FROM seasons s
                        WHERE s.guild_id = NEW.guild_id AND s.starts_at <= at AND s.ends_at > at);
    WITH up AS (
        INSERT INTO window_scores AS w (guild_id, period, user_id, score)
        SELECT NEW.guild_id, p, NEW.user_id, NEW.amount FROM unnest(periods) AS p ORDER BY p
        ON CONFLICT (guild_id, period, user_id) DO UPDATE SET score = w.score + EXCLUDED.score
        RETURNING w.period, w.score, (w.xmax = 0) AS fresh
    ), moves AS (
        SELECT m.period, m.tier, m.bucket, sum(m.d) AS d
        FROM (SELECT up.period, 0::smallint AS tier, balance_bucket(up.score) AS bucket, 1 AS d FROM up
              UNION ALL SELECT up.period, 1::smallint, balance_class(up.score), 1 FROM up
              UNION ALL SELECT up.period, 0::smallint, balance_bucket(up.score - NEW.amount), -1 FROM up WHERE NOT up.fresh
              UNION ALL SELECT up.period, 1::smallint, balance_class(up.score - NEW.amount), -1 FROM up WHERE NOT up.fresh) m
        GROUP BY m.period, m.tier, m.bucket HAVING sum(m.d) <> 0
    ), taken AS (
        SELECT t.row_id FROM moves, LATERAL (
            SELECT c.ctid AS row_id FROM window_counts c
            WHERE c.guild_id = NEW.guild_id AND c.period = moves.period AND c.tier = moves.tier
              AND c.bucket = moves.bucket
            FOR UPDATE SKIP LOCKED) t
    ), folded AS (
        DELETE FROM window_counts c WHERE c.ctid = ANY (ARRAY(SELECT taken.row_id FROM taken))
        RETURNING c.period, c.tier, c.bucket, c.members
    )
    INSERT INTO window_counts (guild_id, period, tier, bucket, members)
    SELECT NEW.guild_id, parts.period, parts.tier, parts.bucket, sum(parts.n)
    FROM (SELECT folded.period, folded.tier, folded.bucket, folded.members AS n FROM folded
          UNION ALL SELECT moves.period, moves.tier, moves.bucket, moves.d FROM moves) parts
    GROUP BY parts.period, parts.tier, parts.bucket HAVING sum(parts.n) <> 0;
    RETURN NULL;
END;
$$;
