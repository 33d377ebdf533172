-- Nodes (Store::register_node): one row per live process that runs a worker,
-- with its last report, on the database's clock (`now()`) so that nodes with
-- skewed clocks agree on who is alive. A node refreshes its row every few
-- seconds; a row whose `expires_at` passed is not listed, and the next
-- registration of any node deletes it (see src/ops/nodes.rs). A clean
-- shutdown deletes the node's own row at once. A plain table, like the
-- leaders': the store's role reads and writes it; no function to grant.
CREATE TABLE {schema}.nodes (
    -- Bytewise order (COLLATE "C"), as every store lists nodes by id.
    id         text        COLLATE "C" PRIMARY KEY,
    host       text        NOT NULL,
    pid        bigint      NOT NULL,
    version    text        NOT NULL,
    -- steward_core::store::NodeQueue and NodeService lists: read and
    -- written whole, never queried inside.
    queues     jsonb       NOT NULL,
    running    bigint      NOT NULL,
    services   jsonb       NOT NULL,
    -- The first registration (kept across refreshes).
    started_at timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
