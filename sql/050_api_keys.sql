-- API keys (issue 13): per guild, scopes read / write, stored as the SHA-256 of the key (the key
-- is 32 random bytes, so a fast hash is enough: nothing to guess), shown once at creation,
-- revocable, with the time of the last use. pointsbot.community.api_keys.

CREATE TABLE api_keys (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id      BIGINT NOT NULL,
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- The first characters of the key ("pbk_" + 8), so an admin can tell keys apart.
    prefix        TEXT NOT NULL,
    key_hash      BYTEA NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    scopes        TEXT[] NOT NULL CHECK (cardinality(scopes) >= 1 AND scopes <@ ARRAY['read', 'write']),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_by    TEXT NOT NULL DEFAULT '',
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ,
    revoked_by    TEXT
);
CREATE INDEX api_keys_guild_idx ON api_keys (guild_id, id DESC);

-- Requests per key per fixed window (the API's limit): one row per key and window start.
CREATE TABLE api_key_windows (
    key_id        BIGINT NOT NULL REFERENCES api_keys (id),
    window_start  TIMESTAMPTZ NOT NULL,
    requests      INTEGER NOT NULL,
    PRIMARY KEY (key_id, window_start)
);
