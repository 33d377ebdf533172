-- Queue settings (Store::pause_queue, resume_queue, paused_queues, queues):
-- one row per queue an operator set something on; for now its pause. Rows
-- stay when a queue is resumed, so later settings have their place. Every
-- worker reads the paused names once per poll interval: a tiny table, never
-- joined to the claim. Times are INTEGER milliseconds on the store's clock.
CREATE TABLE steward_queues (
    name       TEXT    PRIMARY KEY,
    -- When the queue was paused; NULL while it runs.
    paused_at  INTEGER,
    updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
