//! `steward bench jobs`: bulk enqueue, processing throughput and
//! enqueue-to-start latency, on a fresh SQLite database or PostgreSQL
//! schema, with one worker in the bench process or N worker processes.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use steward::jobs::WorkerConfig;
use steward::postgres::{PostgresOptions, PostgresStore};
use steward::sqlite::{SqliteOptions, SqliteStore, Synchronous};
use steward::store::Store;

use super::report::Figures;
use super::{in_process, processes};
use crate::store_url::UsageError;

/// Options of `steward bench jobs`.
#[derive(Args)]
pub struct JobsArgs {
    /// `sqlite` (a fresh temporary database), a `sqlite://PATH` URL,
    /// `postgres` (`$DATABASE_URL`, default
    /// `postgres://postgres@127.0.0.1:5432/test`) or a `postgres://` URL.
    /// PostgreSQL runs in a fresh schema with a random name, dropped at the end.
    // No STEWARD_STORE here: a deployment's store variable would silently
    // point 100 000 benchmark jobs at the production store.
    #[arg(long, default_value = "sqlite")]
    store: String,
    /// How many jobs to enqueue and process.
    #[arg(long, default_value_t = 100_000, env = "STEWARD_JOBS")]
    pub jobs: usize,
    /// The concurrency of each worker.
    #[arg(long, default_value_t = 16, env = "STEWARD_CONCURRENCY")]
    pub concurrency: usize,
    /// How many single enqueues the latency probe makes (one every 10 ms).
    #[arg(long, default_value_t = 200, env = "STEWARD_PROBES")]
    pub probes: usize,
    /// Jobs the in-process worker claims ahead of its free slots.
    #[arg(long, default_value_t = WorkerConfig::default().prefetch, env = "STEWARD_PREFETCH")]
    pub prefetch: usize,
    /// The most jobs the in-process worker claims in one round trip.
    #[arg(long, default_value_t = WorkerConfig::default().fetch_batch, env = "STEWARD_FETCH_BATCH")]
    pub fetch_batch: u32,
    /// SQLite durability: `normal` (the default) or `full`. PostgreSQL runs
    /// with the server's own `synchronous_commit`.
    #[arg(long, value_enum, default_value_t = Sync::Normal, env = "STEWARD_SYNC")]
    sync: Sync,
    /// Process the jobs with N `steward worker` processes (this binary)
    /// instead of one worker inside the bench; they are stopped with SIGTERM
    /// at the end and killed if the bench fails.
    #[arg(long, env = "STEWARD_WORKERS")]
    workers: Option<usize>,
}

/// `--sync`.
#[derive(Clone, Copy, ValueEnum)]
pub enum Sync {
    /// synchronous=NORMAL: durable against a process crash.
    Normal,
    /// synchronous=FULL: durable against power loss.
    Full,
}

/// The server `--store postgres` uses when `$DATABASE_URL` is not set.
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub async fn run(args: JobsArgs) -> anyhow::Result<ExitCode> {
    if args.jobs == 0 || args.concurrency == 0 || args.workers == Some(0) {
        bail!(UsageError(
            "--jobs, --concurrency and --workers must be at least 1".to_string()
        ));
    }
    if args.workers.is_some() && matches!(args.sync, Sync::Full) {
        bail!(UsageError(
            "--sync full applies to the in-process worker only: `steward worker` opens SQLite \
             with synchronous=NORMAL"
                .to_string()
        ));
    }
    let figures = match args.store.as_str() {
        "postgres" => {
            let url =
                std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string());
            run_postgres(&url, &args).await?
        }
        url if crate::store_url::is_postgres(url) => run_postgres(url, &args).await?,
        _ => run_sqlite(&args).await?,
    };
    figures.print();
    Ok(ExitCode::SUCCESS)
}

/// The in-process or the multi-process workload, as `--workers` says;
/// `worker_url` is the store as a `steward worker --store` argument.
async fn workload<S: Store>(
    store: Arc<S>,
    worker_url: &str,
    args: &JobsArgs,
) -> anyhow::Result<Figures> {
    match args.workers {
        None => in_process::workload(store, worker_url, args).await,
        Some(n) => processes::workload(store, worker_url, n, args).await,
    }
}

async fn run_sqlite(args: &JobsArgs) -> anyhow::Result<Figures> {
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let url = match args.store.as_str() {
        "sqlite" => format!("sqlite://{}", tmp.path().join("bench.db").display()),
        url if url.starts_with("sqlite://") => url.to_string(),
        other => {
            bail!(UsageError(format!(
                "--store {other}: use `sqlite`, a sqlite:// URL, `postgres` or a postgres:// URL"
            )))
        }
    };
    let synchronous = match args.sync {
        Sync::Normal => Synchronous::Normal,
        Sync::Full => Synchronous::Full,
    };
    let store = Arc::new(
        SqliteStore::open(
            &url,
            SqliteOptions {
                synchronous,
                ..SqliteOptions::default()
            },
        )
        .await
        .with_context(|| format!("opening {url}"))?,
    );
    store.migrate().await?;
    let sync_name = match args.sync {
        Sync::Normal => "NORMAL",
        Sync::Full => "FULL",
    };
    println!("store: sqlite (journal_mode=WAL, synchronous={sync_name})");
    let result = workload(store.clone(), &url, args).await;
    store.close().await;
    result
}

/// Runs the workload in a fresh schema with a random name and drops the
/// schema afterwards, whether the workload succeeded or not.
async fn run_postgres(url: &str, args: &JobsArgs) -> anyhow::Result<Figures> {
    let parts =
        steward::postgres::parse_url(url).map_err(|e| UsageError(format!("--store {url}: {e}")))?;
    if parts.schema.is_some() {
        bail!(UsageError(format!(
            "--store {url}: the benchmark makes (and drops) its own schema; leave out `schema=`"
        )));
    }
    let schema = format!("steward_bench_{:016x}", rand::random::<u64>());
    let options = PostgresOptions {
        schema: schema.clone(),
        ..PostgresOptions::default()
    };
    let store = Arc::new(
        PostgresStore::connect(&parts.connect, options)
            .await
            .with_context(|| format!("opening {url}"))?,
    );
    let separator = if parts.connect.contains('?') {
        '&'
    } else {
        '?'
    };
    let worker_url = format!("{}{separator}schema={schema}", parts.connect);
    let result = async {
        store
            .migrate()
            .await
            .with_context(|| format!("creating schema {schema}"))?;
        let setting = store
            .synchronous_commit()
            .await
            .context("reading synchronous_commit")?;
        println!("store: postgres (synchronous_commit={setting})");
        workload(store.clone(), &worker_url, args).await
    }
    .await;
    let dropped = store
        .drop_schema()
        .await
        .with_context(|| format!("dropping the benchmark's schema {schema}"));
    store.close().await;
    let figures = result?;
    dropped?;
    Ok(figures)
}
