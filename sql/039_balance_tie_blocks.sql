-- Positions inside a large tie (issue 14: a leaderboard page that starts deep inside the
-- 406,434 members at balance 0 of a 1M guild skipped that many index entries with OFFSET).
-- A tie listed in leaderboard order is its members by user id; for a tie that has blocks, the
-- tie's user ids are cut into consecutive ranges [lo, hi) of about a few thousand members, and
-- each block keeps how many members of the tie it holds, so page N's first member inside the
-- tie is the block where the running count reaches it plus an offset of at most one block
-- (pointsbot.ledger.queries._AT_POSITION).
--
-- Counts are kept by a statement trigger on points in the transaction that moves the balance:
-- a member entering or leaving a balance that has blocks adds or takes one from the block of
-- its user id (a row update, like guilds.member_count on first contact: writers of the same
-- block take turns on its row). Balances without blocks cost one index probe per moved row.
-- Blocks are made, re-cut and dropped only by balance_tie_blocks_build / _drop
-- (pointsbot.ledger.ties, from the scheduled keep-alive): the build holds SHARE ROW EXCLUSIVE on
-- points while it counts (writers wait for it, it waits for open writers), so no change is
-- counted twice or missed; a tie of 2M members is counted in well under a second.

CREATE TABLE balance_tie_blocks (
    guild_id BIGINT NOT NULL,
    balance  BIGINT NOT NULL,
    lo       BIGINT NOT NULL,   -- the block's first user id (the first block: the smallest bigint)
    hi       BIGINT,            -- the first user id past the block (NULL: the last block)
    members  BIGINT NOT NULL CHECK (members >= 0),
    PRIMARY KEY (guild_id, balance, lo)
);

-- A transition table exists only for the events that have one; the function reads only those.
CREATE FUNCTION points_tie_blocks_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE balance_tie_blocks b SET members = b.members + n.d
    FROM (SELECT m.guild_id, m.balance, (SELECT max(lo) FROM balance_tie_blocks
                                          WHERE guild_id = m.guild_id AND balance = m.balance
                                            AND lo <= m.user_id) AS lo, count(*) AS d
          FROM new_rows m
          WHERE EXISTS (SELECT 1 FROM balance_tie_blocks t WHERE t.guild_id = m.guild_id AND t.balance = m.balance)
          GROUP BY 1, 2, 3) n
    WHERE b.guild_id = n.guild_id AND b.balance = n.balance AND b.lo = n.lo;
    RETURN NULL;
END;
$$;

CREATE FUNCTION points_tie_blocks_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE balance_tie_blocks b SET members = b.members - n.d
    FROM (SELECT m.guild_id, m.balance, (SELECT max(lo) FROM balance_tie_blocks
                                          WHERE guild_id = m.guild_id AND balance = m.balance
                                            AND lo <= m.user_id) AS lo, count(*) AS d
          FROM old_rows m
          WHERE EXISTS (SELECT 1 FROM balance_tie_blocks t WHERE t.guild_id = m.guild_id AND t.balance = m.balance)
          GROUP BY 1, 2, 3) n
    WHERE b.guild_id = n.guild_id AND b.balance = n.balance AND b.lo = n.lo;
    RETURN NULL;
END;
$$;

CREATE FUNCTION points_tie_blocks_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Moves into and out of the blocked ties, summed per block (a member whose balance did not
    -- change, or stayed in the same block, nets to nothing); blocks in key order.
    UPDATE balance_tie_blocks b SET members = b.members + n.d
    FROM (SELECT guild_id, balance, lo, sum(d) AS d
          FROM (SELECT m.guild_id, m.balance, m.d,
                       (SELECT max(lo) FROM balance_tie_blocks
                        WHERE guild_id = m.guild_id AND balance = m.balance AND lo <= m.user_id) AS lo
                FROM (SELECT guild_id, balance, user_id, -1 AS d FROM old_rows
                      UNION ALL SELECT guild_id, balance, user_id, 1 FROM new_rows) m
                WHERE EXISTS (SELECT 1 FROM balance_tie_blocks t
                              WHERE t.guild_id = m.guild_id AND t.balance = m.balance)) x
          GROUP BY 1, 2, 3 HAVING sum(d) <> 0) n
    WHERE b.guild_id = n.guild_id AND b.balance = n.balance AND b.lo = n.lo;
    RETURN NULL;
END;
$$;

CREATE TRIGGER points_tie_blocks_insert
    AFTER INSERT ON points REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION points_tie_blocks_insert();
CREATE TRIGGER points_tie_blocks_update
    AFTER UPDATE ON points REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION points_tie_blocks_update();
CREATE TRIGGER points_tie_blocks_delete
    AFTER DELETE ON points REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION points_tie_blocks_delete();

-- Cut the tie at balance b of guild g into blocks of `size` members (again, if it has blocks).
-- Returns how many blocks. Holds SHARE ROW EXCLUSIVE on points until the caller's commit.
CREATE FUNCTION balance_tie_blocks_build(g bigint, b bigint, size int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    made int;
BEGIN
    IF size < 1 THEN
        RAISE EXCEPTION 'a tie block holds at least one member';
    END IF;
    LOCK TABLE points IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM balance_tie_blocks WHERE guild_id = g AND balance = b;
    INSERT INTO balance_tie_blocks (guild_id, balance, lo, hi, members)
    SELECT g, b, CASE WHEN k = 0 THEN -9223372036854775808 ELSE first END,
           lead(first) OVER (ORDER BY k), n
    FROM (SELECT k, min(user_id) AS first, count(*) AS n
          FROM (SELECT user_id, (row_number() OVER (ORDER BY user_id) - 1) / size AS k
                FROM points WHERE guild_id = g AND balance = b) t
          GROUP BY k) blocks;
    GET DIAGNOSTICS made = ROW_COUNT;
    RETURN made;
END;
$$;

-- A tie that no longer needs blocks: its positions are found by offset again.
CREATE FUNCTION balance_tie_blocks_drop(g bigint, b bigint) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    gone int;
BEGIN
    LOCK TABLE points IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM balance_tie_blocks WHERE guild_id = g AND balance = b;
    GET DIAGNOSTICS gone = ROW_COUNT;
    RETURN gone;
END;
$$;
