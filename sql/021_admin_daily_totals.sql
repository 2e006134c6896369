-- The dashboard's chart: points issued and removed per UTC day. A day that has closed never
-- changes (the ledger is append-only and no transaction outlives the statement timeout), so
-- its totals are computed once and kept here; only today is summed live.
CREATE TABLE admin_daily_totals (
    guild_id      BIGINT NOT NULL REFERENCES guilds (guild_id),
    day           DATE NOT NULL,
    issued        BIGINT NOT NULL,
    removed       BIGINT NOT NULL,
    entries       BIGINT NOT NULL,
    computed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (guild_id, day)
);
