-- The members of a key range with an approved email address, read by the achievement sweep
-- for its `email_approved` criterion over the batch's keys (issue 14, goal 6). Without it each
-- batch read every approved submission of the table (a hashed subplan over a sequential scan:
-- 10,000 rows per batch of 1,000 members at 1M members with 1% approved). Written only when
-- an admin approves a submission (or it is erased), not on the ledger's write path.
CREATE INDEX email_submissions_approved_idx ON email_submissions (guild_id, user_id) WHERE status = 'approved';
