-- The DM history of the admin site lists a guild's messages newest first whatever their status;
-- without this it sorts all of them. And the ledger keeps one (guild_id, created_at) index, not
-- two: 020's covering transactions_daily_idx (with amount) serves every query the foundation's
-- transactions_guild_created_idx served, so that one goes (one index less per ledger write).
CREATE INDEX direct_messages_history_idx ON direct_messages (guild_id, id DESC);
DROP INDEX transactions_guild_created_idx;
