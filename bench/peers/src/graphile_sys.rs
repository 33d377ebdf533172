//! The `graphile_worker` crate (the Rust port of graphile-worker) with its
//! batch fetching (a local queue of 100) and batched completions
//! (`complete_job_batch_delay` of 2 ms), as the issue specifies.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use graphile_worker::{
    IntoTaskHandlerResult, JobSpec, LocalQueueConfig, TaskHandler, WorkerContext, WorkerOptions,
    WorkerUtils,
};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use tokio::task::JoinHandle;

use crate::harness::{self, System};

const SCHEMA: &str = "graphile_worker";

#[derive(Clone, Serialize, Deserialize)]
struct Noop {}

impl TaskHandler for Noop {
    const IDENTIFIER: &'static str = "bench_noop";
    async fn run(self, _ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        harness::ran();
        Ok::<(), String>(())
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct Probe {
    t0_ns: u64,
}

impl TaskHandler for Probe {
    const IDENTIFIER: &'static str = "bench_probe";
    async fn run(self, _ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        harness::probe_started(self.t0_ns);
        Ok::<(), String>(())
    }
}

pub struct Graphile {
    worker: Arc<graphile_worker::Worker>,
    utils: WorkerUtils,
    /// Our own connection for counting, outside the worker's pool.
    observer: sqlx::PgPool,
    enqueued: u64,
    running: Option<JoinHandle<Result<(), graphile_worker::runner::WorkerRuntimeError>>>,
}

impl System for Graphile {
    async fn setup(url: &str, concurrency: usize) -> Result<Self> {
        let worker = WorkerOptions::default()
            .database_url(url)
            .max_pg_conn(10)
            .schema(SCHEMA)
            .concurrency(concurrency)
            .local_queue(LocalQueueConfig::default().with_size(100))
            .complete_job_batch_delay(Duration::from_millis(2))
            .listen_os_shutdown_signals(false)
            .define_job::<Noop>()
            .define_job::<Probe>()
            .init()
            .await
            .context("graphile_worker init (connects and migrates)")?;
        let observer = PgPoolOptions::new().max_connections(1).connect(url).await?;
        Ok(Graphile {
            utils: worker.create_utils(),
            worker: Arc::new(worker),
            observer,
            enqueued: 0,
            running: None,
        })
    }

    async fn enqueue_bulk(&mut self, n: usize) -> Result<()> {
        let spec = JobSpec::default();
        let jobs: Vec<(Noop, &JobSpec)> = (0..n).map(|_| (Noop {}, &spec)).collect();
        self.utils.add_jobs(&jobs).await?;
        self.enqueued += n as u64;
        Ok(())
    }

    async fn start(&mut self) -> Result<()> {
        let worker = self.worker.clone();
        self.running = Some(tokio::spawn(async move { worker.run().await }));
        Ok(())
    }

    /// Completed jobs are deleted: done = enqueued − rows left.
    async fn completed(&self) -> Result<u64> {
        let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {SCHEMA}._private_jobs"
        )))
        .fetch_one(&self.observer)
        .await?;
        Ok(self.enqueued.saturating_sub(u64::try_from(left)?))
    }

    async fn enqueue_probe(&mut self, t0_ns: u64) -> Result<()> {
        self.utils
            .add_job(Probe { t0_ns }, JobSpec::default())
            .await?;
        self.enqueued += 1;
        Ok(())
    }

    async fn stop(self) -> Result<()> {
        self.worker.request_shutdown();
        let running = self.running.ok_or_else(|| anyhow!("worker not started"))?;
        running.await??;
        self.observer.close().await;
        Ok(())
    }
}
