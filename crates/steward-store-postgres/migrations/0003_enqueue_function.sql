-- Enqueue from any language: `{schema}.enqueue(kind, payload, ...)` inserts one
-- job exactly as the Rust store's enqueue does (src/ops/enqueue.rs): the same
-- validation, the same state by run_at, the same unique keys, and the same
-- NOTIFY on the schema's channel, so idle workers wake at the caller's commit.
-- It runs in the caller's transaction: the job exists if and only if the caller
-- commits. Defaults are those of the Rust `NewJob::new`. See docs/postgres.md.
--
--   SELECT steward.enqueue('send_email', '{"to": "a@example.com"}');
--   SELECT steward.enqueue('report', '{}', queue => 'slow', delay => interval '5 minutes');
--
-- Returns the new job's id or, for a unique key already held in its scope, the
-- id of the job holding it (nothing is inserted then).
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
    timeout       interval    DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql
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
        INSERT INTO {schema}.jobs (kind, queue, payload, priority, state, max_attempts, run_at, timeout_ms)
        VALUES (enqueue.kind, enqueue.queue, enqueue.payload, enqueue.priority,
                CASE WHEN first_run > now() THEN 'scheduled' ELSE 'available' END,
                enqueue.max_attempts, first_run, timeout_ms)
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
                timeout_ms, unique_key, unique_scope, unique_held)
            VALUES (enqueue.kind, enqueue.queue, enqueue.payload, enqueue.priority,
                    CASE WHEN first_run > now() THEN 'scheduled' ELSE 'available' END,
                    enqueue.max_attempts, first_run, timeout_ms, enqueue.unique_key, scope, held)
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
    -- caller's transaction commits, dropped if it rolls back. Only for a job
    -- due now; later ones are found by the workers' poll.
    IF first_run <= now() THEN
        PERFORM pg_notify(channel, enqueue.queue);
    END IF;
    RETURN new_id;
END
$$;

COMMENT ON FUNCTION {schema}.enqueue(text, jsonb, text, integer, timestamptz, integer, text, text,
    interval, interval, interval) IS
    'Enqueues one steward job (see docs/postgres.md); returns its id, or the holder''s id for a held unique key.';
