-- How many active achievements a guild defines, kept by a trigger in the transaction that
-- creates, switches or deletes one (the pattern of sql/002's member_count), so a balance change
-- reads it with the guild's settings and skips the achievement check, a round trip, when the
-- guild has none (pointsbot.community.points.after_change). Deltas, not a recount: two admins
-- defining achievements at once each add one under the guild row's lock, and neither count is
-- lost (a recount would read a snapshot without the other's row).
ALTER TABLE guilds ADD COLUMN active_achievements INTEGER NOT NULL DEFAULT 0;

UPDATE guilds g SET active_achievements = c.n
FROM (SELECT guild_id, count(*) AS n FROM achievements WHERE active GROUP BY guild_id) c
WHERE g.guild_id = c.guild_id;

CREATE FUNCTION achievements_count_active() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.active = NEW.active AND OLD.guild_id = NEW.guild_id THEN
        RETURN NULL;  -- an edit of its name, bonus or criterion: no change of the count
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.active THEN
        UPDATE guilds SET active_achievements = active_achievements - 1 WHERE guild_id = OLD.guild_id;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.active THEN
        UPDATE guilds SET active_achievements = active_achievements + 1 WHERE guild_id = NEW.guild_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER achievements_count_active
    AFTER INSERT OR DELETE OR UPDATE OF active, guild_id ON achievements
    FOR EACH ROW EXECUTE FUNCTION achievements_count_active();
