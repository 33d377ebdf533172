-- Queue settings (Store::pause_queue, resume_queue, paused_queues, queues;
-- see src/ops/queues.rs): one row per queue an operator set something on,
-- for now its pause. Rows stay when a queue is resumed, so later settings
-- have their place. Every worker reads the paused names once per poll
-- interval: a tiny table, never joined to the claim. No grants: like the
-- jobs table, only the store's own role reads or writes it (a role allowed
-- to enqueue does so through the enqueue function alone).
CREATE TABLE {schema}.queues (
    -- Bytewise order (COLLATE "C"), as every store lists queues by name.
    name       text        COLLATE "C" PRIMARY KEY,
    -- When the queue was paused (the database's clock); NULL while it runs.
    paused_at  timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
