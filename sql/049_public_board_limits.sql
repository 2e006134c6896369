-- The public leaderboard page's rate limit (issue 15): requests per client per fixed window,
-- one row per client and window start, counted by one INSERT ... ON CONFLICT as the API counts
-- its keys (sql/050 api_key_windows). The client is the SHA-256 of its address, never the
-- address itself. UNLOGGED: a counter lost in a crash only forgives a minute of requests, and
-- a public page read should not cost a WAL flush. Old windows are pruned by the keep-alive.

CREATE UNLOGGED TABLE public_board_windows (
    client_hash   BYTEA NOT NULL CHECK (length(client_hash) = 32),
    window_start  TIMESTAMPTZ NOT NULL,
    requests      INTEGER NOT NULL,
    PRIMARY KEY (client_hash, window_start)
);
