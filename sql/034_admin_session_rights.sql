-- Discord admin rights are re-checked against Discord every few minutes during a session, not
-- only at sign-in. The session keeps the user's OAuth2 access token, sealed with a key derived
-- from the session's cookie token (which this table never holds, only its hash), so a copy of
-- the table opens no Discord account; and when the rights were last confirmed.
ALTER TABLE admin_sessions
    ADD COLUMN discord_token     BYTEA,
    ADD COLUMN rights_checked_at TIMESTAMPTZ;
