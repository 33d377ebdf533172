//! Times PostgreSQL can hold but a worker cannot: `-infinity`, `infinity`
//! and years past what `chrono` represents. They are refused at every door
//! (the SQL function, the table, the Rust API through the contract suite),
//! and a row that still holds one fails that one job, never the worker.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestSchema;
use serde::{Deserialize, Serialize};
use sqlx::Executor as _;
use steward_core::jobs::{Job, JobContext, QueueConfig, Worker, WorkerConfig};
use steward_core::store::{JobId, JobRecord, JobState, NewJob, Store};
use steward_core::{BoxError, Host};
use steward_store_postgres::PostgresStore;

const PATIENCE: Duration = Duration::from_secs(30);

/// Run-at values PostgreSQL accepts and a worker must never meet.
const POISON: [&str; 5] = [
    "-infinity",
    "infinity",
    "262144-01-01 00:00:00+00",
    "10000-01-01 00:00:00+00",
    "0001-01-01 00:00:00+00 BC",
];

async fn migrated(schema: &TestSchema) -> PostgresStore {
    let store = schema.connect().await;
    store.migrate().await.expect("migrate");
    store
}

#[tokio::test]
async fn the_sql_function_refuses_a_run_at_that_is_not_a_time_in_years_1_to_9999() {
    let schema = TestSchema::new().await;
    let store = migrated(&schema).await;
    for at in POISON {
        let out = schema
            .psql(&format!(
                "SELECT \"{}\".enqueue('noop', '{{}}', run_at => '{at}')",
                schema.name
            ))
            .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "enqueue with run_at {at} must be refused; it printed {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            stderr.contains("run_at") && stderr.contains("9999"),
            "the refusal of run_at {at} should name run_at and the allowed range: {stderr}"
        );
    }
    assert_eq!(store.counts().await.expect("counts").total(), 0);
}

#[tokio::test]
async fn the_table_refuses_an_out_of_range_run_at_from_a_raw_insert() {
    let schema = TestSchema::new().await;
    let _store = migrated(&schema).await;
    let mut conn = schema.raw().await;
    for at in POISON {
        let err = conn
            .execute(
                format!(
                    "INSERT INTO \"{}\".jobs (kind, queue, payload, priority, state, max_attempts, run_at)
                     VALUES ('noop', 'default', '{{}}', 0, 'available', 1, '{at}')",
                    schema.name
                )
                .as_str(),
            )
            .await
            .expect_err("a raw insert of a poison run_at must be refused by the table");
        let text = err.to_string();
        assert!(
            text.contains("jobs_run_at_in_range"),
            "run_at {at}: the refusal should name the constraint: {text}"
        );
    }
}

#[derive(Serialize, Deserialize)]
struct Noop {}

impl Job for Noop {
    const KIND: &'static str = "noop";
    async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
        Ok(())
    }
}

async fn record(store: &PostgresStore, id: JobId) -> JobRecord {
    // The record is read with the same decoding as the claim: an
    // unreadable row must be an error here too, never a panic.
    store
        .job(id)
        .await
        .expect("read the job")
        .unwrap_or_else(|| panic!("job {id} exists"))
}

/// Rows written before the table's check existed (it is added without
/// scanning old rows), or by someone who dropped it: each fails its own job
/// with a message naming the column, and the worker runs everything else
/// without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_with_an_unreadable_time_fails_that_job_and_the_worker_runs_the_rest() {
    let schema = TestSchema::new().await;
    let store = Arc::new(migrated(&schema).await);
    let mut good = Vec::new();
    for _ in 0..5 {
        good.push(
            store
                .enqueue(vec![NewJob::new("noop", "{}")])
                .await
                .expect("enqueue")[0]
                .id,
        );
    }
    let poisoned: Vec<JobId> = store
        .enqueue(vec![NewJob::new("noop", "{}"), NewJob::new("noop", "{}")])
        .await
        .expect("enqueue")
        .iter()
        .map(|e| e.id)
        .collect();
    let mut conn = schema.raw().await;
    conn.execute(
        format!(
            "ALTER TABLE \"{s}\".jobs DROP CONSTRAINT jobs_run_at_in_range;
             UPDATE \"{s}\".jobs SET run_at = '-infinity' WHERE id = {a};
             UPDATE \"{s}\".jobs SET created_at = 'infinity' WHERE id = {b};",
            s = schema.name,
            a = poisoned[0],
            b = poisoned[1]
        )
        .as_str(),
    )
    .await
    .expect("poison two rows");

    let worker = Worker::new(store.clone())
        .register::<Noop>()
        .config(WorkerConfig {
            queues: vec![QueueConfig {
                name: "default".into(),
                concurrency: 4,
            }],
            poll_interval: Duration::from_millis(100),
            ..WorkerConfig::default()
        });
    let mut builder = Host::builder();
    builder.handle_signals(false);
    builder.service("worker", worker).expect("register");
    let host = builder.build().expect("a host");
    let handle = host.handle();
    let running = tokio::spawn(host.run());

    let started = Instant::now();
    loop {
        let counts = store.counts().await.expect("counts");
        if counts.completed == 5 && counts.dead == 2 {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the good jobs should complete and the poisoned ones die: {counts:?}; worker: {:?}",
            handle.status().services
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in &good {
        assert_eq!(record(&store, *id).await.state, JobState::Completed);
    }
    let raw: Vec<(i64, String, String)> = sqlx::query_as(&format!(
        "SELECT id, state, errors::text FROM \"{}\".jobs WHERE id = ANY($1) ORDER BY id",
        schema.name
    ))
    .bind(poisoned.iter().map(|id| id.0).collect::<Vec<_>>())
    .fetch_all(&mut conn)
    .await
    .expect("read the poisoned rows raw");
    for ((id, state, errors), column) in raw.iter().zip(["run_at", "created_at"]) {
        assert_eq!(state, "dead", "job {id} with a poison {column}");
        assert!(
            errors.contains(column) && errors.contains("out of range"),
            "job {id}: the error should name {column} and say it is out of range: {errors}"
        );
    }
    for (id, column) in poisoned.iter().zip(["run_at", "created_at"]) {
        match store.job(*id).await {
            Err(err) => assert!(
                err.to_string().contains(column),
                "reading job {id} should fail naming {column}: {err}"
            ),
            Ok(job) => panic!("job {id} has a poison {column}, yet read as {job:?}"),
        }
    }
    let service = &handle.status().services[0];
    assert!(
        service.state.is_running() && service.restarts == 0,
        "an unreadable row must not fault the worker: {service:?}"
    );

    handle.shutdown();
    let status = tokio::time::timeout(PATIENCE, running)
        .await
        .expect("the host stopped")
        .expect("the host ran");
    assert!(status.is_success(), "{status:?}");
}
