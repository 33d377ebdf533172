//! A rough throughput and latency probe for the SQLite store, on a temp file.
//!
//! ```text
//! cargo run --release -p steward-store-sqlite --example throughput [JOBS [STAGE...]]
//! ```
//!
//! Environment: `CLAIM` (jobs per claim, default 100) and `WORKERS`
//! (claiming workers, default 4) for `drain` and `e2e`.
//!
//! STAGE is any of `normal`, `full` (the `synchronous` settings to run),
//! `bulk`, `drain`, `e2e`, `latency`; default: all of them.
//!
//! Prints: bulk enqueue rate (batches of 1,000), end-to-end processing rate
//! (producers enqueue while workers claim 100 at a time and finish what they
//! claimed), and enqueue-to-start latency at low load (one job at a time, a
//! worker blocked in `wait_for_work`). Numbers, not assertions: speed
//! belongs here, not in tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use steward_core::store::{
    ClaimRequest, Finish, FinishOutcome, NewJob, QueueClaim, Store, StoreError,
};
use steward_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let jobs: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(200_000);
    let stages: Vec<String> = std::env::args().skip(2).collect();
    let wants = |stage: &str| {
        stages.iter().any(|s| s == stage)
            || !stages
                .iter()
                .any(|s| ["bulk", "drain", "e2e", "latency"].contains(&s.as_str()))
    };
    let wants_sync = |sync: &str| {
        stages.iter().any(|s| s == sync) || !stages.iter().any(|s| s == "normal" || s == "full")
    };
    for sync in [Synchronous::Normal, Synchronous::Full] {
        if !wants_sync(if sync == Synchronous::Normal {
            "normal"
        } else {
            "full"
        }) {
            continue;
        }
        println!("== synchronous = {sync:?}");
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("bench.db");
        let options = SqliteOptions {
            synchronous: sync,
            ..SqliteOptions::default()
        };
        let store = SqliteStore::open(path.to_str().unwrap_or("bench.db"), options).await?;
        store.migrate().await?;

        if wants("bulk") || wants("drain") {
            bulk_enqueue(&store, jobs).await?;
        }
        if wants("drain") {
            drain(&store, workers()).await?;
        }
        if wants("e2e") {
            end_to_end(&store, jobs, 2, workers()).await?;
        }
        if wants("latency") {
            latency(&store, 2_000).await?;
        }
        store.close().await;
    }
    Ok(())
}

fn job(i: u64) -> NewJob {
    NewJob::new(
        "bench",
        format!(r#"{{"n":{i},"to":"someone@example.com"}}"#),
    )
}

async fn bulk_enqueue(store: &SqliteStore, n: u64) -> Result<(), StoreError> {
    let started = Instant::now();
    let mut i = 0;
    while i < n {
        let batch = (i..(i + 1000).min(n)).map(job).collect();
        store.enqueue(batch).await?;
        i += 1000;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "bulk enqueue: {n} jobs in {secs:.2} s = {:.0} jobs/s (one caller, batches of 1,000)",
        n as f64 / secs
    );
    Ok(())
}

/// Jobs per claim in `drain` and `e2e` (`CLAIM`, default 100).
fn claim_limit() -> u32 {
    std::env::var("CLAIM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

/// Workers in `drain` and `e2e` (`WORKERS`, default 4).
fn workers() -> usize {
    std::env::var("WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

fn request(limit: u32) -> ClaimRequest {
    ClaimRequest {
        worker: "bench".into(),
        queues: vec![QueueClaim {
            queue: "default".into(),
            limit,
        }],
        lease: Duration::from_secs(60),
        max_suspects: u32::MAX,
        kinds: None,
    }
}

/// Workers claim 100 at a time and complete what they claimed until the
/// queue is empty; returns how many they processed.
async fn work(store: SqliteStore, stop_when_empty: Arc<AtomicU64>) -> Result<u64, StoreError> {
    let mut done = 0;
    loop {
        let jobs = store.claim(request(claim_limit())).await?;
        if jobs.is_empty() {
            if stop_when_empty.load(Ordering::Acquire) == 1 {
                return Ok(done);
            }
            store.wait_for_work(Duration::from_millis(50)).await;
            continue;
        }
        done += jobs.len() as u64;
        let batch = jobs
            .iter()
            .map(|j| Finish {
                lease: j.lease,
                outcome: FinishOutcome::Completed,
            })
            .collect();
        store.finish(batch).await?;
    }
}

async fn drain(store: &SqliteStore, workers: usize) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let flag = Arc::new(AtomicU64::new(1));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        tasks.push(tokio::spawn(work(store.clone(), Arc::clone(&flag))));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "drain: {total} queued jobs claimed+completed in {secs:.2} s = {:.0} jobs/s ({workers} workers, claim {})",
        total as f64 / secs,
        claim_limit()
    );
    Ok(())
}

async fn end_to_end(
    store: &SqliteStore,
    n: u64,
    producers: u64,
    workers: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let producing_done = Arc::new(AtomicU64::new(0));
    let mut worker_tasks = Vec::new();
    for _ in 0..workers {
        worker_tasks.push(tokio::spawn(work(
            store.clone(),
            Arc::clone(&producing_done),
        )));
    }
    let mut producer_tasks = Vec::new();
    for p in 0..producers {
        let store = store.clone();
        producer_tasks.push(tokio::spawn(async move {
            let share = n / producers;
            let mut i = 0;
            while i < share {
                let batch = (i..(i + 100).min(share))
                    .map(|j| job(p * share + j))
                    .collect();
                store.enqueue(batch).await?;
                i += 100;
            }
            Ok::<_, StoreError>(())
        }));
    }
    for t in producer_tasks {
        t.await??;
    }
    producing_done.store(1, Ordering::Release);
    let mut total = 0;
    for t in worker_tasks {
        total += t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "end to end: {total} jobs enqueued (batches of 100, {producers} producers) and claimed+completed \
         ({workers} workers, claim {}) in {secs:.2} s = {:.0} jobs/s",
        claim_limit(),
        total as f64 / secs
    );
    Ok(())
}

async fn latency(store: &SqliteStore, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    // One timestamp per job, taken just before its enqueue.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let worker = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n);
            while lat.len() < n {
                store.wait_for_work(Duration::from_secs(1)).await;
                let jobs = store.claim(request(10)).await?;
                if jobs.is_empty() {
                    continue;
                }
                let now = Instant::now();
                for _ in &jobs {
                    if let Some(sent) = rx.recv().await {
                        lat.push(now - sent);
                    }
                }
                let batch = jobs
                    .iter()
                    .map(|j| Finish {
                        lease: j.lease,
                        outcome: FinishOutcome::Completed,
                    })
                    .collect();
                store.finish(batch).await?;
            }
            Ok::<_, StoreError>(lat)
        })
    };
    for i in 0..n {
        tx.send(Instant::now())?;
        store.enqueue(vec![job(i as u64)]).await?;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut lat = worker.await??;
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "enqueue-to-start latency ({n} jobs, one at a time): p50 {:?}, p90 {:?}, p99 {:?}",
        pct(0.5),
        pct(0.9),
        pct(0.99)
    );
    Ok(())
}
