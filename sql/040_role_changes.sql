-- Discord role grants and removals as an outbox (pointsbot.community.roles): a change is a row
-- written in the same transaction as what caused it (a purchase, a threshold crossed, an
-- achievement, a season prize, a timed grant ending), then made by the worker exactly once.

CREATE TABLE role_changes (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id         BIGINT NOT NULL,
    user_id          BIGINT NOT NULL,
    role_id          BIGINT NOT NULL CHECK (role_id > 0),
    action           TEXT NOT NULL CHECK (action IN ('add', 'remove')),
    -- What asked for it (purchase, threshold, achievement, season_prize, expiry, ...) and which
    -- one of those (a purchase id, "<season id>:<user id>", ...): the idempotency key together
    -- with guild and action, so asking twice records one change.
    source           TEXT NOT NULL CHECK (source ~ '^[a-z][a-z0-9_]{0,39}$'),
    source_ref       TEXT NOT NULL CHECK (length(source_ref) BETWEEN 1 AND 200),
    -- The audit-log reason Discord shows admins (X-Audit-Log-Reason).
    reason           TEXT NOT NULL DEFAULT '' CHECK (length(reason) <= 512),
    -- pending -> sending (claimed, with a lease until next_attempt_at) -> done, or refused
    -- (Discord said no for good: 50013, 10011, 10007, ...), or failed (gave up after retries).
    state            TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'sending', 'done', 'refused', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_at       TIMESTAMPTZ,  -- the claim's token: a result is written only while it holds
    -- A timed grant (action add): the role is removed again once this has passed, by a change
    -- of source 'expiry' whose source_ref is this change's id (removal_id points at it).
    expires_at       TIMESTAMPTZ,
    removal_id       BIGINT REFERENCES role_changes (id),
    error_code       INTEGER,  -- Discord's code of the last error (50013, 10011, ...), or HTTP status
    last_error       TEXT,
    -- An admin saw the refusal or failure (the flag on the admin site goes away).
    acknowledged_at  TIMESTAMPTZ,
    acknowledged_by  BIGINT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at      TIMESTAMPTZ,
    FOREIGN KEY (guild_id, user_id) REFERENCES members (guild_id, user_id),
    UNIQUE (guild_id, source, source_ref, action),
    CHECK (expires_at IS NULL OR action = 'add')
);
-- The worker's claim: what is due, oldest first.
CREATE INDEX role_changes_due_idx ON role_changes (next_attempt_at) WHERE state IN ('pending', 'sending');
-- One member's role changes are made in the order they were asked for: the claim looks for an
-- earlier unfinished change of the same member and role.
CREATE INDEX role_changes_member_role_idx ON role_changes (guild_id, user_id, role_id, id)
    WHERE state IN ('pending', 'sending');
-- The member's page (newest first).
CREATE INDEX role_changes_member_idx ON role_changes (guild_id, user_id, id DESC);
-- The admin flag: refusals and failures nobody has looked at yet.
CREATE INDEX role_changes_unseen_idx ON role_changes (guild_id, id DESC)
    WHERE state IN ('refused', 'failed') AND acknowledged_at IS NULL;
-- Timed grants whose removal is not yet asked for (the scheduled expiry run).
CREATE INDEX role_changes_expiring_idx ON role_changes (expires_at)
    WHERE expires_at IS NOT NULL AND removal_id IS NULL;
