-- Names and pictures for the admin site (pointsbot.community.profiles): what interactions and
-- OAuth sign-ins carry is recorded as it arrives; what is missing or old is refreshed from
-- Discord's REST API by the worker ("refresh_profiles" task), never during a page.

-- The guild's icon (its name is guilds.name), and when Discord was last asked / answered.
ALTER TABLE guilds ADD COLUMN IF NOT EXISTS icon TEXT;
ALTER TABLE guilds ADD COLUMN IF NOT EXISTS profile_checked_at TIMESTAMPTZ;
ALTER TABLE guilds ADD COLUMN IF NOT EXISTS profile_requested_at TIMESTAMPTZ;

-- A member's picture as a path on Discord's CDN ("avatars/<user>/<hash>" or the guild's own
-- "guilds/<guild>/users/<user>/avatars/<hash>"), and the refresh bookkeeping.
ALTER TABLE members ADD COLUMN IF NOT EXISTS avatar TEXT;
ALTER TABLE members ADD COLUMN IF NOT EXISTS profile_checked_at TIMESTAMPTZ;
ALTER TABLE members ADD COLUMN IF NOT EXISTS profile_requested_at TIMESTAMPTZ;

-- People the site names who may not be members of the guild's ledger: admins who signed in
-- with Discord (the actor of their changes). Written at sign-in.
CREATE TABLE IF NOT EXISTS discord_users (
    user_id      BIGINT PRIMARY KEY,
    username     TEXT,
    global_name  TEXT,
    avatar       TEXT,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
