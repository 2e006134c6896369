-- Dashboard figures without scanning a million rows: closed days also keep how many members
-- joined, so members and points in circulation are the kept days plus what happened since.
-- The table is only a cache of the ledger; it is emptied so every day is summed afresh.
TRUNCATE admin_daily_totals;
ALTER TABLE admin_daily_totals ADD COLUMN new_members BIGINT NOT NULL DEFAULT 0;
CREATE INDEX members_joined_idx ON members (guild_id, joined_at);
