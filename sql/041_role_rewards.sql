-- Role rewards without spending (pointsbot.community.role_rewards): balance thresholds per guild
-- ("reach 1,000 points -> role X", keep or remove the role when the balance drops below again),
-- which thresholds each member holds, and achievements that grant a role.

CREATE TABLE role_thresholds (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id    BIGINT NOT NULL REFERENCES guilds (guild_id),
    points      BIGINT NOT NULL CHECK (points > 0),
    role_id     BIGINT NOT NULL CHECK (role_id > 0),
    on_drop     TEXT NOT NULL DEFAULT 'keep' CHECK (on_drop IN ('keep', 'remove')),
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- One live threshold per role of a guild; crossings look thresholds up by points.
CREATE UNIQUE INDEX role_thresholds_role_idx ON role_thresholds (guild_id, role_id) WHERE active;
CREATE INDEX role_thresholds_points_idx ON role_thresholds (guild_id, points) WHERE active;

-- Whether a member holds a threshold's role now, and how many times they reached it (each
-- crossing is one role change: source 'threshold', source_ref "<threshold>:<user>:<crossing>").
CREATE TABLE member_role_thresholds (
    guild_id      BIGINT NOT NULL,
    user_id       BIGINT NOT NULL,
    threshold_id  BIGINT NOT NULL REFERENCES role_thresholds (id),
    held          BOOLEAN NOT NULL,
    crossings     INTEGER NOT NULL DEFAULT 0,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (guild_id, user_id, threshold_id),
    FOREIGN KEY (guild_id, user_id) REFERENCES members (guild_id, user_id)
);

-- An achievement may grant a role as well as (or, with bonus 0, instead of) bonus points.
ALTER TABLE achievements ADD COLUMN role_id BIGINT CHECK (role_id IS NULL OR role_id > 0);
