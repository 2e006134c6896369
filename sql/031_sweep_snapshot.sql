-- What an achievement sweep holds fixed from its start (README, "Achievements"): the balance of
-- the K-th place of every top-K achievement, so bonuses the sweep pays in one batch cannot move
-- members of a later batch into or out of the top K, and a run that continues the sweep (the
-- next Lambda invocation) uses the same leaderboard. The clock is fixed too: the sweep's
-- started_at. Rows are deleted when their sweep finishes.
CREATE TABLE achievement_sweep_cutoffs (
    sweep_id        BIGINT NOT NULL REFERENCES achievement_sweeps (id) ON DELETE CASCADE,
    achievement_id  BIGINT NOT NULL REFERENCES achievements (id) ON DELETE CASCADE,
    threshold       BIGINT NOT NULL,  -- the K it was taken for (an edit of K takes a new one)
    cutoff          BIGINT,           -- NULL: fewer than K members had a balance
    PRIMARY KEY (sweep_id, achievement_id)
);
