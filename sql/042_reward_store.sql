-- The reward store (issue 10): rewards a guild sells for points, the purchases (redemptions)
-- members make, and the codes a code reward hands out. A purchase is one transaction: a ledger
-- entry of its own kind (`purchase`), the stock taken, the purchase row, the code assigned and
-- its DM queued; a refund is a linked entry (`purchase_refund`, reverts_id = the purchase's
-- entry), never a delete.

-- The ledger's kinds and sources: the whole agreed union (see /work/wt/INTERFACES.md), so the
-- migrations that widen these lists can land and run in any order. NOT VALID: every old row
-- holds a value of the old lists, a subset.
ALTER TABLE transactions DROP CONSTRAINT IF EXISTS transactions_kind_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_kind_check CHECK (kind IN (
    'award', 'deduct', 'set', 'transfer_in', 'transfer_out', 'revert', 'achievement', 'email_bonus',
    'purchase', 'purchase_refund', 'season_reset', 'season_prize')) NOT VALID;
ALTER TABLE transactions DROP CONSTRAINT IF EXISTS transactions_source_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_source_check CHECK (source IN (
    'slash', 'admin_site', 'achievement', 'system', 'purchase', 'purchase_refund', 'season_reset',
    'season_prize', 'api')) NOT VALID;

CREATE TABLE rewards (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id         BIGINT NOT NULL REFERENCES guilds (guild_id),
    kind             TEXT NOT NULL CHECK (kind IN ('role', 'item', 'code')),
    name             TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description      TEXT NOT NULL DEFAULT '' CHECK (length(description) <= 1000),
    price            BIGINT NOT NULL CHECK (price > 0),
    -- What is left to sell; NULL is unlimited. A code reward's stock is its unassigned codes.
    stock            BIGINT CHECK (stock >= 0),
    per_member_limit INTEGER CHECK (per_member_limit > 0),  -- NULL: no limit
    starts_at        TIMESTAMPTZ,
    ends_at          TIMESTAMPTZ,
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    role_id          BIGINT,
    duration_days    INTEGER CHECK (duration_days BETWEEN 1 AND 3650),  -- NULL: the role is kept
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (ends_at IS NULL OR starts_at IS NULL OR ends_at > starts_at),
    CHECK ((kind = 'role') = (role_id IS NOT NULL)),
    CHECK (kind = 'role' OR duration_days IS NULL),
    CHECK (kind <> 'code' OR stock IS NOT NULL)
);
-- One name per guild whatever its case; also /buy's autocomplete (a prefix of lower(name)).
CREATE UNIQUE INDEX rewards_guild_name_idx ON rewards (guild_id, lower(name) text_pattern_ops);

CREATE TABLE purchases (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id            BIGINT NOT NULL,
    user_id             BIGINT NOT NULL,
    reward_id           BIGINT NOT NULL REFERENCES rewards (id),
    -- What was bought, as it was then (the reward may be renamed or repriced later).
    kind                TEXT NOT NULL CHECK (kind IN ('role', 'item', 'code')),
    reward_name         TEXT NOT NULL,
    price               BIGINT NOT NULL CHECK (price > 0),
    state               TEXT NOT NULL CHECK (state IN ('granted', 'pending', 'fulfilled', 'refunded', 'expired')),
    -- The interaction that bought it: a second delivery finds this row and changes nothing.
    interaction_id      BIGINT NOT NULL UNIQUE,
    operation_id        BIGINT NOT NULL UNIQUE REFERENCES operations (id),
    entry_id            BIGINT NOT NULL UNIQUE REFERENCES transactions (id),
    refund_operation_id BIGINT UNIQUE REFERENCES operations (id),
    refund_entry_id     BIGINT UNIQUE REFERENCES transactions (id),
    role_id             BIGINT,
    expires_at          TIMESTAMPTZ,
    note                TEXT NOT NULL DEFAULT '',  -- the fulfilment or refund note, shown to the member
    flag                TEXT,  -- why an admin should look (e.g. Discord refused the role)
    handled_by          BIGINT,
    handled_by_name     TEXT NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    FOREIGN KEY (guild_id, user_id) REFERENCES members (guild_id, user_id),
    CHECK ((state = 'refunded') = (refund_entry_id IS NOT NULL))
);
CREATE INDEX purchases_member_idx ON purchases (guild_id, user_id, id DESC);
-- The per-member limit counts these (a refunded purchase does not count).
CREATE INDEX purchases_reward_member_idx ON purchases (reward_id, user_id) WHERE state <> 'refunded';
-- The redemptions queue and its filters.
CREATE INDEX purchases_guild_state_idx ON purchases (guild_id, state, id DESC);
CREATE INDEX purchases_guild_idx ON purchases (guild_id, id DESC);
CREATE INDEX purchases_flagged_idx ON purchases (guild_id, id DESC) WHERE flag IS NOT NULL;

CREATE TABLE reward_codes (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id     BIGINT NOT NULL REFERENCES guilds (guild_id),
    reward_id    BIGINT NOT NULL REFERENCES rewards (id),
    code         TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 200),
    -- The one purchase this code was handed to; set once, never changed or cleared.
    purchase_id  BIGINT UNIQUE REFERENCES purchases (id),
    uploaded_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    assigned_at  TIMESTAMPTZ,
    UNIQUE (guild_id, code)
);
CREATE INDEX reward_codes_free_idx ON reward_codes (reward_id, id) WHERE purchase_id IS NULL;

-- A code handed out stays handed out: its purchase never changes and its row is never deleted.
CREATE FUNCTION reward_codes_assigned_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.purchase_id IS NOT NULL AND (TG_OP = 'DELETE' OR NEW.purchase_id IS DISTINCT FROM OLD.purchase_id
                                        OR NEW.code IS DISTINCT FROM OLD.code) THEN
        RAISE EXCEPTION 'reward code % was handed out; it cannot be changed or removed', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END;
$$;
CREATE TRIGGER reward_codes_assigned_once
    BEFORE UPDATE OR DELETE ON reward_codes
    FOR EACH ROW EXECUTE FUNCTION reward_codes_assigned_once();
