-- Leadership leases (Store::try_lead): one row per role, naming the node that
-- holds it until `expires_at`, on the database's clock (`now()`), so nodes
-- with skewed clocks agree on when a lease ends. A node takes the role when the
-- row is missing or expired and renews it while it holds it, in one upsert
-- (see src/ops/leader.rs); see docs/postgres.md, "Leadership".
CREATE TABLE {schema}.leaders (
    role       text        PRIMARY KEY,
    holder     text        NOT NULL,
    -- When this holder took the role (kept across its renewals).
    elected_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
