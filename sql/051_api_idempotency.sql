-- The API's Idempotency-Key (issue 13), with Stripe's semantics: per API key, the first request
-- under a key claims this row in the transaction that makes its effect, and stores the answer
-- (status and body) there; the same key with the same request gets that answer back, with a
-- different one a 422. A second request while the first is in flight waits on the row's unique
-- index until the first commits (then replays it) or rolls back (then it goes ahead itself).
-- Rows are kept at least 24 hours (pruned by the keep-alive after API_IDEMPOTENCY_HOURS).

CREATE TABLE api_idempotency (
    key_id         BIGINT NOT NULL REFERENCES api_keys (id),
    idem_key       TEXT NOT NULL CHECK (length(idem_key) BETWEEN 1 AND 255),
    fingerprint    BYTEA NOT NULL,  -- SHA-256 of method, path and the canonical JSON body
    status         INTEGER NOT NULL,
    body           TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (key_id, idem_key)
);
CREATE INDEX api_idempotency_created_idx ON api_idempotency (created_at);
