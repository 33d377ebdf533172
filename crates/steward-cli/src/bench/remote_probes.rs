//! The cross-process latency probe of `steward bench jobs`: a second
//! process (this binary, `steward bench probe-enqueuer`, hidden) enqueues
//! single probe jobs on the bench's store while the bench's worker is
//! idle, as a CLI or a web server beside a worker process would. Each probe
//! carries the wall-clock time its enqueue started; the worker measures
//! from it.

use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use steward::sqlite::Synchronous;
use steward::store::{NewJob, Store};

use crate::kinds::unix_ns;
use crate::store_url;

/// The job kind of a probe, as the bench's worker registers it.
pub const PROBE_KIND: &str = "bench_probe";

/// The pause between two probes, as for the in-process probes.
const EVERY: Duration = Duration::from_millis(10);

/// Options of the hidden `steward bench probe-enqueuer`.
#[derive(Args)]
pub struct ProbeArgs {
    /// The store, as `steward worker --store` takes it.
    #[arg(long)]
    store: String,
    /// How many probes to enqueue, one every 10 ms.
    #[arg(long)]
    count: usize,
}

/// The second process: enqueues `count` probes, one at a time.
pub async fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let store = store_url::open(&args.store, false, Synchronous::Normal).await?;
    let result = enqueue_probes(store.clone(), args.count).await;
    store.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

async fn enqueue_probes<S: Store>(store: Arc<S>, count: usize) -> anyhow::Result<()> {
    // Opening the store and its first statements are not measured.
    store.counts().await?;
    let mut ticker = tokio::time::interval(EVERY);
    for _ in 0..count {
        ticker.tick().await;
        let payload = format!(r#"{{"t0_ns":{}}}"#, unix_ns());
        store
            .enqueue(vec![NewJob::new(PROBE_KIND, payload)])
            .await?;
    }
    Ok(())
}

/// Runs the second process on `url` and waits for it to finish enqueuing.
pub async fn enqueue_from_another_process(url: &str, count: usize) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the steward binary")?;
    let status = tokio::process::Command::new(exe)
        .args(["bench", "probe-enqueuer", "--store", url])
        .args(["--count", &count.to_string()])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .context("running the probe-enqueuing process")?;
    if !status.success() {
        bail!("the probe-enqueuing process failed ({status})");
    }
    Ok(())
}
