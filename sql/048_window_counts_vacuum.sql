-- window_counts keeps a few rows per window and bucket, but every ledger write that moves a
-- score across a bucket replaces them (delete + insert, sql/046-047): the live rows stay few
-- while dead ones pile up, and each write's index lookups walk them until a vacuum. Vacuum
-- these small tables after a fixed number of changes instead of a fraction of their size.
ALTER TABLE window_counts SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000,
                               autovacuum_vacuum_cost_delay = 0);
ALTER TABLE window_scores SET (autovacuum_vacuum_scale_factor = 0.05);
