//! The jobs benchmark with one worker inside the bench process: the jobs
//! record their own runs, so completion and latency need no store reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use steward::jobs::{Client, EnqueueOptions, Job, JobContext, QueueConfig, Worker, WorkerConfig};
use steward::store::Store;
use steward::{BoxError, Host};
use tokio::sync::Notify;

use super::jobs::JobsArgs;
use super::remote_probes;
use super::report::{Figures, peak_rss_mib};
use crate::kinds::unix_ns;

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
        if let Ok(p) = ctx.state::<Arc<Progress>>() {
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
    const KIND: &'static str = remote_probes::PROBE_KIND;
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        let latency = Duration::from_nanos(unix_ns().saturating_sub(self.t0_ns));
        if let Ok(l) = ctx.state::<Arc<Latencies>>() {
            l.0.lock().unwrap_or_else(|p| p.into_inner()).push(latency);
        }
        Ok(())
    }
}

/// Bulk enqueue, drain with one in-process worker, then single enqueues to
/// the idle worker from this process, then from a second one on `url`.
pub async fn workload<S: Store>(
    store: Arc<S>,
    url: &str,
    args: &JobsArgs,
) -> anyhow::Result<Figures> {
    let client = Client::new(store.clone());
    let started = Instant::now();
    client
        .enqueue_many(
            (0..args.jobs).map(|_| BenchNoop {}),
            EnqueueOptions::default(),
        )
        .await?;
    let enqueue = started.elapsed();

    let progress = Arc::new(Progress {
        done: AtomicU64::new(0),
        target: args.jobs as u64,
        all: Notify::new(),
    });
    let latencies = Arc::new(Latencies(Mutex::new(Vec::new())));
    let worker = Worker::new(store.clone())
        .register::<BenchNoop>()
        .register::<Probe>()
        .config(WorkerConfig {
            queues: vec![QueueConfig {
                name: "default".to_string(),
                concurrency: args.concurrency,
            }],
            prefetch: args.prefetch,
            fetch_batch: args.fetch_batch,
            ..WorkerConfig::default()
        })
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
    let processed = process_start.elapsed();

    // The worker is idle now: probe enqueue-to-start latency.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    for _ in 0..args.probes {
        ticker.tick().await;
        client.enqueue(Probe { t0_ns: unix_ns() }).await?;
    }
    all_run(&latencies, args.probes).await?;
    let local = take(&latencies);

    // The same, enqueued by a second process on the same store.
    tokio::time::sleep(Duration::from_millis(200)).await;
    remote_probes::enqueue_from_another_process(url, args.probes).await?;
    all_run(&latencies, args.probes).await?;
    let remote = take(&latencies);
    handle.shutdown();
    running.await.context("worker host failed")?;

    Ok(Figures {
        jobs: args.jobs,
        enqueue,
        processed,
        workers: "1 worker".to_string(),
        concurrency: args.concurrency,
        latencies: local,
        probed: "an idle worker",
        remote_latencies: Some(remote),
        bench_mib: peak_rss_mib("self"),
        worker_mib: Vec::new(),
    })
}

/// Waits until `count` probes have run (30 s at most).
async fn all_run(latencies: &Latencies, count: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while latencies.0.lock().map_or(0, |l| l.len()) < count {
        if Instant::now() > deadline {
            bail!("latency probes did not all run within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// The latencies recorded so far, leaving none.
fn take(latencies: &Latencies) -> Vec<Duration> {
    std::mem::take(&mut *latencies.0.lock().unwrap_or_else(|p| p.into_inner()))
}
