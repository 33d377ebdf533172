-- Recurring schedules (Store::save_schedules and friends). Times are INTEGER
-- milliseconds on the store's clock, like every time in this file. The store
-- never reads `cron`: the scheduler computes ticks and hands them over.
CREATE TABLE steward_schedules (
    id            TEXT    PRIMARY KEY,
    cron          TEXT    NOT NULL,
    zone          TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    payload       TEXT    NOT NULL,
    queue         TEXT    NOT NULL,
    priority      INTEGER NOT NULL,
    max_attempts  INTEGER NOT NULL,
    misfire       TEXT    NOT NULL,
    misfire_limit INTEGER NOT NULL,
    origin        TEXT    NOT NULL,
    paused        INTEGER NOT NULL DEFAULT 0,
    -- The tick owed next; NULL until a scheduler arms the schedule.
    next_at       INTEGER,
    last_tick     INTEGER,
    last_job      INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

-- Fired ticks: the primary key is the unique key per schedule and tick, so a
-- tick enqueues one job however many schedulers race. The newest ticks of
-- each schedule are kept (see KEPT_TICKS).
CREATE TABLE steward_schedule_ticks (
    schedule_id TEXT    NOT NULL,
    tick_at     INTEGER NOT NULL,
    job_id      INTEGER NOT NULL,
    PRIMARY KEY (schedule_id, tick_at)
) STRICT, WITHOUT ROWID;
