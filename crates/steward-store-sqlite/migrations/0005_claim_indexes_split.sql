-- The claim index (0003) and the suspects index (0004) split the queued jobs
-- between them instead of overlapping: the claim index holds only jobs that
-- are not suspects (`rescues < 2`), the suspects index only suspects.
--
-- Why, measured with the store's own statements (docs/performance.md):
-- - The claim's walk for ordinary jobs tests `rescues < 2`. With that test
--   in the claim index's condition, SQLite answers it from the index alone;
--   before, it read every candidate's row in the table to test it.
-- - Every write of a job (enqueue, claim, outcome) evaluates both indexes'
--   conditions for the row. With `rescues` tested first, a job that is not
--   a suspect fails the suspects index's condition on one comparison, not
--   after three comparisons of `state`.
-- Together they gave back about half of what the suspects index had cost
-- claim and completion.
--
-- A query uses a partial index only if its WHERE clause repeats the index's
-- condition term by term: src/ops/claim.rs writes them exactly as here.
DROP INDEX steward_jobs_claim;
DROP INDEX steward_jobs_suspects;

CREATE INDEX steward_jobs_claim ON steward_jobs (queue, priority, run_at)
    WHERE rescues < 2 AND (state = 'scheduled' OR state = 'available' OR state = 'retryable');

CREATE INDEX steward_jobs_suspects ON steward_jobs (queue, priority, run_at)
    WHERE rescues >= 2 AND (state = 'scheduled' OR state = 'available' OR state = 'retryable');
