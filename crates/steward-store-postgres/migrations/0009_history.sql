-- Per-minute history for charts (Store::record_history): what attempts of
-- each queue and kind did in each minute, and how long they ran. Nodes add
-- their counts in batches (never a write per job), so rows are few: one per
-- minute, queue and kind that saw work.
--
-- The key leads with the minute: reading the last hour and pruning the
-- oldest days are both range scans of the primary key. Names are compared
-- bytewise (COLLATE "C"), as every store orders rows, whatever the
-- database's collation.
CREATE TABLE {schema}.history (
    minute    timestamptz NOT NULL, -- the minute's start, UTC
    queue     text        COLLATE "C" NOT NULL,
    kind      text        COLLATE "C" NOT NULL,
    succeeded bigint      NOT NULL DEFAULT 0,
    failed    bigint      NOT NULL DEFAULT 0,
    retried   bigint      NOT NULL DEFAULT 0,
    cancelled bigint      NOT NULL DEFAULT 0,
    rescued   bigint      NOT NULL DEFAULT 0,
    -- RunTimes::encode: `bucket:count` pairs; merged in Rust on write, under
    -- the row's lock (src/ops/history.rs).
    run_times text        NOT NULL DEFAULT '',
    PRIMARY KEY (minute, queue, kind)
);
