-- The audit log filters by action from a list of the actions this guild's log holds (issue 12).
-- The list is read by skipping from one action to the next over this index (a loose index
-- scan: one probe per distinct action, however many rows each has, e.g. one per API call), and
-- a filtered page is a keyset range of it (guild, action, id < cursor) instead of a walk over
-- every row of the guild's log looking for that action.
CREATE INDEX admin_audit_guild_action_idx ON admin_audit (guild_id, action, id DESC);
