-- The guild's roles as Discord last listed them (GET /guilds/{id}/roles), for the admin site's
-- role pickers and the role names on its pages (pointsbot.community.profiles.guild_roles): a
-- page asks Discord at most once per ROLES_MAX_AGE, never once per row, and shows what was kept
-- here when Discord cannot be reached.
ALTER TABLE guilds ADD COLUMN IF NOT EXISTS roles JSONB;
ALTER TABLE guilds ADD COLUMN IF NOT EXISTS roles_checked_at TIMESTAMPTZ;
