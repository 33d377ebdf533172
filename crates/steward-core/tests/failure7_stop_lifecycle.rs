//! Failure 7, work lost at shutdown, at the edges of a service's life: a
//! shutdown during `init`, a host whose `run` future is dropped, services
//! asked to stop at the very end of the budget, and several stuck at once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{Idle, Journal, capture_logs, wait_for};
use steward_core::{BoxError, Context, Host, HostBuilder, Service, ServiceState};

fn builder(shutdown_timeout: Duration) -> HostBuilder {
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .shutdown_timeout(shutdown_timeout);
    builder
}

/// Loads a checkpoint in init (slowly), counts in run, and writes the
/// checkpoint back in on_stop.
struct Counter {
    stored: Arc<AtomicU64>,
    count: u64,
}

impl Service for Counter {
    async fn init(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.sleep(Duration::from_secs(10)).await?; // a slow restore
        self.count = self.stored.load(Ordering::SeqCst);
        Ok(())
    }
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        while ctx.sleep(Duration::from_millis(100)).await.is_ok() {
            self.count += 1;
        }
        Ok(())
    }
    async fn on_stop(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        self.stored.store(self.count, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn stop_hook_never_runs_over_state_that_init_did_not_finish() {
    let (_logs, _guard) = capture_logs();
    let stored = Arc::new(AtomicU64::new(5000));
    let mut builder = builder(Duration::from_secs(5));
    builder
        .service(
            "counter",
            Counter {
                stored: stored.clone(),
                count: 0,
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    tokio::time::sleep(Duration::from_secs(1)).await; // still in init
    handle.shutdown();
    run.await.unwrap();
    assert_eq!(
        stored.load(Ordering::SeqCst),
        5000,
        "on_stop wrote its unrestored state over the checkpoint"
    );
}

/// Journals its stop hook and whether it saw the host shutting down.
struct Observer {
    journal: Journal,
    saw_shutdown: Arc<AtomicBool>,
}

impl Service for Observer {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        self.saw_shutdown
            .store(ctx.host().is_shutting_down(), Ordering::SeqCst);
        self.journal.push("run returned");
        Ok(())
    }
    async fn on_stop(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        self.journal.push("on_stop");
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_run_future_stops_every_service() {
    let journal = Journal::default();
    let saw_shutdown = Arc::new(AtomicBool::new(false));
    let mut builder = builder(Duration::from_secs(5));
    builder
        .service(
            "observer",
            Observer {
                journal: journal.clone(),
                saw_shutdown: saw_shutdown.clone(),
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    // A `select!` in main that picks another branch drops the host's future.
    let dropped = tokio::time::timeout(Duration::from_millis(300), host.run()).await;
    assert!(dropped.is_err(), "the host's future was dropped");
    wait_for(&handle, Duration::from_secs(10), "observer stopped", |s| {
        s.services.iter().all(|s| s.state == ServiceState::Stopped)
    })
    .await;
    assert!(handle.is_shutting_down());
    assert!(saw_shutdown.load(Ordering::SeqCst));
    assert_eq!(journal.events(), ["run returned", "on_stop"]);
}

/// Takes `drain` to stop once asked (a cancel-aware drain).
struct Draining {
    drain: Duration,
}

impl Service for Draining {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        tokio::time::sleep(self.drain).await;
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_service_asked_at_the_deadline_is_not_blamed_for_ignoring_cancellation() {
    let (logs, _guard) = capture_logs();
    let mut builder = builder(Duration::from_secs(5));
    builder
        .service(
            "ledger",
            Draining {
                drain: Duration::from_secs(1),
            },
        )
        .unwrap();
    // Stops just before the deadline: the ledger's turn comes with 0.1 s left.
    builder
        .service(
            "backfill",
            Draining {
                drain: Duration::from_millis(4900),
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "ready", |s| s.ready).await;
    handle.shutdown();
    run.await.unwrap();
    assert!(
        logs.error_for("ledger", &["ignored cancellation"])
            .is_none(),
        "ledger had no time to stop:\n{}",
        logs.text()
    );
    assert!(
        !logs.text().contains("still running 0.0 s"),
        "{}",
        logs.text()
    );
    assert!(
        logs.error_for("ledger", &["its turn to stop came 0.1 s before"])
            .is_some(),
        "the line says how much time it had:\n{}",
        logs.text()
    );
}

/// Blocks its thread for `hold` once asked to stop: it cannot be aborted.
struct Stuck {
    hold: Duration,
}

impl Service for Stuck {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        // `block_in_place` hands this worker's queue to a new thread, so the
        // stuck service blocks only itself (plain blocking on a runtime
        // thread is the watchdog's concern, not this test's).
        tokio::task::block_in_place(|| std::thread::sleep(self.hold));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 6)]
async fn the_abort_grace_is_shared_not_added_once_per_stuck_service() {
    let mut builder = builder(Duration::from_millis(500));
    for name in ["a", "b", "c", "d"] {
        builder
            .service(
                name,
                Stuck {
                    hold: Duration::from_secs(6),
                },
            )
            .unwrap();
    }
    builder.service("idle", Idle).unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "ready", |s| s.ready).await;
    let asked = std::time::Instant::now();
    handle.shutdown();
    let exit = run.await.unwrap();
    let took = asked.elapsed();
    assert_eq!(exit.code(), 2, "{exit:?}");
    // 0.5 s budget + one 1 s abort grace; four graces in a row would be 4.5 s.
    assert!(
        took < Duration::from_millis(3500),
        "the abort grace was added per service: {took:?}"
    );
}
