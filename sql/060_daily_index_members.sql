-- The dashboard's live day (today's points issued and removed, entries and distinct active
-- members, stats._sum_days; the figures' pass since the last kept day) read from the index
-- alone: transactions_daily_idx now carries the member too, so counting today's active members
-- no longer fetches each of today's entries from the heap (issue 12). Same name, same key, one
-- more included column: one index entry per entry as before, 8 bytes wider.
DROP INDEX transactions_daily_idx;
CREATE INDEX transactions_daily_idx ON transactions (guild_id, created_at) INCLUDE (amount, user_id);
