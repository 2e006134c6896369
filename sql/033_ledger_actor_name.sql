-- Every ledger entry names who made it. actor_id is a Discord user id, which a local admin
-- account, an achievement bonus or a system job does not have; actor_name says who it was then
-- ("local:alice", "achievement", "system") and, for Discord users, the name they had.
-- The CHECK holds new entries to it: a person's change (slash command, admin site) carries a
-- Discord id or a name; a bonus or a job is named by its source at least. Entries written
-- before this migration are left as they are (the ledger is append-only) and are shown by
-- their source.

ALTER TABLE transactions ADD COLUMN actor_name TEXT NOT NULL DEFAULT '';
ALTER TABLE transactions ADD CONSTRAINT transactions_names_its_actor
    CHECK (actor_id IS NOT NULL OR actor_name <> '' OR source IN ('achievement', 'system')) NOT VALID;

-- The transactions monitor's actor filter for actors without a Discord id.
CREATE INDEX transactions_actor_name_idx ON transactions (guild_id, actor_name, id DESC) WHERE actor_id IS NULL;
