//! The figures both variants of `steward bench jobs` print, in one format.

use std::time::Duration;

/// What one run of the jobs benchmark measured.
pub struct Figures {
    pub jobs: usize,
    pub enqueue: Duration,
    pub processed: Duration,
    /// `1 worker` or `3 worker processes`: who processed the jobs.
    pub workers: String,
    pub concurrency: usize,
    /// Enqueue-to-start latency of each probe.
    pub latencies: Vec<Duration>,
    /// Who the probes ran on, for the latency line.
    pub probed: &'static str,
    /// Enqueue-to-start latency of probes enqueued by a second process
    /// while the bench's own worker was idle (in-process runs only).
    pub remote_latencies: Option<Vec<Duration>>,
    /// Peak memory of the bench process and of each worker process, MiB.
    pub bench_mib: Option<u64>,
    pub worker_mib: Vec<Option<u64>>,
}

impl Figures {
    pub fn print(mut self) {
        self.latencies.sort();
        println!(
            "enqueue: {:.0} jobs/s ({} jobs in bulk)",
            self.jobs as f64 / self.enqueue.as_secs_f64(),
            self.jobs
        );
        println!(
            "processed: {:.0} jobs/s ({} jobs, {}, concurrency {})",
            self.jobs as f64 / self.processed.as_secs_f64(),
            self.jobs,
            self.workers,
            self.concurrency
        );
        println!(
            "latency: p50={:.1} ms p99={:.1} ms ({} single enqueues to {})",
            percentile_ms(&self.latencies, 0.50),
            percentile_ms(&self.latencies, 0.99),
            self.latencies.len(),
            self.probed
        );
        if let Some(mut remote) = self.remote_latencies.take() {
            remote.sort();
            println!(
                "latency from another process: p50={:.1} ms p99={:.1} ms ({} single enqueues by a \
                 second process to {})",
                percentile_ms(&remote, 0.50),
                percentile_ms(&remote, 0.99),
                remote.len(),
                self.probed
            );
        }
        let mib = |m: Option<u64>| m.map_or_else(|| "?".to_string(), |m| m.to_string());
        if self.worker_mib.is_empty() {
            println!("peak memory: {} MiB", mib(self.bench_mib));
        } else {
            let workers: Vec<String> = self.worker_mib.iter().map(|m| mib(*m)).collect();
            println!(
                "peak memory: {} MiB (bench), workers {} MiB",
                mib(self.bench_mib),
                workers.join(", ")
            );
        }
    }
}

/// The value at quantile `p` of sorted durations, in milliseconds.
fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Peak resident set size (VmHWM) of a process (`self` or a pid), in MiB;
/// `None` once the process is gone or where there is no `/proc`.
pub fn peak_rss_mib(process: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse::<u64>()
        .ok()
        .map(|kb| kb / 1024)
}
