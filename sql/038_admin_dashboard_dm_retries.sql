-- The dashboard's "failed DMs not retried" figure (pointsbot.admin.stats.figures) counted the
-- failed DMs and, for each, looked for its retry ("retry:<id>" in the same guild): a hash anti
-- join over every DM of the guild, 40 ms at 1M members. It is now the failed DMs less those
-- with a retry, and the retries (few: an admin's clicks) are found through this partial index.
-- (A guild's dedupe keys are unique, so a DM has at most one retry.)
CREATE INDEX direct_messages_retries_idx ON direct_messages (guild_id, dedupe_key)
    WHERE dedupe_key LIKE 'retry:%';
