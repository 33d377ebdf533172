//! The workload every system runs, and what it measures. Each system is a
//! [`System`]; the harness drives them all the same way, with the same
//! clock, the same probe pacing and the same completion rule.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// Runs of bulk jobs seen by this process's handlers. A static because each
/// system runs in a process of its own, and every framework passes state to
/// handlers its own way.
static RAN: AtomicU64 = AtomicU64::new(0);
/// Enqueue-to-start latency of each probe run so far.
static LATENCIES: Mutex<Vec<Duration>> = Mutex::new(Vec::new());

/// Called by every system's no-op handler.
pub fn ran() {
    RAN.fetch_add(1, Ordering::Relaxed);
}

/// Called by every system's probe handler with the probe's payload.
pub fn probe_started(t0_ns: u64) {
    let latency = Duration::from_nanos(unix_ns().saturating_sub(t0_ns));
    LATENCIES
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(latency);
}

fn probes_seen() -> usize {
    LATENCIES.lock().map_or(0, |l| l.len())
}

/// Nanoseconds since the Unix epoch: probes carry it, so latency spans the
/// enqueue call and whatever the framework does before the handler.
pub fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// One job queue under test, set up in a database of its own.
pub trait System: Sized {
    /// Connects, creates its tables; the worker is built but not running.
    async fn setup(url: &str, concurrency: usize) -> Result<Self>;
    /// Enqueues `n` no-op jobs with the system's fastest bulk call.
    async fn enqueue_bulk(&mut self, n: usize) -> Result<()>;
    /// Starts one worker (concurrency as given to `setup`).
    async fn start(&mut self) -> Result<()>;
    /// Jobs the database records as done (committed).
    async fn completed(&self) -> Result<u64>;
    /// Enqueues one probe job carrying `t0_ns`, with the single-job call.
    async fn enqueue_probe(&mut self, t0_ns: u64) -> Result<()>;
    /// Stops the worker gracefully.
    async fn stop(self) -> Result<()>;
}

/// The workload's size and limits.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Workload {
    pub jobs: usize,
    pub concurrency: usize,
    pub probes: usize,
    pub rounds: usize,
    /// Limit of each phase (setup, enqueue, processing, one probe round).
    pub phase_timeout: Duration,
}

/// What one system achieved; `None` for a phase that did not finish.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub enqueue_per_s: Option<f64>,
    pub processed_per_s: Option<f64>,
    /// First probe round.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Over every probe round that finished.
    pub worst_p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub rounds_done: usize,
    pub peak_mib: Option<u64>,
    /// Why the run ended early, if it did ("stalled in …" or an error).
    pub failure: Option<String>,
}

/// Runs the workload on `S`, filling `outcome` as phases finish, so a
/// phase that stalls or fails still leaves the earlier figures.
pub async fn run<S: System>(url: &str, w: &Workload, outcome: &mut Outcome) -> Result<()> {
    let mut system = phase("setup", w, S::setup(url, w.concurrency)).await?;

    let started = Instant::now();
    phase("bulk enqueue", w, system.enqueue_bulk(w.jobs)).await?;
    outcome.enqueue_per_s = Some(w.jobs as f64 / started.elapsed().as_secs_f64());
    eprintln!("  enqueued {} jobs", w.jobs);

    let started = Instant::now();
    system.start().await?;
    phase("processing", w, async {
        while (RAN.load(Ordering::Relaxed) as usize) < w.jobs {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Handlers ran; the figure counts until the database says so.
        while (system.completed().await? as usize) < w.jobs {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    })
    .await?;
    outcome.processed_per_s = Some(w.jobs as f64 / started.elapsed().as_secs_f64());
    eprintln!("  processed {} jobs", w.jobs);

    for round in 0..w.rounds {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let before = probes_seen();
        let mut ticker = tokio::time::interval(Duration::from_millis(10));
        phase(&format!("probe round {}", round + 1), w, async {
            for _ in 0..w.probes {
                ticker.tick().await;
                system.enqueue_probe(unix_ns()).await?;
            }
            while probes_seen() < before + w.probes {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Ok(())
        })
        .await?;
        let mut lat: Vec<Duration> = LATENCIES
            .lock()
            .map(|l| l[before..].to_vec())
            .unwrap_or_default();
        lat.sort();
        let (p50, p99, max) = (pct(&lat, 0.50), pct(&lat, 0.99), pct(&lat, 1.0));
        if round == 0 {
            outcome.p50_ms = Some(p50);
            outcome.p99_ms = Some(p99);
        }
        outcome.worst_p99_ms = Some(outcome.worst_p99_ms.map_or(p99, |w| w.max(p99)));
        outcome.max_ms = Some(outcome.max_ms.map_or(max, |m| m.max(max)));
        outcome.rounds_done = round + 1;
        eprintln!(
            "  probe round {}: p50={p50:.1} ms p99={p99:.1} ms max={max:.1} ms",
            round + 1
        );
    }
    phase("shutdown", w, system.stop()).await
}

/// Runs one phase under the workload's time limit.
async fn phase<T>(name: &str, w: &Workload, f: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(w.phase_timeout, f).await {
        Ok(result) => result.map_err(|e| e.context(format!("{name} failed"))),
        Err(_) => bail!("stalled in {name} (no end within {:?})", w.phase_timeout),
    }
}

/// The value at quantile `p` of sorted durations, in milliseconds.
fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Peak resident set size (VmHWM) of this process, MiB.
pub fn peak_mib() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|kb| kb / 1024)
}
