-- The DM claim skips recipients who have a DM in flight with another worker (so one worker owns a
-- recipient's DMs and opens their DM channel once); this finds those rows without a scan.
CREATE INDEX direct_messages_in_flight_idx ON direct_messages (user_id) WHERE status = 'sending';
