//! Enqueue from any language: the `<schema>.enqueue(...)` SQL function,
//! called through `psql` (a real separate process) and through a raw SQL
//! query, against the real server, a fresh schema per test. The jobs it
//! makes are claimed and run by the Rust worker.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::TestSchema;
use common::wake::drain;
use serde::{Deserialize, Serialize};
use steward_core::jobs::{Job, JobContext, QueueConfig, Worker, WorkerConfig};
use steward_core::store::{JobId, JobRecord, JobState, NewJob, Store, UniqueScope};
use steward_core::{BoxError, Host};
use steward_store_postgres::PostgresStore;

/// Far longer than any wake-up or state change should take.
const PATIENCE: Duration = Duration::from_secs(30);

async fn migrated(schema: &TestSchema) -> PostgresStore {
    let store = schema.connect().await;
    store.migrate().await.expect("migrate");
    store
}

/// The id `psql` printed for a `SELECT <schema>.enqueue(...)`.
async fn psql_enqueue(schema: &TestSchema, args: &str) -> JobId {
    let out = schema
        .psql(&format!("SELECT \"{}\".enqueue({args})", schema.name))
        .await;
    assert!(
        out.status.success(),
        "psql enqueue({args}) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    JobId(
        text.trim()
            .parse()
            .unwrap_or_else(|e| panic!("psql printed {text:?}: {e}")),
    )
}

async fn record(store: &PostgresStore, id: JobId) -> JobRecord {
    store
        .job(id)
        .await
        .expect("read the job")
        .unwrap_or_else(|| panic!("job {id} exists"))
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("JSON")
}

/// A job of the kind the SQL enqueues, recording what it was given.
#[derive(Serialize, Deserialize)]
struct SendEmail {
    to: String,
}

type Seen = Arc<Mutex<Vec<(JobId, String)>>>;

impl Job for SendEmail {
    const KIND: &'static str = "send_email";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        let seen = ctx.state::<Seen>().expect("the test registers its log");
        seen.lock().expect("the log").push((ctx.id(), self.to));
        Ok(())
    }
}

async fn wait_state(store: &PostgresStore, id: JobId, state: JobState) -> JobRecord {
    let started = Instant::now();
    loop {
        let job = record(store, id).await;
        if job.state == state {
            return job;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "job {id} never became {state}: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_enqueued_by_psql_are_recorded_as_given_and_run_by_the_rust_worker() {
    let schema = TestSchema::new().await;
    let store = Arc::new(migrated(&schema).await);

    let mail = psql_enqueue(
        &schema,
        r#"'send_email', '{"to": "a@example.com"}', queue => 'mail', priority => 3, max_attempts => 5"#,
    )
    .await;
    let urgent = psql_enqueue(
        &schema,
        r#"'send_email', '{"to": "b@example.com"}', queue => 'mail', priority => -1"#,
    )
    .await;
    let later = psql_enqueue(
        &schema,
        r#"'send_email', '{"to": "c@example.com"}', queue => 'mail', run_at => '2030-01-01 00:00:00+00'"#,
    )
    .await;
    let delayed = psql_enqueue(&schema, "'send_email', delay => interval '1 hour'").await;
    let plain = psql_enqueue(&schema, "'noop'").await;
    let versioned = psql_enqueue(&schema, "'report', payload_version => 3").await;

    let job = record(&store, mail).await;
    assert_eq!(
        (job.kind.as_str(), job.queue.as_str()),
        ("send_email", "mail")
    );
    assert_eq!((job.priority, job.max_attempts, job.attempt), (3, 5, 0));
    assert_eq!(job.state, JobState::Available);
    assert_eq!(json(&job.payload), json(r#"{"to":"a@example.com"}"#));
    let job = record(&store, later).await;
    assert_eq!(job.state, JobState::Scheduled);
    let at: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().expect("a time");
    assert_eq!(job.run_at, at, "an absolute run_at is kept as given");
    let job = record(&store, delayed).await;
    assert_eq!(job.state, JobState::Scheduled);
    let ahead = job.run_at - job.created_at;
    assert_eq!(
        ahead.num_seconds(),
        3600,
        "delay counts from the database's now"
    );
    // The defaults are the Rust side's `NewJob::new`.
    let job = record(&store, plain).await;
    let defaults = NewJob::new("noop", "{}");
    assert_eq!(job.queue, defaults.queue);
    assert_eq!(
        (job.priority, job.max_attempts),
        (defaults.priority, defaults.max_attempts)
    );
    assert_eq!(json(&job.payload), json("{}"));
    assert_eq!(job.state, JobState::Available);
    assert_eq!(job.payload_version, defaults.payload_version);
    // A producer in another language says which shape its payload has.
    assert_eq!(record(&store, versioned).await.payload_version, 3);

    let seen: Seen = Arc::default();
    let worker = Worker::new(store.clone())
        .register::<SendEmail>()
        .config(WorkerConfig {
            queues: vec![QueueConfig {
                name: "mail".into(),
                concurrency: 1,
            }],
            poll_interval: Duration::from_millis(200),
            prefetch: 0,
            ..WorkerConfig::default()
        })
        .state(seen.clone());
    let mut builder = Host::builder();
    builder.handle_signals(false);
    builder.service("worker", worker).expect("register");
    let host = builder.build().expect("a host");
    let handle = host.handle();
    let running = tokio::spawn(host.run());
    wait_state(&store, mail, JobState::Completed).await;
    wait_state(&store, urgent, JobState::Completed).await;
    handle.shutdown();
    let status = tokio::time::timeout(PATIENCE, running)
        .await
        .expect("the host stopped")
        .expect("the host ran");
    assert!(status.is_success(), "{status:?}");
    let seen = seen.lock().expect("the log").clone();
    assert_eq!(
        seen,
        vec![
            (urgent, "b@example.com".to_string()),
            (mail, "a@example.com".to_string())
        ],
        "each ran once with its payload, the lower priority first"
    );
    assert_eq!(record(&store, later).await.state, JobState::Scheduled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_sql_enqueue_in_the_callers_transaction_exists_only_if_it_commits() {
    let schema = TestSchema::new().await;
    let store = migrated(&schema).await;
    let call = format!(
        "SELECT \"{}\".enqueue($1, $2::jsonb, queue => $3, unique_key => $4)",
        schema.name
    );
    let enqueue = async |tx: &mut sqlx::PgConnection, key: Option<&str>| -> i64 {
        sqlx::query_scalar(&call)
            .bind("send_email")
            .bind(r#"{"to": "a@example.com"}"#)
            .bind("mail")
            .bind(key)
            .fetch_one(&mut *tx)
            .await
            .expect("enqueue through SQL")
    };

    let mut tx = store.pool().begin().await.expect("begin");
    let id = enqueue(&mut *tx, None).await;
    let keyed = enqueue(&mut *tx, Some("user:7")).await;
    tx.rollback().await.expect("rollback");
    assert!(store.job(JobId(id)).await.expect("read").is_none());
    assert!(store.job(JobId(keyed)).await.expect("read").is_none());

    let out = schema
        .psql(&format!(
            "BEGIN; SELECT \"{}\".enqueue('k'); ROLLBACK;",
            schema.name
        ))
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        store.counts().await.expect("counts").total(),
        0,
        "rolled back: nothing"
    );

    // A rolled-back key was not left held.
    let mut tx = store.pool().begin().await.expect("begin");
    let first = enqueue(&mut *tx, Some("user:7")).await;
    let again = enqueue(&mut *tx, Some("user:7")).await;
    tx.commit().await.expect("commit");
    assert_eq!(again, first, "a held key returns its holder's id");
    assert_eq!(store.counts().await.expect("counts").total(), 1);
    // The SQL and the Rust side hold the same keys, scopes included.
    let rust = store
        .enqueue(vec![
            NewJob::new("send_email", "{}").unique("user:7", UniqueScope::Queued),
        ])
        .await
        .expect("enqueue");
    assert!(rust[0].duplicate);
    assert_eq!(rust[0].id, JobId(first));
    let windowed = psql_enqueue(
        &schema,
        "'report', unique_key => 'daily', unique_scope => 'window', unique_window => interval '1 hour'",
    )
    .await;
    let hour = Duration::from_secs(3600);
    let rust = store
        .enqueue(vec![
            NewJob::new("report", "{}").unique("daily", UniqueScope::Window(hour)),
        ])
        .await
        .expect("enqueue");
    assert!(
        rust[0].duplicate && rust[0].id == windowed,
        "the window bucket is computed alike: {rust:?} vs {windowed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_refused_with_a_clear_error_and_write_nothing() {
    let schema = TestSchema::new().await;
    let store = migrated(&schema).await;
    let cases = [
        ("''", "kind must not be empty"),
        ("'k', queue => ''", "queue must not be empty"),
        ("'k', max_attempts => 0", "max_attempts must be at least 1"),
        (
            "'k', payload_version => 0",
            "payload_version must be at least 1",
        ),
        ("'k', priority => 40000", "priority 40000 is outside"),
        (
            "'k', run_at => now(), delay => interval '1 second'",
            "both run_at and delay",
        ),
        ("'k', delay => interval '-1 second'", "is negative"),
        ("'k', payload => NULL", "payload must not be NULL"),
        (
            "'k', unique_key => 'x', unique_scope => 'forever'",
            "unique_scope must be",
        ),
        ("'k', unique_scope => 'active'", "without unique_key"),
        (
            "'k', unique_key => 'x', unique_scope => 'window'",
            "unique_window goes with",
        ),
        ("'k', '{not json'", "invalid input syntax for type json"),
    ];
    for (args, message) in cases {
        let out = schema
            .psql(&format!("SELECT \"{}\".enqueue({args})", schema.name))
            .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "enqueue({args}) should fail");
        assert!(
            stderr.contains(message),
            "enqueue({args}): expected an error saying {message:?}, got {stderr}"
        );
    }
    // Through a driver: the same message, as a database error (22023).
    let err = sqlx::query_scalar::<_, i64>(&format!(
        "SELECT \"{}\".enqueue('k', max_attempts => 0)",
        schema.name
    ))
    .fetch_one(store.pool())
    .await
    .expect_err("max_attempts 0 is refused");
    let db = err.as_database_error().expect("a database error");
    assert_eq!(db.code().as_deref(), Some("22023"));
    assert!(
        db.message().contains("max_attempts must be at least 1"),
        "{db}"
    );
    assert_eq!(store.counts().await.expect("counts").total(), 0);
}

/// How long `store` waited (up to `max_wait`) while `psql` ran `sql`.
async fn wait_during(
    store: &PostgresStore,
    schema: &TestSchema,
    max_wait: Duration,
    sql: &str,
) -> Duration {
    let started = Instant::now();
    let ((), out) = tokio::join!(store.wait_for_work(max_wait), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        schema.psql(sql).await
    });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_psql_enqueue_wakes_an_idle_worker_at_commit_and_a_rollback_wakes_nobody() {
    let schema = TestSchema::new().await;
    let store = migrated(&schema).await;
    // Start the listener (the first wait does), wait until it listens on
    // this schema's channel, then until its start-up wake-up is used up.
    store.wait_for_work(Duration::from_millis(1)).await;
    let mut conn = schema.raw().await;
    let started = Instant::now();
    loop {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE application_name = 'steward-listener' AND query ILIKE 'LISTEN%'
                 AND position($1 IN query) > 0",
        )
        .bind(format!("\"{}_jobs\"", schema.name))
        .fetch_one(&mut conn)
        .await
        .expect("reading pg_stat_activity");
        if listening == 1 {
            break;
        }
        assert!(started.elapsed() < PATIENCE, "the listener never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drain(&store).await;

    let name = &schema.name;
    let waited = wait_during(
        &store,
        &schema,
        Duration::from_secs(2),
        &format!("BEGIN; SELECT \"{name}\".enqueue('k'); ROLLBACK;"),
    )
    .await;
    assert!(
        waited >= Duration::from_secs(2),
        "a rolled-back enqueue must not wake the worker (woke after {waited:?})"
    );
    let waited = wait_during(
        &store,
        &schema,
        PATIENCE,
        &format!("SELECT \"{name}\".enqueue('k', queue => 'mail')"),
    )
    .await;
    assert!(
        waited < Duration::from_secs(10),
        "the enqueue's NOTIFY should wake the waiting worker well before its {PATIENCE:?} \
         poll, took {waited:?}"
    );
    store.close().await;
}

/// A role of its own on the test server, dropped (with its grants) at the
/// end of the test.
struct TestRole {
    name: String,
    admin_url: String,
}

impl TestRole {
    async fn create(schema: &TestSchema, suffix: &str) -> TestRole {
        let name = format!("{}_{suffix}", schema.name);
        let mut conn = schema.raw().await;
        sqlx::Executor::execute(&mut conn, format!("CREATE ROLE \"{name}\" LOGIN").as_str())
            .await
            .expect("create a role");
        TestRole {
            name,
            admin_url: schema.url.clone(),
        }
    }

    /// The test server's URL, logging in as this role (trust auth).
    fn url(&self) -> String {
        self.admin_url
            .replacen("postgres@", &format!("{}@", self.name), 1)
    }
}

impl Drop for TestRole {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async {
                use sqlx::Connection as _;
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                sqlx::Executor::execute(
                    &mut conn,
                    format!("DROP OWNED BY \"{name}\"; DROP ROLE \"{name}\"").as_str(),
                )
                .await
                .map(|_| ())
            })
        })
        .join();
    }
}

/// Issue 11 (9): the function runs with its owner's rights, so a role
/// granted only EXECUTE on it (and USAGE on the schema) can enqueue but
/// cannot read payloads or lease tokens, nor insert a row in a state of its
/// choosing; a role without the grant cannot even enqueue.
#[tokio::test]
async fn an_enqueue_only_role_can_enqueue_and_nothing_else() {
    use sqlx::Connection as _;
    let schema = TestSchema::new().await;
    let store = migrated(&schema).await;
    let enqueuer = TestRole::create(&schema, "enq").await;
    let stranger = TestRole::create(&schema, "other").await;
    let s = &schema.name;
    let mut admin = schema.raw().await;
    sqlx::Executor::execute(
        &mut admin,
        format!(
            "GRANT USAGE ON SCHEMA \"{s}\" TO \"{e}\", \"{o}\";
             GRANT EXECUTE ON FUNCTION \"{s}\".enqueue(text, jsonb, text, integer, timestamptz,
                 integer, text, text, interval, interval, interval, integer) TO \"{e}\";",
            e = enqueuer.name,
            o = stranger.name
        )
        .as_str(),
    )
    .await
    .expect("grant");

    let mut conn = sqlx::PgConnection::connect(&enqueuer.url())
        .await
        .expect("log in as the enqueue-only role");
    let (id,): (i64,) = sqlx::query_as(&format!(
        "SELECT \"{s}\".enqueue('send_email', '{{\"to\": \"a@example.com\"}}')"
    ))
    .fetch_one(&mut conn)
    .await
    .expect("the enqueue-only role enqueues");
    assert_eq!(record(&store, JobId(id)).await.state, JobState::Available);
    for (sql, what) in [
        (format!("SELECT payload FROM \"{s}\".jobs"), "read payloads"),
        (format!("SELECT lease_token FROM \"{s}\".jobs"), "read lease tokens"),
        (
            format!(
                "INSERT INTO \"{s}\".jobs (kind, queue, payload, priority, state, max_attempts, run_at)
                 VALUES ('k', 'default', '{{}}', 0, 'completed', 1, now())"
            ),
            "insert a row",
        ),
        (format!("UPDATE \"{s}\".jobs SET state = 'dead'"), "update rows"),
    ] {
        let err = sqlx::Executor::execute(&mut conn, sql.as_str())
            .await
            .expect_err(what);
        assert!(
            err.to_string().contains("permission denied"),
            "the enqueue-only role must not {what}: {err}"
        );
    }

    let mut conn = sqlx::PgConnection::connect(&stranger.url())
        .await
        .expect("log in as a role without the grant");
    let err = sqlx::query(&format!("SELECT \"{s}\".enqueue('k')"))
        .execute(&mut conn)
        .await
        .expect_err("a role without EXECUTE must not enqueue");
    assert!(err.to_string().contains("permission denied"), "{err}");

    let (definer, config): (bool, Vec<String>) = sqlx::query_as(
        "SELECT p.prosecdef, p.proconfig FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = $1 AND p.proname = 'enqueue'",
    )
    .bind(s)
    .fetch_one(&mut admin)
    .await
    .expect("read the function's settings");
    assert!(definer, "the function runs with its owner's rights");
    assert_eq!(config, vec!["search_path=pg_catalog, pg_temp".to_string()]);
}

/// Migration 8 replaces the enqueue function with one taking a
/// `payload_version` (a new parameter means a new function): a role granted
/// EXECUTE on the old one keeps the right on the new one, nobody else gains
/// it, and jobs enqueued before the upgrade read back as version 1. The
/// schema is built at version 7 from the migration files as released.
#[tokio::test]
async fn upgrading_to_payload_versions_keeps_who_may_enqueue() {
    use sqlx::Connection as _;
    let schema = TestSchema::new().await;
    let s = &schema.name;
    let quoted = format!("\"{s}\"");
    let mut admin = schema.raw().await;
    let released = [
        (1, "jobs", include_str!("../migrations/0001_jobs.sql")),
        (2, "leaders", include_str!("../migrations/0002_leaders.sql")),
        (
            3,
            "enqueue_function",
            include_str!("../migrations/0003_enqueue_function.sql"),
        ),
        (
            4,
            "poison_times_and_enqueue_rights",
            include_str!("../migrations/0004_poison_times_and_enqueue_rights.sql"),
        ),
        (
            5,
            "suspects_index",
            include_str!("../migrations/0005_suspects_index.sql"),
        ),
        (
            6,
            "enqueue_announces_due_times",
            include_str!("../migrations/0006_enqueue_announces_due_times.sql"),
        ),
        (
            7,
            "schedules",
            include_str!("../migrations/0007_schedules.sql"),
        ),
    ];
    sqlx::Executor::execute(
        &mut admin,
        format!(
            "CREATE TABLE {quoted}.schema_migrations (version bigint PRIMARY KEY,
                 name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        .as_str(),
    )
    .await
    .expect("the version table");
    for (version, name, sql) in released {
        sqlx::Executor::execute(&mut admin, sql.replace("{schema}", &quoted).as_str())
            .await
            .unwrap_or_else(|e| panic!("migration {version}: {e}"));
        sqlx::query(&format!(
            "INSERT INTO {quoted}.schema_migrations (version, name) VALUES ($1, $2)"
        ))
        .bind(i64::from(version))
        .bind(name)
        .execute(&mut admin)
        .await
        .expect("record the migration");
    }
    let enqueuer = TestRole::create(&schema, "enq7").await;
    let stranger = TestRole::create(&schema, "other7").await;
    sqlx::Executor::execute(
        &mut admin,
        format!(
            "GRANT USAGE ON SCHEMA {quoted} TO \"{e}\", \"{o}\";
             GRANT EXECUTE ON FUNCTION {quoted}.enqueue(text, jsonb, text, integer, timestamptz,
                 integer, text, text, interval, interval, interval) TO \"{e}\";
             SELECT {quoted}.enqueue('queued_before');",
            e = enqueuer.name,
            o = stranger.name
        )
        .as_str(),
    )
    .await
    .expect("grant, and enqueue before the upgrade");

    let store = migrated(&schema).await;
    let before: i64 = sqlx::query_scalar(&format!(
        "SELECT id FROM {quoted}.jobs WHERE kind = 'queued_before'"
    ))
    .fetch_one(&mut admin)
    .await
    .expect("the old job");
    assert_eq!(record(&store, JobId(before)).await.payload_version, 1);
    let functions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = $1 AND p.proname = 'enqueue'",
    )
    .bind(s)
    .fetch_one(&mut admin)
    .await
    .expect("count");
    assert_eq!(functions, 1, "the old function is gone: no ambiguous calls");

    let mut conn = sqlx::PgConnection::connect(&enqueuer.url())
        .await
        .expect("log in as the enqueue-only role");
    let (id,): (i64,) = sqlx::query_as(&format!(
        "SELECT {quoted}.enqueue('report', '{{}}', payload_version => 2)"
    ))
    .fetch_one(&mut conn)
    .await
    .expect("the granted role still enqueues after the upgrade");
    assert_eq!(record(&store, JobId(id)).await.payload_version, 2);
    let mut conn = sqlx::PgConnection::connect(&stranger.url())
        .await
        .expect("log in as a role without the grant");
    let err = sqlx::query(&format!("SELECT {quoted}.enqueue('k')"))
        .execute(&mut conn)
        .await
        .expect_err("the upgrade grants nobody new");
    assert!(err.to_string().contains("permission denied"), "{err}");
}
