-- A season end's balance reset in two lanes at once (issue 15: the reset of 1M members is one
-- connection's work, above 60 s of server CPU; two connections use both cores).
--
-- When a reset begins on a guild of more than two batches of members, its members by user id
-- are cut once into two consecutive ranges, "lanes": (cursor, upto_user] and (upto_user, end].
-- Each lane keeps its own cursor, moved in the transaction of each of its batches, exactly as
-- seasons.reset_cursor is for a reset in one lane (which is what an end begun before this
-- migration, or a small guild, still uses; reset_cursor stays as it was when the lanes were
-- made). Two connections each reset one lane; a run killed anywhere resumes each lane after its
-- last committed batch, and nobody is reset twice (each member is in one lane, each batch's
-- entries commit with its lane's cursor). Each lane batch locks its lane's row (two runs on one
-- lane take turns) and shares the season's row, which the transaction paying the prizes locks,
-- so the prizes wait for the batches in flight and come after the last.

CREATE TABLE season_reset_lanes (
    season_id BIGINT NOT NULL REFERENCES seasons (id),
    lane      SMALLINT NOT NULL CHECK (lane >= 0),
    cursor    BIGINT NOT NULL,   -- the last user id reset in this lane (at first, the one before it)
    upto_user BIGINT,            -- the lane's last user id; NULL: to the guild's last member
    PRIMARY KEY (season_id, lane)
);
