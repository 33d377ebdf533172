//! The jobs benchmark with N `steward worker` processes on the bench's
//! store: the bench only enqueues and reads the store, as an operator
//! would, so throughput is what separate processes achieve together.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use steward::jobs::{Client, EnqueueOptions};
use steward::store::{JobId, Store};

use super::children::WorkerProcesses;
use super::jobs::JobsArgs;
use super::report::{Figures, peak_rss_mib};
use crate::kinds::{Noop, Stamp, Started, unix_ns};

/// How long the completed count may stand still before the run is called
/// stalled: generous, since the machine may be busy.
const STALL: Duration = Duration::from_secs(60);

/// Bulk enqueue, drain with `workers` worker processes started on
/// `worker_url` (the same store), then single enqueues to the idle workers.
pub async fn workload<S: Store>(
    store: Arc<S>,
    worker_url: &str,
    workers: usize,
    args: &JobsArgs,
) -> anyhow::Result<Figures> {
    let client = Client::new(store.clone());
    let started = Instant::now();
    client
        .enqueue_many((0..args.jobs).map(|_| Noop {}), EnqueueOptions::default())
        .await?;
    let enqueue = started.elapsed();

    // From here on the workers run: an error or Ctrl-C returns through
    // `processes`' drop, which kills them.
    let process_start = Instant::now();
    let mut processes = WorkerProcesses::spawn(workers, worker_url, args.concurrency)?;
    let measured = tokio::select! {
        measured = drain_and_probe(&*store, &client, &mut processes, args, process_start) => measured?,
        _ = interrupted() => bail!("interrupted: worker processes killed"),
    };
    let worker_mib = processes.peak_mib();
    processes.stop(Duration::from_secs(30)).await?;
    let (processed, latencies) = measured;
    Ok(Figures {
        jobs: args.jobs,
        enqueue,
        processed,
        workers: match workers {
            1 => "1 worker process".to_string(),
            n => format!("{n} worker processes"),
        },
        concurrency: args.concurrency,
        latencies,
        probed: "idle worker processes",
        // The probes above already come from another process.
        remote_latencies: None,
        bench_mib: peak_rss_mib("self"),
        worker_mib,
    })
}

/// Waits until every bulk job completed (the processing time, from the
/// workers' start), then runs the latency probe on the idle workers.
async fn drain_and_probe<S: Store>(
    store: &S,
    client: &Client<S>,
    processes: &mut WorkerProcesses,
    args: &JobsArgs,
    process_start: Instant,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    wait_completed(store, processes, args.jobs as u64).await?;
    let processed = process_start.elapsed();

    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut probes: Vec<(JobId, u64)> = Vec::with_capacity(args.probes);
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    for _ in 0..args.probes {
        ticker.tick().await;
        let t0 = unix_ns();
        probes.push((client.enqueue(Stamp {}).await?.id, t0));
    }
    wait_completed(store, processes, (args.jobs + args.probes) as u64).await?;
    let mut latencies = Vec::with_capacity(probes.len());
    for (id, t0) in probes {
        let record = store
            .job(id)
            .await?
            .ok_or_else(|| anyhow!("probe job {id} vanished"))?;
        let started: Started = serde_json::from_str(record.checkpoint.as_deref().unwrap_or(""))
            .with_context(|| format!("probe job {id} left no start time"))?;
        latencies.push(Duration::from_nanos(started.unix_ns.saturating_sub(t0)));
    }
    Ok((processed, latencies))
}

/// Polls the store until `target` jobs are completed; fails if a worker
/// exits or nothing completes for [`STALL`].
async fn wait_completed<S: Store>(
    store: &S,
    processes: &mut WorkerProcesses,
    target: u64,
) -> anyhow::Result<()> {
    let mut last = 0;
    let mut last_change = Instant::now();
    loop {
        processes.check_running()?;
        let completed = store.counts().await?.completed;
        if completed >= target {
            return Ok(());
        }
        if completed != last {
            last = completed;
            last_change = Instant::now();
        } else if last_change.elapsed() > STALL {
            bail!("stalled: {completed} of {target} jobs completed, none for {STALL:?}");
        }
        // A count is a scan of the table; polling faster would load the
        // server the workers are measured on.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Completes on Ctrl-C or SIGTERM, so the workers can be killed first.
async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        Ok(()) = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
