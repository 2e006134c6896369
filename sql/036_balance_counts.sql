-- How many members of a guild hold a balance in each balance bucket, kept by triggers in the
-- transaction that moves the balance (the pattern of sql/002's member_count), so a rank and the
-- first row of any leaderboard page are found without counting the members above
-- (pointsbot.ledger.queries: rank = 1 + the counts of the buckets above + the members above
-- the balance inside its own bucket, a short range of points_leaderboard_idx).
--
-- Buckets are log-linear, like an HDR histogram: every value of magnitude below 128 is its own
-- bucket; above that, each power of two [2^e, 2^(e+1)) is one "class" (tier 1) split into 64
-- equal "fine" buckets (tier 0), mirrored for negative balances. The balance range (sql/032,
-- |balance| <= 10^12 < 2^40) makes at most ~70 classes and ~4,600 fine buckets per guild,
-- whatever the number of members; a rank reads at most ~70 class rows, 64 fine rows and the
-- members of one fine bucket strictly above the balance. A bucket is named by its lowest value,
-- so "buckets above" is "bucket > x" in balance order.
--
-- A balance change that stays inside its fine bucket writes nothing here; one that crosses a
-- boundary moves one count between two fine buckets (and two classes when it crosses a power
-- of two). Writers never wait on each other here: a count is the sum of a bucket's rows, a
-- statement adds its moves as new rows and folds into one row those rows of the same buckets
-- that no other open transaction holds (FOR UPDATE SKIP LOCKED). Two transactions moving
-- members across the same buckets in opposite orders therefore neither block nor deadlock,
-- and a bucket keeps about as many rows as transactions were folding it at once.

CREATE FUNCTION balance_bit_length(m bigint) RETURNS int
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN length(ltrim(m::bit(64)::text, '0'));

-- The lowest value of the fine bucket holding v.
CREATE FUNCTION balance_bucket(v bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE
    WHEN abs(v) < 128 THEN v
    WHEN v > 0 THEN (v >> (balance_bit_length(v) - 7)) << (balance_bit_length(v) - 7)
    ELSE 1 - (((-v) >> (balance_bit_length(-v) - 7)) << (balance_bit_length(-v) - 7))
           - (1::bigint << (balance_bit_length(-v) - 7))
END;

-- The lowest value above the fine bucket holding v (its end, exclusive).
CREATE FUNCTION balance_bucket_end(v bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE
    WHEN abs(v) < 128 THEN v + 1
    WHEN v > 0 THEN ((v >> (balance_bit_length(v) - 7)) << (balance_bit_length(v) - 7))
                    + (1::bigint << (balance_bit_length(v) - 7))
    ELSE 1 - (((-v) >> (balance_bit_length(-v) - 7)) << (balance_bit_length(-v) - 7))
END;

-- The lowest value of the class (tier 1) holding v: [0, 128), [2^e, 2^(e+1)), and mirrored.
CREATE FUNCTION balance_class(v bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE
    WHEN v >= 0 AND v < 128 THEN 0
    WHEN v < 0 AND v > -128 THEN -127
    WHEN v > 0 THEN 1::bigint << (balance_bit_length(v) - 1)
    ELSE 1 - (1::bigint << balance_bit_length(-v))
END;

-- The lowest value above the class holding v.
CREATE FUNCTION balance_class_end(v bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE
    WHEN v >= 0 AND v < 128 THEN 128
    WHEN v < 0 AND v > -128 THEN 0
    WHEN v > 0 THEN 1::bigint << balance_bit_length(v)
    ELSE 1 - (1::bigint << (balance_bit_length(-v) - 1))
END;

CREATE TABLE balance_counts (
    guild_id BIGINT NOT NULL,
    tier     SMALLINT NOT NULL CHECK (tier IN (0, 1)),  -- 0: fine bucket, 1: class
    bucket   BIGINT NOT NULL,                           -- the bucket's lowest value
    members  BIGINT NOT NULL                            -- a part of the count; the count is the sum
);
CREATE INDEX balance_counts_bucket_idx ON balance_counts (guild_id, tier, bucket) INCLUDE (members);

INSERT INTO balance_counts (guild_id, tier, bucket, members)
SELECT guild_id, 0, balance_bucket(balance), count(*) FROM points GROUP BY 1, 3
UNION ALL
SELECT guild_id, 1, balance_class(balance), count(*) FROM points GROUP BY 1, 3;

-- Every row that left a bucket counts -1 there, every row that arrived +1; moves that cancel
-- (a change inside its bucket) write nothing. A transition table exists only for the events
-- that have one, hence a branch per event.
CREATE FUNCTION points_balance_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH moves AS (
            SELECT guild_id, tier, bucket, sum(d) AS d
            FROM (SELECT guild_id, 0::smallint AS tier, balance_bucket(balance) AS bucket, 1 AS d FROM new_rows
                  UNION ALL
                  SELECT guild_id, 1::smallint, balance_class(balance), 1 FROM new_rows) m
            GROUP BY guild_id, tier, bucket HAVING sum(d) <> 0
        ), taken AS (  -- per bucket, so each is an index lookup (a join may walk the index)
            SELECT t.row_id FROM moves, LATERAL (
                SELECT c.ctid AS row_id FROM balance_counts c
                WHERE c.guild_id = moves.guild_id AND c.tier = moves.tier AND c.bucket = moves.bucket
                FOR UPDATE SKIP LOCKED) t
        ), folded AS (
            DELETE FROM balance_counts c WHERE c.ctid = ANY (ARRAY(SELECT row_id FROM taken))
            RETURNING c.guild_id, c.tier, c.bucket, c.members
        )
        INSERT INTO balance_counts (guild_id, tier, bucket, members)
        SELECT guild_id, tier, bucket, sum(n)
        FROM (SELECT guild_id, tier, bucket, members AS n FROM folded
              UNION ALL SELECT guild_id, tier, bucket, d FROM moves) parts
        GROUP BY guild_id, tier, bucket HAVING sum(n) <> 0;
    ELSIF TG_OP = 'DELETE' THEN
        WITH moves AS (
            SELECT guild_id, tier, bucket, sum(d) AS d
            FROM (SELECT guild_id, 0::smallint AS tier, balance_bucket(balance) AS bucket, -1 AS d FROM old_rows
                  UNION ALL
                  SELECT guild_id, 1::smallint, balance_class(balance), -1 FROM old_rows) m
            GROUP BY guild_id, tier, bucket HAVING sum(d) <> 0
        ), taken AS (  -- per bucket, so each is an index lookup (a join may walk the index)
            SELECT t.row_id FROM moves, LATERAL (
                SELECT c.ctid AS row_id FROM balance_counts c
                WHERE c.guild_id = moves.guild_id AND c.tier = moves.tier AND c.bucket = moves.bucket
                FOR UPDATE SKIP LOCKED) t
        ), folded AS (
            DELETE FROM balance_counts c WHERE c.ctid = ANY (ARRAY(SELECT row_id FROM taken))
            RETURNING c.guild_id, c.tier, c.bucket, c.members
        )
        INSERT INTO balance_counts (guild_id, tier, bucket, members)
        SELECT guild_id, tier, bucket, sum(n)
        FROM (SELECT guild_id, tier, bucket, members AS n FROM folded
              UNION ALL SELECT guild_id, tier, bucket, d FROM moves) parts
        GROUP BY guild_id, tier, bucket HAVING sum(n) <> 0;
    ELSE
        WITH moves AS (
            SELECT guild_id, tier, bucket, sum(d) AS d
            FROM (SELECT guild_id, 0::smallint AS tier, balance_bucket(balance) AS bucket, -1 AS d FROM old_rows
                  UNION ALL
                  SELECT guild_id, 1::smallint, balance_class(balance), -1 FROM old_rows
                  UNION ALL
                  SELECT guild_id, 0::smallint AS tier, balance_bucket(balance) AS bucket, 1 AS d FROM new_rows
                  UNION ALL
                  SELECT guild_id, 1::smallint, balance_class(balance), 1 FROM new_rows) m
            GROUP BY guild_id, tier, bucket HAVING sum(d) <> 0
        ), taken AS (  -- per bucket, so each is an index lookup (a join may walk the index)
            SELECT t.row_id FROM moves, LATERAL (
                SELECT c.ctid AS row_id FROM balance_counts c
                WHERE c.guild_id = moves.guild_id AND c.tier = moves.tier AND c.bucket = moves.bucket
                FOR UPDATE SKIP LOCKED) t
        ), folded AS (
            DELETE FROM balance_counts c WHERE c.ctid = ANY (ARRAY(SELECT row_id FROM taken))
            RETURNING c.guild_id, c.tier, c.bucket, c.members
        )
        INSERT INTO balance_counts (guild_id, tier, bucket, members)
        SELECT guild_id, tier, bucket, sum(n)
        FROM (SELECT guild_id, tier, bucket, members AS n FROM folded
              UNION ALL SELECT guild_id, tier, bucket, d FROM moves) parts
        GROUP BY guild_id, tier, bucket HAVING sum(n) <> 0;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER points_balance_counts_insert
    AFTER INSERT ON points REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION points_balance_counts();
CREATE TRIGGER points_balance_counts_update
    AFTER UPDATE ON points REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION points_balance_counts();
CREATE TRIGGER points_balance_counts_delete
    AFTER DELETE ON points REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION points_balance_counts();
