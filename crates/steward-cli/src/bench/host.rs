//! `steward bench host`: start + graceful stop of many idle services, live
//! heap per idle service, and ticker drift.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use steward::{BoxError, Context, Host, Service};
use tokio::sync::{Mutex, Notify};

use crate::alloc::live_bytes;

/// Options of `steward bench host`.
#[derive(Args)]
pub struct HostArgs {
    /// How many idle services to start and stop.
    #[arg(long, default_value_t = 10_000, env = "STEWARD_SERVICES")]
    services: usize,
    /// How long to run the ticker for the drift measurement.
    #[arg(long, default_value = "30s", value_parser = crate::parse_duration, env = "STEWARD_DRIFT_FOR")]
    drift_for: Duration,
    /// The ticker's period.
    #[arg(long, default_value = "10ms", value_parser = crate::parse_duration, env = "STEWARD_PERIOD")]
    period: Duration,
}

/// A service that does nothing until asked to stop: the cheapest real service.
struct Idle {
    started: Arc<Started>,
}

struct Started {
    count: AtomicUsize,
    target: usize,
    all: Notify,
}

impl Service for Idle {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        if self.started.count.fetch_add(1, Ordering::AcqRel) + 1 == self.started.target {
            self.started.all.notify_one();
        }
        ctx.cancelled().await;
        Ok(())
    }
}

pub async fn run(args: HostArgs) -> anyhow::Result<ExitCode> {
    if args.services == 0 {
        bail!("--services must be at least 1");
    }
    let (timings, per_service) = start_stop(args.services).await?;
    let drift = ticker_drift(args.drift_for, args.period).await?;
    println!(
        "start+stop {} services: {} ms (start {:.1} ms, stop {:.1} ms)",
        args.services,
        (timings.start + timings.stop).as_millis(),
        timings.start.as_secs_f64() * 1000.0,
        timings.stop.as_secs_f64() * 1000.0,
    );
    println!(
        "memory per idle service: {:.1} KiB ({} bytes)",
        per_service as f64 / 1024.0,
        per_service
    );
    println!(
        "ticker drift after {} s: {:.1} ms",
        args.drift_for.as_secs(),
        drift.as_secs_f64() * 1000.0
    );
    Ok(ExitCode::SUCCESS)
}

/// How long starting and stopping took.
struct Timings {
    /// From `run` until every service runs.
    start: Duration,
    /// From asking the host to stop until it returned.
    stop: Duration,
}

/// Builds, starts and gracefully stops `n` idle services. Returns the time
/// from `run` to all running and from there to all stopped (building
/// excluded), and the live heap bytes per service while all were running
/// (building included: it is part of what an idle service costs).
async fn start_stop(n: usize) -> anyhow::Result<(Timings, usize)> {
    let before = live_bytes();
    let started = Arc::new(Started {
        count: AtomicUsize::new(0),
        target: n,
        all: Notify::new(),
    });
    let mut builder = Host::builder();
    builder.handle_signals(false);
    for i in 0..n {
        builder.service(
            format!("idle-{i}"),
            Idle {
                started: started.clone(),
            },
        )?;
    }
    let host = builder.build()?;
    let handle = host.handle();
    let t0 = Instant::now();
    let running = tokio::spawn(host.run());
    tokio::time::timeout(Duration::from_secs(60), started.all.notified())
        .await
        .context("services did not all start within 60 s")?;
    let start = t0.elapsed();
    let per_service = live_bytes().saturating_sub(before) / n;
    let t1 = Instant::now();
    handle.shutdown();
    let status = running.await.context("host task failed")?;
    let stop = t1.elapsed();
    if !status.is_success() {
        bail!("host did not stop cleanly: {status:?}");
    }
    Ok((Timings { start, stop }, per_service))
}

/// Runs one periodic service through a real host and measures how far the
/// last tick is from `first + n * period`: accumulated drift, not the fixed
/// timer-granularity offset every tick shares.
async fn ticker_drift(run_for: Duration, period: Duration) -> anyhow::Result<Duration> {
    let ticks: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let mut builder = Host::builder();
    builder.handle_signals(false);
    let recorded = ticks.clone();
    builder.periodic("drift", period, move |_ctx| {
        let recorded = recorded.clone();
        async move {
            recorded.lock().await.push(Instant::now());
            Ok(())
        }
    })?;
    let host = builder.build()?;
    let handle = host.handle();
    let running = tokio::spawn(host.run());
    tokio::time::sleep(run_for + period / 2).await;
    handle.shutdown();
    running.await.context("host task failed")?;
    let ticks = ticks.lock().await;
    // The first tick fires at once; later ones come off the timer wheel, which
    // rounds every deadline the same way. Measure from the second tick so only
    // accumulated drift remains.
    let (Some(first), Some(last)) = (ticks.get(1), ticks.last()) else {
        bail!("the ticker fired fewer than twice");
    };
    let actual = last.duration_since(*first).as_secs_f64();
    let period_s = period.as_secs_f64();
    let k = (actual / period_s).round();
    let expected_ticks = k as usize + 2;
    if expected_ticks != ticks.len() {
        println!(
            "note: {} ticks were skipped (the machine was busy)",
            expected_ticks.saturating_sub(ticks.len())
        );
    }
    Ok(Duration::from_secs_f64((actual - k * period_s).abs()))
}
