-- Per-minute history for charts (Store::record_history): what attempts of
-- each queue and kind did in each minute, and how long they ran. Nodes add
-- their counts in batches (never a write per job), so rows are few: one per
-- minute, queue and kind that saw work.
--
-- The key leads with the minute: reading the last hour and pruning the
-- oldest days are both range scans of the primary key, and WITHOUT ROWID
-- keeps each row in the key's B-tree (no second lookup).
CREATE TABLE steward_history (
    minute    INTEGER NOT NULL, -- the minute's start, ms since the epoch
    queue     TEXT    NOT NULL,
    kind      TEXT    NOT NULL,
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed    INTEGER NOT NULL DEFAULT 0,
    retried   INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0,
    rescued   INTEGER NOT NULL DEFAULT 0,
    -- RunTimes::encode: `bucket:count` pairs; merged in Rust on write.
    run_times TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (minute, queue, kind)
) STRICT, WITHOUT ROWID;
