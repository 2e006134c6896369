-- The dashboard's live day kept as of a moment (issue 12): today's points issued and removed,
-- entries and distinct active members over [the day's start, upto), where upto is at least
-- stats._FINAL_AFTER in the past when it is written, so every entry created before it has
-- committed (an entry's created_at is its transaction's start; statement timeouts end any
-- transaction far sooner). A dashboard load adds only the entries since upto, and the members
-- among them with no entry before it, instead of reading and sorting the whole day again.
-- One row per guild, replaced when the day changes; written on a dashboard GET like
-- admin_daily_totals.
CREATE TABLE admin_live_day (
    guild_id   BIGINT PRIMARY KEY REFERENCES guilds (guild_id),
    day        DATE NOT NULL,
    upto       TIMESTAMPTZ NOT NULL,
    issued     BIGINT NOT NULL,
    removed    BIGINT NOT NULL,
    entries    BIGINT NOT NULL,
    active     BIGINT NOT NULL
);
