-- Outbound webhooks (issue 13): per guild an endpoint (https URL, signing secret, the events it
-- wants), and an outbox of deliveries, one row per event and endpoint, written by triggers in the
-- transaction that makes the event, so an event exists exactly when what it reports committed,
-- whichever path made it (a slash command, the admin site, the API, a bonus, the sweep's set-based
-- grants, the store, a season's end). pointsbot.community.webhooks delivers them.
--
-- Cheap without a webhook: each trigger is one INSERT ... SELECT over the guild's enabled
-- endpoints that want the event (webhooks_guild_enabled_idx), which finds none and writes
-- nothing. bench/bench_api.py measures a ledger write with and without an endpoint.

CREATE TABLE webhooks (
    id                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id             BIGINT NOT NULL REFERENCES guilds (guild_id),
    url                  TEXT NOT NULL CHECK (length(url) BETWEEN 9 AND 2000),
    description          TEXT NOT NULL DEFAULT '' CHECK (length(description) <= 200),
    -- The signing secret ("whsec_" + 32 random bytes, base64url). Kept readable, not hashed: the
    -- worker signs with it. The admin site shows it once and reveals it again on request (audited).
    secret               TEXT NOT NULL CHECK (secret LIKE 'whsec\_%'),
    events               TEXT[] NOT NULL CHECK (cardinality(events) >= 1 AND events <@ ARRAY[
                             'entry.created', 'entry.reverted', 'achievement.earned', 'purchase.created',
                             'purchase.refunded', 'purchase.fulfilled', 'season.ended']),
    enabled              BOOLEAN NOT NULL DEFAULT TRUE,
    -- Why it is off: 'admin' (switched off on the site) or 'failures' (the worker, after
    -- WEBHOOK_DISABLE_AFTER failed attempts in a row); NULL while enabled.
    disabled_reason      TEXT CHECK (disabled_reason IN ('admin', 'failures')),
    disabled_at          TIMESTAMPTZ,
    failures_in_row      INTEGER NOT NULL DEFAULT 0,
    last_success_at      TIMESTAMPTZ,
    last_failure_at      TIMESTAMPTZ,
    created_by           TEXT NOT NULL DEFAULT '',
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (enabled = (disabled_reason IS NULL))
);
CREATE INDEX webhooks_guild_idx ON webhooks (guild_id, id);
CREATE INDEX webhooks_guild_enabled_idx ON webhooks (guild_id) WHERE enabled;

-- The outbox: one row per event and endpoint. event_id is the event's (the same for every
-- endpoint that got it, and for a resend); a resend is a new row naming the row it repeats.
CREATE TABLE webhook_deliveries (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id       BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    guild_id         BIGINT NOT NULL,
    event_id         UUID NOT NULL,
    event_type       TEXT NOT NULL,
    -- The object as it was when the event happened (the row, to_jsonb), shaped for the payload
    -- by pointsbot.community.webhooks; so every attempt and a resend send the same body.
    data             JSONB NOT NULL,
    event_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- When this row was queued (a resend's is later than its event's): retried until
    -- WEBHOOK_RETRY_HOURS after it.
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    status           TEXT NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'sending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_until      TIMESTAMPTZ,
    last_attempt_at  TIMESTAMPTZ,
    last_status      INTEGER,          -- the receiver's HTTP status, NULL when none came
    last_error       TEXT,
    last_response    TEXT,             -- the first bytes of the receiver's answer
    delivered_at     TIMESTAMPTZ,
    resend_of        BIGINT REFERENCES webhook_deliveries (id) ON DELETE SET NULL,
    resent_by        TEXT
);
-- Exactly one outbox row per event and endpoint (resends aside).
CREATE UNIQUE INDEX webhook_deliveries_event_idx ON webhook_deliveries (webhook_id, event_id)
    WHERE resend_of IS NULL;
-- What the worker claims: due rows, oldest first.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE status IN ('pending', 'sending');
-- The admin site's delivery log, per endpoint and per guild, newest first.
CREATE INDEX webhook_deliveries_webhook_idx ON webhook_deliveries (webhook_id, id DESC);

-- One event to every enabled endpoint of the guild that wants it; nothing when there is none.
CREATE FUNCTION webhook_emit(p_guild BIGINT, p_type TEXT, p_data JSONB) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    ev UUID := gen_random_uuid();  -- one id for the event, whichever endpoints get it
BEGIN
    INSERT INTO webhook_deliveries (webhook_id, guild_id, event_id, event_type, data)
    SELECT w.id, p_guild, ev, p_type, p_data
    FROM webhooks w
    WHERE w.guild_id = p_guild AND w.enabled AND p_type = ANY (w.events);
END;
$$;

-- entry.created / entry.reverted: every ledger entry but a season's balance reset (and the revert
-- of one), which season.ended reports as a whole (a reset writes one entry per member).
CREATE FUNCTION transactions_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ev UUID := gen_random_uuid();
    t  TEXT := CASE WHEN NEW.kind = 'revert' THEN 'entry.reverted' ELSE 'entry.created' END;
BEGIN
    IF NEW.source = 'season_reset' THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_deliveries (webhook_id, guild_id, event_id, event_type, data)
    SELECT w.id, NEW.guild_id, ev, t, to_jsonb(NEW)
    FROM webhooks w
    WHERE w.guild_id = NEW.guild_id AND w.enabled AND t = ANY (w.events);
    RETURN NULL;
END;
$$;
CREATE TRIGGER transactions_webhooks AFTER INSERT ON transactions
    FOR EACH ROW EXECUTE FUNCTION transactions_webhooks();

CREATE FUNCTION member_achievements_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM webhooks w WHERE w.guild_id = NEW.guild_id AND w.enabled
               AND 'achievement.earned' = ANY (w.events)) THEN
        PERFORM webhook_emit(NEW.guild_id, 'achievement.earned', to_jsonb(NEW) || jsonb_build_object(
            'achievement_name', (SELECT a.name FROM achievements a WHERE a.id = NEW.achievement_id),
            'bonus_points', (SELECT a.bonus_points FROM achievements a WHERE a.id = NEW.achievement_id)));
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER member_achievements_webhooks AFTER INSERT ON member_achievements
    FOR EACH ROW EXECUTE FUNCTION member_achievements_webhooks();

-- purchase.created on the purchase row; purchase.refunded / purchase.fulfilled when its state
-- becomes that (an expiry of a timed role is not an event).
CREATE FUNCTION purchases_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t TEXT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        t := 'purchase.created';
    ELSIF NEW.state IS DISTINCT FROM OLD.state AND NEW.state IN ('refunded', 'fulfilled') THEN
        t := 'purchase.' || NEW.state;
    ELSE
        RETURN NULL;
    END IF;
    PERFORM webhook_emit(NEW.guild_id, t, to_jsonb(NEW));
    RETURN NULL;
END;
$$;
CREATE TRIGGER purchases_webhooks AFTER INSERT OR UPDATE OF state ON purchases
    FOR EACH ROW EXECUTE FUNCTION purchases_webhooks();

-- season.ended once its end run is done (standings archived, prizes given, balances reset).
CREATE FUNCTION seasons_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.end_step < 4 AND NEW.end_step = 4 THEN
        PERFORM webhook_emit(NEW.guild_id, 'season.ended', to_jsonb(NEW));
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER seasons_webhooks AFTER UPDATE OF end_step ON seasons
    FOR EACH ROW EXECUTE FUNCTION seasons_webhooks();
