-- The admin site's member search filtered to "email pending" lists the members with a
-- submission waiting for review, highest balance first, paged by keyset (issue 14, goal 6).
-- Walking the whole leaderboard and probing email_submissions for each member costs about
-- page size / share pending probes per page (5,000 at 1% pending of 1M members; more the fewer
-- are pending), and the generic plan of that walk went parallel. Instead, points carries
-- whether the member has a pending submission, and a partial index lists exactly those members
-- in leaderboard order: any page, first or by keyset, is one short range of it.
--
-- The flag is kept by triggers in the transaction that changes it: a submission made, reviewed
-- (its status changed) or removed sets it from email_submissions_one_pending_idx; a points row
-- made after its member's submission (first contact later) gets it on INSERT. The ledger's
-- writes never touch it; a balance change of a flagged member also moves its entry in the
-- partial index (of the few flagged members only).

ALTER TABLE points ADD COLUMN email_pending BOOLEAN NOT NULL DEFAULT FALSE;

UPDATE points p SET email_pending = TRUE
FROM email_submissions e
WHERE e.status = 'pending' AND e.guild_id = p.guild_id AND e.user_id = p.user_id;

CREATE INDEX points_email_pending_idx ON points (guild_id, balance DESC, user_id) WHERE email_pending;

CREATE FUNCTION email_submissions_pending_flag() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    g bigint;
    u bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        g := OLD.guild_id; u := OLD.user_id;
    ELSE
        g := NEW.guild_id; u := NEW.user_id;
    END IF;
    UPDATE points p SET email_pending = x.pending
    FROM (SELECT EXISTS (SELECT 1 FROM email_submissions e
                         WHERE e.guild_id = g AND e.user_id = u AND e.status = 'pending') AS pending) x
    WHERE p.guild_id = g AND p.user_id = u AND p.email_pending IS DISTINCT FROM x.pending;
    IF TG_OP = 'UPDATE' AND (OLD.guild_id, OLD.user_id) IS DISTINCT FROM (NEW.guild_id, NEW.user_id) THEN
        UPDATE points p SET email_pending = EXISTS (
            SELECT 1 FROM email_submissions e
            WHERE e.guild_id = OLD.guild_id AND e.user_id = OLD.user_id AND e.status = 'pending')
        WHERE p.guild_id = OLD.guild_id AND p.user_id = OLD.user_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER email_submissions_pending_flag
    AFTER INSERT OR DELETE OR UPDATE OF status, guild_id, user_id ON email_submissions
    FOR EACH ROW EXECUTE FUNCTION email_submissions_pending_flag();

-- A member's points row made after their submission: one probe of the pending index per
-- inserted row, an UPDATE only for a member who has one.
CREATE FUNCTION points_email_pending_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Every command's first-contact INSERT ... ON CONFLICT DO NOTHING fires this, mostly with no
    -- row: the UPDATE (and the statement triggers it fires) runs only when one is due.
    IF EXISTS (SELECT 1 FROM new_rows n
               WHERE NOT n.email_pending
                 AND EXISTS (SELECT 1 FROM email_submissions e
                             WHERE e.guild_id = n.guild_id AND e.user_id = n.user_id AND e.status = 'pending')) THEN
        UPDATE points p SET email_pending = TRUE
        FROM new_rows n
        WHERE p.guild_id = n.guild_id AND p.user_id = n.user_id AND NOT n.email_pending
          AND EXISTS (SELECT 1 FROM email_submissions e
                      WHERE e.guild_id = n.guild_id AND e.user_id = n.user_id AND e.status = 'pending');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER points_email_pending_insert
    AFTER INSERT ON points REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION points_email_pending_insert();
