-- The balance range (pointsbot.amounts.MAX_BALANCE): every balance, and every entry's
-- balance_after, stays within -10^12 .. 10^12, so a balance plus any change, and the sums kept
-- beside it, can never overflow BIGINT and stay exact integers for JSON/JavaScript readers.
-- The ledger's guarded statement refuses first with a plain message; these constraints make
-- sure no other path (a new code path, a hand-written UPDATE) can write past it.
--
-- NOT VALID: rows written before this migration are not checked here (a balance raised out of
-- range by the old code must not stop the deploy; the ledger lets an admin set it back into
-- range). New and changed rows are checked. Where nothing is out of range, which is every
-- database this bug never hit, the constraints are validated at once.

ALTER TABLE points ADD CONSTRAINT points_balance_range
    CHECK (balance BETWEEN -1000000000000 AND 1000000000000) NOT VALID;
ALTER TABLE transactions ADD CONSTRAINT transactions_balance_after_range
    CHECK (balance_after BETWEEN -1000000000000 AND 1000000000000) NOT VALID;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM points WHERE balance NOT BETWEEN -1000000000000 AND 1000000000000) THEN
        ALTER TABLE points VALIDATE CONSTRAINT points_balance_range;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM transactions
                   WHERE balance_after NOT BETWEEN -1000000000000 AND 1000000000000) THEN
        ALTER TABLE transactions VALIDATE CONSTRAINT transactions_balance_after_range;
    END IF;
END
$$;
