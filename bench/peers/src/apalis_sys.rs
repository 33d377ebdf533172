//! apalis 1.0 with its PostgreSQL backend (`apalis-postgres`): one worker
//! with a concurrency limit, `LISTEN/NOTIFY` wake-ups (`with_pubsub`) and
//! batches of 100 per fetch (the default is 10).

use anyhow::{Context as _, Result, anyhow};
use apalis::prelude::*;
use apalis_postgres::{Config, PgTask, PostgresStorage};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgPoolOptions;
use tokio::task::JoinHandle;

use crate::harness::{self, System};

const QUEUE: &str = "bench";

/// One storage carries one argument type, so both kinds share an enum.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum BenchJob {
    Noop,
    Probe { t0_ns: u64 },
}

async fn handle(job: BenchJob) -> Result<(), BoxDynError> {
    match job {
        BenchJob::Noop => harness::ran(),
        BenchJob::Probe { t0_ns } => harness::probe_started(t0_ns),
    }
    Ok(())
}

pub struct Apalis {
    pool: sqlx::PgPool,
    config: Config,
    /// The single-job enqueue path (`TaskSink::push`).
    sink: PostgresStorage<BenchJob>,
    concurrency: usize,
    context: WorkerContext,
    running: Option<JoinHandle<Result<(), WorkerError>>>,
}

impl System for Apalis {
    async fn setup(url: &str, concurrency: usize) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(url)
            .await?;
        PostgresStorage::setup(&pool)
            .await
            .context("apalis-postgres migrations")?;
        let config = Config::default().queue(QUEUE).batch_size(100);
        Ok(Apalis {
            sink: PostgresStorage::new(&pool).with_config(config.clone()),
            pool,
            config,
            concurrency,
            context: WorkerContext::new("steward-peer-bench"),
            running: None,
        })
    }

    /// One multi-row INSERT (`apalis_postgres::queries::push_tasks`, the
    /// backend's batch path) of JSON-encoded arguments.
    async fn enqueue_bulk(&mut self, n: usize) -> Result<()> {
        let bytes = serde_json::to_vec(&BenchJob::Noop)?;
        let tasks: Vec<PgTask> = (0..n)
            .map(|_| TaskBuilder::new(bytes.clone()).build())
            .collect();
        let mut conn = self.pool.acquire().await?;
        apalis_postgres::queries::push_tasks(&mut *conn, QUEUE, tasks).await?;
        Ok(())
    }

    async fn start(&mut self) -> Result<()> {
        let backend = PostgresStorage::<BenchJob>::new(&self.pool)
            .with_config(self.config.clone())
            .with_pubsub();
        let worker = WorkerBuilder::new(&self.context)
            .backend(backend)
            .concurrency(self.concurrency)
            .build(handle);
        self.running = Some(tokio::spawn(worker.run()));
        Ok(())
    }

    async fn completed(&self) -> Result<u64> {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM apalis.jobs WHERE job_type = $1 AND status = 'Done'",
        )
        .bind(QUEUE)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(done)?)
    }

    async fn enqueue_probe(&mut self, t0_ns: u64) -> Result<()> {
        self.sink
            .push(BenchJob::Probe { t0_ns })
            .await
            .map_err(|e| anyhow!("apalis push: {e}"))?;
        Ok(())
    }

    async fn stop(self) -> Result<()> {
        self.context.stop()?;
        let running = self.running.ok_or_else(|| anyhow!("worker not started"))?;
        running.await??;
        self.pool.close().await;
        Ok(())
    }
}
