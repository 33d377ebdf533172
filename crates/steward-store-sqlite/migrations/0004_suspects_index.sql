-- Suspects: queued jobs whose worker was lost twice in a row while they ran
-- (`rescues >= 2`, steward_core::store::SUSPECT_RESCUES). A claim takes at most
-- one of them per worker (src/ops/claim.rs), so that a job which kills its
-- process never takes another suspect down with it. This
-- index holds only them, so finding the next suspect costs an index probe even
-- when millions of ordinary jobs are queued; it is empty most of the time, and
-- an ordinary job's writes never touch it.
CREATE INDEX steward_jobs_suspects ON steward_jobs (queue, priority, run_at)
    WHERE (state = 'scheduled' OR state = 'available' OR state = 'retryable') AND rescues >= 2;
