-- Payload versions (issue 13, item 6): each job stores the version of its
-- payload's shape (Job::VERSION in Rust), so a worker of a later release
-- upgrades a payload enqueued by an earlier one instead of failing to decode
-- it. Rows written before this migration were all version 1, the version every
-- kind starts at. A constant default makes ADD COLUMN a catalog change (no
-- table rewrite, a brief lock), however many jobs are queued.
ALTER TABLE {schema}.jobs ADD COLUMN payload_version integer NOT NULL DEFAULT 1;

-- A schedule's ticks carry the version of the payload it was saved with.
ALTER TABLE {schema}.schedules ADD COLUMN payload_version integer NOT NULL DEFAULT 1;

-- The enqueue function takes the version too, as a last parameter with a
-- default, so every existing call (positional or by name) keeps working and
-- enqueues version 1 as before. A parameter cannot be added by CREATE OR
-- REPLACE: the new function is created beside the old one (a different
-- signature), the old one's EXECUTE grants are copied to it, then the old one
-- is dropped. Copying the grants matters: a role given the right to enqueue
-- (docs/postgres.md) must keep it across the upgrade.
--
-- The body is migration 6's, with the version validated and inserted.
-- Merging note: a later migration that changes the function must start from
-- this version.
CREATE FUNCTION {schema}.enqueue(
    kind          text,
    payload       jsonb       DEFAULT '{}',
    queue         text        DEFAULT 'default',
    -- integer, not smallint, so that `priority => 5` resolves; range-checked.
    priority      integer     DEFAULT 0,
    -- NULL: now() (plus `delay`). An absolute time, as the Rust `run_at`.
    run_at        timestamptz DEFAULT NULL,
    max_attempts  integer     DEFAULT 25,
    -- A key makes the job unique within its scope: 'queued' (the default),
    -- 'active' or 'window' (with `unique_window`).
    unique_key    text        DEFAULT NULL,
    unique_scope  text        DEFAULT NULL,
    unique_window interval    DEFAULT NULL,
    -- After the database's now(); not together with `run_at`.
    delay         interval    DEFAULT NULL,
    -- Per-attempt timeout the worker enforces.
    timeout       interval    DEFAULT NULL,
    -- The version of the payload's shape (the kind's Job::VERSION in Rust):
    -- a worker upgrades an older payload before decoding it. 1 to 2^31-1.
    payload_version integer   DEFAULT 1
) RETURNS bigint
LANGUAGE plpgsql
-- Runs with its owner's rights, so a role may be allowed to enqueue (EXECUTE
-- on this function) without any right on the table: it cannot read payloads or
-- lease tokens, nor insert rows in a state of its choosing. The fixed
-- search_path keeps such a caller from shadowing a function or operator used
-- here with one of its own (pg_temp last, where it cannot shadow anything).
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- The NOTIFY channel the store listens on (notify.rs: `<schema>_jobs`, the
    -- schema name cut to 58 bytes). The schema name is plain lowercase ASCII,
    -- so stripping the quotes of the rendered `{schema}` gives it back.
    channel   text := left(trim(both '"' from '{schema}'), 58) || '_jobs';
    first_run timestamptz;
    scope     text := unique_scope;
    held      text;
    window_ms bigint;
    timeout_ms bigint;
    new_id    bigint;
BEGIN
    -- The checks of the Rust side's `enqueue::validate`, with readable errors
    -- (SQLSTATE 22023, invalid_parameter_value: the store maps class 22 to
    -- `StoreError::Invalid`).
    IF kind IS NULL OR kind = '' THEN
        RAISE EXCEPTION 'steward enqueue: kind must not be empty' USING ERRCODE = '22023';
    END IF;
    IF queue IS NULL OR queue = '' THEN
        RAISE EXCEPTION 'steward enqueue (kind %): queue must not be empty', kind
            USING ERRCODE = '22023';
    END IF;
    IF payload IS NULL THEN
        RAISE EXCEPTION 'steward enqueue (kind %): payload must not be NULL (a JSON null is ''null''::jsonb)', kind
            USING ERRCODE = '22023';
    END IF;
    IF priority IS NULL OR priority NOT BETWEEN -32768 AND 32767 THEN
        RAISE EXCEPTION 'steward enqueue (kind %): priority % is outside -32768..32767', kind, priority
            USING ERRCODE = '22023';
    END IF;
    IF max_attempts IS NULL OR max_attempts < 1 THEN
        RAISE EXCEPTION 'steward enqueue (kind %): max_attempts must be at least 1, got %', kind, max_attempts
            USING ERRCODE = '22023';
    END IF;
    IF payload_version IS NULL OR payload_version < 1 THEN
        RAISE EXCEPTION 'steward enqueue (kind %): payload_version must be at least 1, got %', kind, payload_version
            USING ERRCODE = '22023';
    END IF;
    -- Years 1 to 9999, as the Rust side's `validate_new_jobs`: beyond them
    -- PostgreSQL has infinities and years no worker can read.
    IF run_at IS NOT NULL AND NOT (run_at BETWEEN '0001-01-01 00:00:00+00'::timestamptz
                                         AND '9999-12-31 23:59:59.999999+00'::timestamptz) THEN
        RAISE EXCEPTION 'steward enqueue (kind %): run_at % is outside the years 1 to 9999 that every steward client can read', kind, run_at
            USING ERRCODE = '22023';
    END IF;
    IF run_at IS NOT NULL AND delay IS NOT NULL THEN
        RAISE EXCEPTION 'steward enqueue (kind %): both run_at and delay given; give one', kind
            USING ERRCODE = '22023';
    END IF;
    IF delay < interval '0' THEN
        RAISE EXCEPTION 'steward enqueue (kind %): delay % is negative', kind, delay
            USING ERRCODE = '22023';
    END IF;
    IF timeout < interval '0' THEN
        RAISE EXCEPTION 'steward enqueue (kind %): timeout % is negative', kind, timeout
            USING ERRCODE = '22023';
    END IF;
    IF unique_key IS NULL AND (scope IS NOT NULL OR unique_window IS NOT NULL) THEN
        RAISE EXCEPTION 'steward enqueue (kind %): unique_scope or unique_window without unique_key', kind
            USING ERRCODE = '22023';
    END IF;
    IF unique_key IS NOT NULL THEN
        scope := coalesce(scope, 'queued');
        IF scope NOT IN ('queued', 'active', 'window') THEN
            RAISE EXCEPTION 'steward enqueue (kind %): unique_scope must be queued, active or window, got %', kind, scope
                USING ERRCODE = '22023';
        END IF;
        IF (scope = 'window') <> (unique_window IS NOT NULL) THEN
            RAISE EXCEPTION 'steward enqueue (kind %): unique_window goes with unique_scope => ''window'', and only with it', kind
                USING ERRCODE = '22023';
        END IF;
        IF scope = 'window' THEN
            -- Whole milliseconds, as the Rust side counts the window.
            window_ms := floor(extract(epoch FROM unique_window) * 1000)::bigint;
            IF window_ms <= 0 THEN
                RAISE EXCEPTION 'steward enqueue (kind %): unique_window % is not positive', kind, unique_window
                    USING ERRCODE = '22023';
            END IF;
        END IF;
    END IF;

    -- Like the Rust side: an absolute run_at as given; else now() plus the delay,
    -- capped at the store's latest time (clock.rs: LATEST), so an absurd delay
    -- saturates instead of failing.
    first_run := coalesce(run_at, LEAST(now() + LEAST(coalesce(delay, interval '0'), interval '10000 years'),
                                        '9999-12-31 23:59:59.999999+00'::timestamptz));
    IF timeout IS NOT NULL THEN
        timeout_ms := floor(extract(epoch FROM timeout) * 1000)::bigint;
        IF timeout_ms = 0 AND timeout > interval '0' THEN
            timeout_ms := 1;
        END IF;
    END IF;

    IF unique_key IS NULL THEN
        INSERT INTO {schema}.jobs (kind, queue, payload, priority, state, max_attempts, run_at, timeout_ms,
                                   payload_version)
        VALUES (enqueue.kind, enqueue.queue, enqueue.payload, enqueue.priority,
                CASE WHEN first_run > now() THEN 'scheduled' ELSE 'available' END,
                enqueue.max_attempts, first_run, timeout_ms, enqueue.payload_version)
        RETURNING id INTO new_id;
    ELSE
        -- The held key, as ops/enqueue.rs (UNIQUE) computes it: a window's
        -- bucket on the database's clock.
        held := CASE WHEN scope = 'window'
            THEN unique_key || chr(31) || 'window:' || window_ms || ':'
                || (floor(extract(epoch FROM now()) * 1000)::bigint / window_ms)
            ELSE unique_key END;
        -- As the Rust side: ON CONFLICT waits for a concurrent inserter of the
        -- key to commit or roll back; then the holder is looked up with a fresh
        -- snapshot. If it vanished in between (claimed or finished just then),
        -- try again.
        FOR attempt IN 1..10 LOOP
            INSERT INTO {schema}.jobs (kind, queue, payload, priority, state, max_attempts, run_at,
                timeout_ms, payload_version, unique_key, unique_scope, unique_held)
            VALUES (enqueue.kind, enqueue.queue, enqueue.payload, enqueue.priority,
                    CASE WHEN first_run > now() THEN 'scheduled' ELSE 'available' END,
                    enqueue.max_attempts, first_run, timeout_ms, enqueue.payload_version,
                    enqueue.unique_key, scope, held)
            ON CONFLICT (unique_held) WHERE unique_held IS NOT NULL DO NOTHING
            RETURNING id INTO new_id;
            EXIT WHEN new_id IS NOT NULL;
            SELECT j.id INTO new_id FROM {schema}.jobs AS j WHERE j.unique_held = held;
            IF new_id IS NOT NULL THEN
                RETURN new_id; -- a duplicate: nothing inserted, nobody to wake
            END IF;
        END LOOP;
        IF new_id IS NULL THEN
            RAISE EXCEPTION 'steward enqueue (kind %): unique key % changed hands 10 times during one enqueue', kind, unique_key
                USING ERRCODE = '40001';
        END IF;
    END IF;

    -- Wake idle workers, as the store's own enqueue does: delivered when the
    -- caller's transaction commits, dropped if it rolls back. A job due now
    -- wakes them now; a later one tells them when it comes due (milliseconds
    -- from now, at least 1: relative, so the workers' clocks need not agree).
    IF first_run <= now() THEN
        PERFORM pg_notify(channel,
            CASE WHEN left(enqueue.queue, 1) = '+' THEN '*' ELSE enqueue.queue END);
    ELSE
        PERFORM pg_notify(channel, '+' || greatest(1,
            ceil(extract(epoch FROM first_run - now()) * 1000))::bigint::text);
    END IF;
    RETURN new_id;
END
$$;

COMMENT ON FUNCTION {schema}.enqueue(text, jsonb, text, integer, timestamptz, integer, text, text,
    interval, interval, interval, integer) IS
    'Enqueues one steward job (see docs/postgres.md); returns its id, or the holder''s id for a held unique key.';

-- A SECURITY DEFINER function must not be callable by everyone (a new
-- function is executable by PUBLIC until this).
REVOKE ALL ON FUNCTION {schema}.enqueue(text, jsonb, text, integer, timestamptz, integer, text, text,
    interval, interval, interval, integer) FROM PUBLIC;

-- The roles that could enqueue still can (PUBLIC, revoked by migration 4,
-- and the owner, who keeps every right, are left out).
DO $grants$
DECLARE
    g record;
BEGIN
    FOR g IN
        SELECT a.grantee::regrole::text AS grantee, a.is_grantable
        FROM pg_catalog.pg_proc AS p, pg_catalog.aclexplode(p.proacl) AS a
        WHERE p.oid = '{schema}.enqueue(text, jsonb, text, integer, timestamptz, integer, text, text, interval, interval, interval)'::regprocedure
          AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner
    LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s%s',
            '{schema}.enqueue(text, jsonb, text, integer, timestamptz, integer, text, text, interval, interval, interval, integer)'::regprocedure,
            g.grantee, CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
END
$grants$;

DROP FUNCTION {schema}.enqueue(text, jsonb, text, integer, timestamptz, integer, text, text,
    interval, interval, interval);
