-- The ledger's window upkeep (sql/046-047) and its webhook outbox rows (sql/052) once per
-- statement instead of once per entry (issue 14, goal 6: the first achievement sweep over 1M
-- members writes its bonus entries with one multi-row INSERT per batch, and the window trigger
-- ran once per entry, three upserts and three moves of a window's bucket counts each: 64-73% of
-- the sweep's wall time; issue 15: a season reset batch called the webhook trigger once per
-- reset entry only to return).
--
-- transactions_window_scores is now an AFTER INSERT statement trigger over the inserted rows
-- (a transition table, as sql/036's points_balance_counts): the entries that count, summed per
-- member and window, one upsert per (member, window) in key order (guild, period, user), so two
-- writers touching the same scores queue instead of deadlocking, and one fold of the bucket
-- counts for the whole statement (the same SKIP LOCKED fold as before). The rules are 047's,
-- entry by entry: an entry of amount 0 and a season reset (and its reverts) never count; a
-- revert counts in the windows, and by the source and kind, of the entry it reverts; the
-- guild's window_excluded_sources / window_excluded_kinds and time_zone as 046 describes them.
-- A member's entries of one statement that cancel out still leave a score row of 0 (as they did
-- entry by entry). A single-row INSERT (the hot path) runs the same statements with one row.
--
-- transactions_webhooks likewise: an entry.created / entry.reverted outbox row per entry and
-- wanting endpoint, in entry id order, each entry one event id; a statement whose guilds have no
-- enabled endpoint stops at one probe of the (small) webhooks table.
--
-- 047's and 052's per-row functions stay (no trigger calls them): bench/bench_seasons.py and
-- bench/bench_sweep.py put them back on a copy of the data as the reference they measure the
-- statement triggers against.

CREATE FUNCTION transactions_window_scores_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH counted AS (  -- each entry that counts: its member, amount, time and guild time zone
        SELECT n.guild_id, n.user_id, n.amount, coalesce(o.created_at, n.created_at) AS at,
               coalesce(g.settings ->> 'time_zone', 'UTC') AS tz
        FROM new_rows n
        -- LIMIT 1 keeps each a lookup by primary key whatever the number of rows (the plan is
        -- made once per session, when the transition table may have held a single row)
        LEFT JOIN LATERAL (SELECT t.source, t.kind, t.created_at FROM transactions t
                           WHERE n.kind = 'revert' AND n.reverts_id IS NOT NULL AND t.id = n.reverts_id
                           LIMIT 1) o ON TRUE
        LEFT JOIN LATERAL (SELECT gs.settings FROM guilds gs WHERE gs.guild_id = n.guild_id LIMIT 1) g ON TRUE
        WHERE n.amount <> 0 AND n.source <> 'season_reset' AND o.source IS DISTINCT FROM 'season_reset'
          AND (coalesce(g.settings -> 'window_excluded_sources', '["purchase", "purchase_refund"]'::jsonb)
                   ? coalesce(o.source, n.source)
               OR coalesce(g.settings -> 'window_excluded_kinds', '[]'::jsonb) ? coalesce(o.kind, n.kind)) IS NOT TRUE
    ), summed AS (
        SELECT c.guild_id, p.period, c.user_id, sum(c.amount)::bigint AS amount
        FROM counted c CROSS JOIN LATERAL (
            SELECT 'week:' || to_char(date_trunc('week', c.at AT TIME ZONE c.tz), 'YYYY-MM-DD')
            UNION ALL
            SELECT 'month:' || to_char(date_trunc('month', c.at AT TIME ZONE c.tz), 'YYYY-MM-DD')
            UNION ALL
            SELECT 'season:' || s.id FROM seasons s
            WHERE s.guild_id = c.guild_id AND s.starts_at <= c.at AND s.ends_at > c.at) p (period)
        GROUP BY c.guild_id, p.period, c.user_id
    ), up AS (
        INSERT INTO window_scores AS w (guild_id, period, user_id, score)
        SELECT summed.guild_id, summed.period, summed.user_id, summed.amount FROM summed
        ORDER BY summed.guild_id, summed.period, summed.user_id
        ON CONFLICT (guild_id, period, user_id) DO UPDATE SET score = w.score + EXCLUDED.score
        RETURNING w.guild_id, w.period, w.user_id, w.score, (w.xmax = 0) AS fresh
    ), moved AS (
        SELECT up.guild_id, up.period, up.score, up.fresh, up.score - summed.amount AS before
        FROM up JOIN summed ON summed.guild_id = up.guild_id AND summed.period = up.period
                           AND summed.user_id = up.user_id
    ), moves AS (
        SELECT m.guild_id, m.period, m.tier, m.bucket, sum(m.d) AS d
        FROM (SELECT moved.guild_id, moved.period, 0::smallint AS tier, balance_bucket(moved.score) AS bucket, 1 AS d
              FROM moved
              UNION ALL SELECT moved.guild_id, moved.period, 1::smallint, balance_class(moved.score), 1 FROM moved
              UNION ALL SELECT moved.guild_id, moved.period, 0::smallint, balance_bucket(moved.before), -1
                        FROM moved WHERE NOT moved.fresh
              UNION ALL SELECT moved.guild_id, moved.period, 1::smallint, balance_class(moved.before), -1
                        FROM moved WHERE NOT moved.fresh) m
        GROUP BY m.guild_id, m.period, m.tier, m.bucket HAVING sum(m.d) <> 0
    ), taken AS (  -- per bucket, so each is an index lookup
        SELECT t.row_id FROM moves, LATERAL (
            SELECT c.ctid AS row_id FROM window_counts c
            WHERE c.guild_id = moves.guild_id AND c.period = moves.period AND c.tier = moves.tier
              AND c.bucket = moves.bucket
            FOR UPDATE SKIP LOCKED) t
    ), folded AS (
        DELETE FROM window_counts c WHERE c.ctid = ANY (ARRAY(SELECT taken.row_id FROM taken))
        RETURNING c.guild_id, c.period, c.tier, c.bucket, c.members
    )
    INSERT INTO window_counts (guild_id, period, tier, bucket, members)
    SELECT parts.guild_id, parts.period, parts.tier, parts.bucket, sum(parts.n)
    FROM (SELECT folded.guild_id, folded.period, folded.tier, folded.bucket, folded.members AS n FROM folded
          UNION ALL SELECT moves.guild_id, moves.period, moves.tier, moves.bucket, moves.d FROM moves) parts
    GROUP BY parts.guild_id, parts.period, parts.tier, parts.bucket HAVING sum(parts.n) <> 0;
    RETURN NULL;
END;
$$;

DROP TRIGGER transactions_window_scores ON transactions;
CREATE TRIGGER transactions_window_scores
    AFTER INSERT ON transactions REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION transactions_window_scores_statement();

CREATE FUNCTION transactions_webhooks_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhooks w
                   WHERE w.enabled AND w.guild_id IN (SELECT n.guild_id FROM new_rows n)) THEN
        RETURN NULL;
    END IF;
    WITH event AS MATERIALIZED (  -- one event id per entry, whichever endpoints get it
        SELECT n.id, n.guild_id, gen_random_uuid() AS ev,
               CASE WHEN n.kind = 'revert' THEN 'entry.reverted' ELSE 'entry.created' END AS t, to_jsonb(n) AS data
        FROM new_rows n
        WHERE n.source <> 'season_reset' AND n.guild_id IN (SELECT w.guild_id FROM webhooks w WHERE w.enabled)
    )
    INSERT INTO webhook_deliveries (webhook_id, guild_id, event_id, event_type, data)
    SELECT w.id, e.guild_id, e.ev, e.t, e.data
    FROM event e JOIN webhooks w ON w.guild_id = e.guild_id AND w.enabled AND e.t = ANY (w.events)
    ORDER BY e.id, w.id;
    RETURN NULL;
END;
$$;

DROP TRIGGER transactions_webhooks ON transactions;
CREATE TRIGGER transactions_webhooks
    AFTER INSERT ON transactions REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION transactions_webhooks_statement();
