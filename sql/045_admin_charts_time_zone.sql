-- The admin site's charts and its one time format (issue 12 item 3, issue 15's dashboard).

-- Each admin's own time zone for every time the site shows (NULL or no row: the guild's time
-- zone, else UTC). Keyed by who signs in: 'discord:<user id>' or 'local:<lower-case name>'
-- (local account names are unique case-insensitively, sql/020).
CREATE TABLE admin_preferences (
    admin_key     TEXT PRIMARY KEY,
    time_zone     TEXT,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Active members per day (members with at least one ledger entry that UTC day), kept with the
-- other closed-day totals. The table is only a cache of the ledger: it is emptied so every day
-- is summed afresh with the new column (as 022 did).
TRUNCATE admin_daily_totals;
ALTER TABLE admin_daily_totals ADD COLUMN active_members BIGINT NOT NULL DEFAULT 0;

-- DM delivery outcomes per UTC day of the DM's creation. A day is kept once it is closed AND
-- none of its DMs is still queued or sending (a DM ends sent or failed and stays so; a retry
-- is a new DM), so a kept day never changes; the others are counted live.
CREATE TABLE admin_daily_dms (
    guild_id      BIGINT NOT NULL REFERENCES guilds (guild_id),
    day           DATE NOT NULL,
    sent          BIGINT NOT NULL,
    failed        BIGINT NOT NULL,
    computed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (guild_id, day)
);
-- Counting a day's DMs by outcome reads this index only (no pass over the guild's DMs).
CREATE INDEX direct_messages_created_idx ON direct_messages (guild_id, created_at) INCLUDE (status);
