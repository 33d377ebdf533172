//! Built-in job kinds for the demo, scripts and fault tests:
//! `noop`, `sleep {"ms"}`, `fail {"times"}`, `checkpoint {"steps","ms"}`, `panic`
//! (only with `--crash-kinds`),
//! `stamp` (records when it started: the benchmark's latency probe), and
//! `abort` (kills its worker process: for crash-loop tests; only with
//! `--crash-kinds`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use steward::BoxError;
use steward::jobs::{Job, JobContext, JobOptions};

/// Where successful runs are journaled (`steward worker --journal FILE`), so
/// black-box tests can count how often each job really ran.
pub struct Journal(pub Option<Mutex<std::fs::File>>);

impl Journal {
    pub fn open(path: Option<PathBuf>) -> std::io::Result<Self> {
        Ok(Journal(match path {
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )),
            None => None,
        }))
    }

    fn record(&self, ctx: &JobContext) {
        if let Some(file) = &self.0 {
            let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
            // One short line per write: appends of a line are atomic enough
            // for a test's journal, and a crash loses at most the last one.
            let _ = writeln!(file, "{} {} {}", ctx.id(), ctx.attempt(), ctx.kind());
        }
    }
}

fn journal(ctx: &JobContext) {
    if let Ok(journal) = ctx.state::<Journal>() {
        journal.record(ctx);
    }
}

/// Does nothing.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Noop {}

impl Job for Noop {
    const KIND: &'static str = "noop";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        journal(&ctx);
        Ok(())
    }
}

/// Sleeps `ms` milliseconds (ends early if told to stop).
#[derive(Debug, Serialize, Deserialize)]
pub struct Sleep {
    pub ms: u64,
}

impl Job for Sleep {
    const KIND: &'static str = "sleep";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        tokio::select! {
            _ = ctx.token().cancelled() => return Err("sleep interrupted".into()),
            _ = tokio::time::sleep(Duration::from_millis(self.ms)) => {}
        }
        journal(&ctx);
        Ok(())
    }
}

/// Fails its first `times` attempts, then succeeds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Fail {
    pub times: u32,
}

impl Job for Fail {
    const KIND: &'static str = "fail";
    fn options() -> JobOptions {
        JobOptions {
            retry: steward::jobs::RetryPolicy::exponential(
                Duration::from_millis(200),
                Duration::from_secs(5),
                0.2,
            ),
            ..JobOptions::default()
        }
    }
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        if ctx.attempt() <= self.times {
            let cause = std::io::Error::other("simulated upstream failure");
            return Err(Box::new(PlannedFailure {
                attempt: ctx.attempt(),
                times: self.times,
                source: cause,
            }));
        }
        journal(&ctx);
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("planned failure {attempt} of {times}")]
struct PlannedFailure {
    attempt: u32,
    times: u32,
    #[source]
    source: std::io::Error,
}

/// Works through `steps` steps of `ms` each, checkpointing after every step
/// and resuming from the last checkpoint on a later attempt.
#[derive(Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    pub steps: u32,
    pub ms: u64,
}

impl Job for Checkpoint {
    const KIND: &'static str = "checkpoint";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        let mut done: u32 = ctx.checkpoint()?.unwrap_or(0);
        if done > 0 {
            tracing::info!(done, steps = self.steps, "resuming from checkpoint");
        }
        while done < self.steps {
            tokio::select! {
                _ = ctx.token().cancelled() => return Err("checkpoint job interrupted".into()),
                _ = tokio::time::sleep(Duration::from_millis(self.ms)) => {}
            }
            done += 1;
            ctx.save_checkpoint(&done).await?;
        }
        journal(&ctx);
        Ok(())
    }
}

/// Saves the wall-clock time its run started as its checkpoint
/// ([`Started`]), so `steward bench jobs --workers N` can measure
/// enqueue-to-start latency in worker processes it cannot see into.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Stamp {}

/// The checkpoint a [`Stamp`] job leaves.
#[derive(Debug, Serialize, Deserialize)]
pub struct Started {
    /// When its run started, in nanoseconds since the Unix epoch.
    pub unix_ns: u64,
}

/// Nanoseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Job for Stamp {
    const KIND: &'static str = "stamp";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        let started = Started { unix_ns: unix_ns() };
        ctx.save_checkpoint(&started).await?;
        journal(&ctx);
        Ok(())
    }
}

/// Panics, every time.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Panic {}

impl Job for Panic {
    const KIND: &'static str = "panic";
    fn options() -> JobOptions {
        JobOptions {
            max_attempts: 3,
            retry: steward::jobs::RetryPolicy::exponential(
                Duration::from_millis(200),
                Duration::from_secs(2),
                0.2,
            ),
            ..JobOptions::default()
        }
    }
    async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
        panic!("the panic job panics, as asked");
    }
}

/// Kills its own worker process (`abort`), every time: the crash-loop case.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Abort {}

impl Job for Abort {
    const KIND: &'static str = "abort";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        tracing::error!(job = %ctx.id(), "the abort job kills its worker process, as asked");
        std::process::abort();
    }
}

/// Registers every built-in kind.
pub fn register<S: steward::store::Store>(
    worker: steward::jobs::Worker<S>,
) -> steward::jobs::Worker<S> {
    worker
        .register::<Noop>()
        .register::<Sleep>()
        .register::<Fail>()
        .register::<Checkpoint>()
        .register::<Stamp>()
}

/// Adds `panic` and `abort`, which crash an attempt or the whole process.
/// Only behind `steward worker --crash-kinds`: registered by default, anyone
/// who can enqueue could take down every `steward worker` of a fleet.
pub fn register_crash_kinds<S: steward::store::Store>(
    worker: steward::jobs::Worker<S>,
) -> steward::jobs::Worker<S> {
    worker.register::<Panic>().register::<Abort>()
}

/// Every built-in kind, crash kinds included: what `steward schedules add`
/// accepts without `--any-kind`.
pub const KINDS: &[&str] = &[
    Noop::KIND,
    Sleep::KIND,
    Fail::KIND,
    Checkpoint::KIND,
    Stamp::KIND,
    Panic::KIND,
    Abort::KIND,
];

/// The defaults of a built-in kind, so `steward enqueue` applies them.
pub fn defaults(kind: &str) -> Option<JobOptions> {
    match kind {
        k if k == Noop::KIND => Some(Noop::options()),
        k if k == Sleep::KIND => Some(Sleep::options()),
        k if k == Fail::KIND => Some(Fail::options()),
        k if k == Checkpoint::KIND => Some(Checkpoint::options()),
        k if k == Panic::KIND => Some(Panic::options()),
        k if k == Stamp::KIND => Some(Stamp::options()),
        k if k == Abort::KIND => Some(Abort::options()),
        _ => None,
    }
}
