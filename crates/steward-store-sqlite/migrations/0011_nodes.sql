-- Nodes (Store::register_node): one row per live process that runs a worker,
-- with its last report. Times are INTEGER milliseconds on the store's clock,
-- like every time in this file. A node refreshes its row every few seconds;
-- a row whose `expires_at` passed is not listed, and the next registration
-- of any node deletes it (see src/ops/nodes.rs). A clean shutdown deletes
-- the node's own row at once.
CREATE TABLE steward_nodes (
    id         TEXT    PRIMARY KEY,
    host       TEXT    NOT NULL,
    pid        INTEGER NOT NULL,
    version    TEXT    NOT NULL,
    -- JSON arrays of steward_core::store::NodeQueue and NodeService: read
    -- and written whole, never queried inside.
    queues     TEXT    NOT NULL,
    running    INTEGER NOT NULL,
    services   TEXT    NOT NULL,
    -- The first registration (kept across refreshes).
    started_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
