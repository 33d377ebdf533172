-- Payload versions (Job::VERSION): the version of each job's payload shape,
-- so a worker of a later release upgrades a payload enqueued by an earlier
-- one instead of failing to decode it. Rows written before this migration
-- were all version 1, the version every kind starts at.
ALTER TABLE steward_jobs ADD COLUMN payload_version INTEGER NOT NULL DEFAULT 1;

-- A schedule's ticks carry the version of the payload it was saved with.
ALTER TABLE steward_schedules ADD COLUMN payload_version INTEGER NOT NULL DEFAULT 1;
