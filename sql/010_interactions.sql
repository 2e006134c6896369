-- Slash commands: the answer of every interaction that wrote something, keyed by the
-- interaction id, written in the same transaction as the change. A second delivery of the same
-- interaction (Discord retrying, the worker finishing what the inline attempt already did)
-- finds the row and replays the answer instead of doing the work twice.
CREATE TABLE interaction_replies (
    interaction_id  BIGINT PRIMARY KEY,
    guild_id        BIGINT NOT NULL,
    user_id         BIGINT NOT NULL,
    command         TEXT NOT NULL,
    reply           JSONB,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Interaction tokens live 15 minutes; old rows are pruned by age.
CREATE INDEX interaction_replies_created_idx ON interaction_replies (created_at);

-- An email review (approve/reject) may carry an idempotency key of its caller (the admin
-- site's form token), so a double submit reviews once.
ALTER TABLE email_submissions ADD COLUMN review_key TEXT;
CREATE UNIQUE INDEX email_submissions_review_key_idx
    ON email_submissions (guild_id, review_key) WHERE review_key IS NOT NULL;
