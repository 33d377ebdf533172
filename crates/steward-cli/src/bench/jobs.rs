//! `steward bench jobs`: bulk enqueue, processing throughput with one worker,
//! and enqueue-to-start latency to an idle worker.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use steward::jobs::{Client, EnqueueOptions, Job, JobContext, QueueConfig, Worker, WorkerConfig};
use steward::postgres::{PostgresOptions, PostgresStore};
use steward::sqlite::{SqliteOptions, SqliteStore, Synchronous};
use steward::store::Store;
use steward::{BoxError, Host};
use tokio::sync::Notify;

/// Options of `steward bench jobs`.
#[derive(Args)]
pub struct JobsArgs {
    /// `sqlite` (a fresh temporary database), a `sqlite://PATH` URL,
    /// `postgres` (`$DATABASE_URL`, default
    /// `postgres://postgres@127.0.0.1:5432/test`) or a `postgres://` URL.
    /// PostgreSQL runs in a fresh schema with a random name, dropped at the end.
    #[arg(long, default_value = "sqlite")]
    store: String,
    /// How many jobs to enqueue and process.
    #[arg(long, default_value_t = 100_000)]
    jobs: usize,
    /// The worker's concurrency.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// How many single enqueues the latency probe makes (one every 10 ms).
    #[arg(long, default_value_t = 200)]
    probes: usize,
    /// Jobs the worker claims ahead of its free slots.
    #[arg(long, default_value_t = WorkerConfig::default().prefetch)]
    prefetch: usize,
    /// SQLite durability: `normal` (the default) or `full`. PostgreSQL runs
    /// with the server's own `synchronous_commit`.
    #[arg(long, value_enum, default_value_t = Sync::Normal)]
    sync: Sync,
}

/// `--sync`.
#[derive(Clone, Copy, ValueEnum)]
pub enum Sync {
    /// synchronous=NORMAL: durable against a process crash.
    Normal,
    /// synchronous=FULL: durable against power loss.
    Full,
}

/// Counts runs and wakes the benchmark when all `target` have run.
struct Progress {
    done: AtomicU64,
    target: u64,
    all: Notify,
}

#[derive(Serialize, Deserialize)]
struct BenchNoop {}

impl Job for BenchNoop {
    const KIND: &'static str = "bench_noop";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        if let Some(p) = ctx.state::<Arc<Progress>>() {
            if p.done.fetch_add(1, Ordering::Relaxed) + 1 == p.target {
                p.all.notify_one();
            }
        }
        Ok(())
    }
}

/// Carries the wall-clock time its enqueue call started.
#[derive(Serialize, Deserialize)]
struct Probe {
    t0_ns: u64,
}

struct Latencies(Mutex<Vec<Duration>>);

impl Job for Probe {
    const KIND: &'static str = "bench_probe";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        let latency = Duration::from_nanos(now_ns().saturating_sub(self.t0_ns));
        if let Some(l) = ctx.state::<Arc<Latencies>>() {
            l.0.lock().unwrap_or_else(|p| p.into_inner()).push(latency);
        }
        Ok(())
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The server `--store postgres` uses when `$DATABASE_URL` is not set.
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub async fn run(args: JobsArgs) -> anyhow::Result<ExitCode> {
    if args.jobs == 0 || args.concurrency == 0 {
        bail!("--jobs and --concurrency must be at least 1");
    }
    match args.store.as_str() {
        "postgres" => {
            let url =
                std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string());
            run_postgres(&url, &args).await
        }
        url if crate::store_url::is_postgres(url) => run_postgres(url, &args).await,
        _ => run_sqlite(&args).await,
    }
}

async fn run_sqlite(args: &JobsArgs) -> anyhow::Result<ExitCode> {
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    let url = match args.store.as_str() {
        "sqlite" => format!("sqlite://{}", tmp.path().join("bench.db").display()),
        url if url.starts_with("sqlite://") => url.to_string(),
        other => {
            bail!("--store {other}: use `sqlite`, a sqlite:// URL, `postgres` or a postgres:// URL")
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
    let result = workload(store.clone(), args).await;
    store.close().await;
    result
}

/// Runs the workload in a fresh schema with a random name and drops the
/// schema afterwards, whether the workload succeeded or not.
async fn run_postgres(url: &str, args: &JobsArgs) -> anyhow::Result<ExitCode> {
    let parts = crate::store_url::split_pg_url(url)?;
    if parts.schema.is_some() {
        bail!(crate::store_url::UsageError(format!(
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
    let result = async {
        store
            .migrate()
            .await
            .with_context(|| format!("creating schema {schema}"))?;
        let (setting,): (String,) = sqlx::query_as("SHOW synchronous_commit")
            .fetch_one(store.pool())
            .await
            .context("reading synchronous_commit")?;
        println!("store: postgres (synchronous_commit={setting})");
        workload(store.clone(), args).await
    }
    .await;
    // The schema name is ours and checked by the store (lowercase, digits,
    // `_`), so quoting it is enough.
    let dropped = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(store.pool())
        .await
        .with_context(|| format!("dropping the benchmark's schema {schema}"));
    store.close().await;
    let code = result?;
    dropped?;
    Ok(code)
}

/// The same workload on any store: bulk enqueue, drain with one worker,
/// then single enqueues to the idle worker.
async fn workload<S: Store>(store: Arc<S>, args: &JobsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(store.clone());
    let started = Instant::now();
    client
        .enqueue_many(
            (0..args.jobs).map(|_| BenchNoop {}),
            EnqueueOptions::default(),
        )
        .await?;
    let enqueue_secs = started.elapsed().as_secs_f64();

    let progress = Arc::new(Progress {
        done: AtomicU64::new(0),
        target: args.jobs as u64,
        all: Notify::new(),
    });
    let latencies = Arc::new(Latencies(Mutex::new(Vec::new())));
    let worker = Worker::new(store.clone())
        .register::<BenchNoop>()?
        .register::<Probe>()?
        .config(WorkerConfig {
            queues: vec![QueueConfig {
                name: "default".to_string(),
                concurrency: args.concurrency,
            }],
            prefetch: args.prefetch,
            ..WorkerConfig::default()
        })?
        .state(progress.clone())
        .state(latencies.clone());
    let mut builder = Host::builder();
    builder.handle_signals(false);
    builder.service("worker", worker)?;
    let host = builder.build()?;
    let handle = host.handle();
    let process_start = Instant::now();
    let running = tokio::spawn(host.run());
    progress.all.notified().await;
    // The last runs are done; wait until their completions are committed.
    loop {
        if store.counts().await?.completed >= args.jobs as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let process_secs = process_start.elapsed().as_secs_f64();

    // The worker is idle now: probe enqueue-to-start latency.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    for _ in 0..args.probes {
        ticker.tick().await;
        client.enqueue(Probe { t0_ns: now_ns() }).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while latencies.0.lock().map_or(0, |l| l.len()) < args.probes {
        if Instant::now() > deadline {
            bail!("latency probes did not all run within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    handle.shutdown();
    running.await.context("worker host failed")?;

    let mut lat: Vec<Duration> = latencies.0.lock().map(|l| l.clone()).unwrap_or_default();
    lat.sort();
    let pct = |p: f64| {
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "enqueue: {:.0} jobs/s ({} jobs in bulk)",
        args.jobs as f64 / enqueue_secs,
        args.jobs
    );
    println!(
        "processed: {:.0} jobs/s ({} jobs, 1 worker, concurrency {})",
        args.jobs as f64 / process_secs,
        args.jobs,
        args.concurrency
    );
    println!(
        "latency: p50={:.1} ms p99={:.1} ms ({} single enqueues to an idle worker)",
        pct(0.50),
        pct(0.99),
        args.probes
    );
    println!("peak memory: {} MiB", peak_rss_mib());
    Ok(ExitCode::SUCCESS)
}

/// Peak resident set size (VmHWM) of this process, in MiB.
fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024)
}
