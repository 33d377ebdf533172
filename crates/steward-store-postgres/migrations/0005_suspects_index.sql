-- Suspects: queued jobs whose worker was lost twice in a row while they ran
-- (`rescues >= 2`, steward_core::store::SUSPECT_RESCUES). A claim takes at most
-- one of them per worker (src/ops/claim.rs), so that a job which kills its
-- process never takes another suspect down with it. This
-- index holds only them, so finding the next suspect costs an index probe even
-- when millions of ordinary jobs are queued; it is empty most of the time.
-- A heartbeat changes no column it names, so heartbeats stay HOT updates.
CREATE INDEX jobs_suspects ON {schema}.jobs (queue, priority, run_at, id)
    WHERE state IN ('scheduled', 'available', 'retryable') AND rescues >= 2;
