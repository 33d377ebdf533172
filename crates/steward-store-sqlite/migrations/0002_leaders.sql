-- Leadership leases (Store::try_lead): one row per role, naming the node that
-- holds it until `expires_at` (INTEGER milliseconds on the store's clock, like
-- every time in this file). A node takes the role when the row is missing or
-- expired, and renews it while it holds it; see docs/store-contract.md.
CREATE TABLE steward_leaders (
    role       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    -- When this holder took the role (kept across its renewals).
    elected_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
