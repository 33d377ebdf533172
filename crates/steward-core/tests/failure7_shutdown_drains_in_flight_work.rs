//! Failure 7: work lost at shutdown.
//!
//! Shutdown stops services in reverse order of registration, within one
//! shutdown timeout. Each service finishes its unit in flight and runs its
//! `on_stop` hook (its checkpoint). A unit that overruns the timeout is cut
//! off, and that is reported: an ERROR log naming the service, a `Faulted`
//! status and `ExitStatus::ShutdownTimedOut`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Journal, capture_logs, state_of, wait_for};
use steward_core::{
    BoxError, Context, ExitStatus, Host, HostBuilder, Scope, ScopeFactory, Service, ServiceState,
    UnitOutcome,
};
use tokio::time::Instant;

fn builder(shutdown_timeout: Duration) -> HostBuilder {
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .shutdown_timeout(shutdown_timeout);
    builder
}

/// Records when its run ends and when its stop hook runs.
struct Recorder {
    name: &'static str,
    journal: Journal,
}

impl Service for Recorder {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        self.journal.push(format!("{} run ended", self.name));
        Ok(())
    }
    async fn on_stop(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        // An async checkpoint: the next service must wait for it.
        tokio::time::sleep(Duration::from_millis(10)).await;
        self.journal.push(format!("{} on_stop", self.name));
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn services_stop_one_by_one_in_reverse_order_of_registration() {
    let journal = Journal::default();
    let mut builder = builder(Duration::from_secs(10));
    for name in ["database", "consumer", "producer", "http"] {
        builder
            .service(
                name,
                Recorder {
                    name,
                    journal: journal.clone(),
                },
            )
            .unwrap();
    }
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "ready", |s| s.ready).await;
    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
    assert_eq!(
        journal.events(),
        [
            "http run ended",
            "http on_stop",
            "producer run ended",
            "producer on_stop",
            "consumer run ended",
            "consumer on_stop",
            "database run ended",
            "database on_stop",
        ],
        "each service is stopped, hook included, before the one registered before it"
    );
    let status = handle.status();
    assert!(
        status
            .services
            .iter()
            .all(|s| s.state == ServiceState::Stopped)
    );
}

/// Imports numbered batches, each taking `batch` and not interruptible; the
/// stop hook saves the checkpoint: the last batch fully imported.
struct Importer {
    batch: Duration,
    completed: Arc<AtomicUsize>,
    checkpoint: Arc<Mutex<Option<usize>>>,
}

impl Service for Importer {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        while !ctx.is_cancelled() {
            tokio::time::sleep(self.batch).await; // the unit in flight
            self.completed.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
    async fn on_stop(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        *self.checkpoint.lock().unwrap() = Some(self.completed.load(Ordering::SeqCst));
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn unit_in_flight_finishes_within_the_timeout_and_the_stop_hook_checkpoints_it() {
    let completed = Arc::new(AtomicUsize::new(0));
    let checkpoint = Arc::new(Mutex::new(None));
    let mut builder = builder(Duration::from_secs(10));
    builder
        .service(
            "importer",
            Importer {
                batch: Duration::from_secs(3),
                completed: completed.clone(),
                checkpoint: checkpoint.clone(),
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let t0 = Instant::now();
    let run = tokio::spawn(host.run());

    // Batches end at 3, 6, 9 s; shut down half-way through the fourth.
    tokio::time::sleep_until(t0 + Duration::from_millis(10_500)).await;
    assert_eq!(completed.load(Ordering::SeqCst), 3);
    handle.shutdown();
    let exit = run.await.unwrap();

    assert_eq!(exit, ExitStatus::Clean);
    assert_eq!(
        completed.load(Ordering::SeqCst),
        4,
        "the batch in flight was finished, not dropped"
    );
    assert_eq!(*checkpoint.lock().unwrap(), Some(4), "on_stop saw it");
    assert_eq!(
        state_of(&handle.status(), "importer"),
        ServiceState::Stopped
    );
}

/// A scope whose resource is a transaction, recording how each one ended.
#[derive(Clone, Default)]
struct Transactions {
    released: Arc<Mutex<Vec<UnitOutcome>>>,
    rolled_back_on_drop: Arc<AtomicUsize>,
}

impl ScopeFactory for Transactions {
    type Resource = ();
    async fn acquire(&self) -> Result<(), BoxError> {
        Ok(())
    }
    async fn release(&self, _tx: (), outcome: UnitOutcome) {
        self.released.lock().unwrap().push(outcome);
    }
    fn release_dropped(&self, _tx: ()) {
        self.rolled_back_on_drop.fetch_add(1, Ordering::SeqCst);
    }
}

/// Each unit takes an hour: longer than any shutdown timeout.
struct Overrunning {
    scope: Scope<Transactions>,
    stop_hook_ran: Arc<AtomicUsize>,
}

impl Service for Overrunning {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        while !ctx.is_cancelled() {
            self.scope
                .run(async |_tx: &mut ()| {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(())
                })
                .await?;
        }
        Ok(())
    }
    async fn on_stop(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        self.stop_hook_ran.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn overrunning_unit_is_cut_off_at_the_shutdown_timeout_and_reported() {
    let (logs, _guard) = capture_logs();
    let transactions = Transactions::default();
    let stop_hook_ran = Arc::new(AtomicUsize::new(0));
    let mut builder = builder(Duration::from_secs(5));
    builder
        .service(
            "backfill",
            Overrunning {
                scope: Scope::new(transactions.clone()),
                stop_hook_ran: stop_hook_ran.clone(),
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "ready", |s| s.ready).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let asked = Instant::now();
    handle.shutdown();
    let exit = run.await.unwrap();
    let took = Instant::now() - asked;

    assert!(
        took >= Duration::from_secs(5),
        "waited the timeout: {took:?}"
    );
    assert!(
        took < Duration::from_secs(3600),
        "the timeout is enforced: {took:?}"
    );
    assert!(
        matches!(&exit, ExitStatus::ShutdownTimedOut { services, .. } if services == &["backfill"]),
        "{exit:?}"
    );
    let line = logs
        .error_for("backfill", &[])
        .unwrap_or_else(|| panic!("no ERROR line naming backfill:\n{}", logs.text()));
    assert!(line.contains("after it was asked to stop"), "{line}");
    let status = handle.status();
    match state_of(&status, "backfill") {
        ServiceState::Faulted { error, .. } => assert!(
            error.contains("did not stop within the shutdown timeout (5s)"),
            "{error}"
        ),
        other => panic!("expected Faulted, got {other:?}"),
    }
    assert!(!status.live);
    assert_eq!(stop_hook_ran.load(Ordering::SeqCst), 0, "cut off, no hook");
    assert_eq!(
        transactions.rolled_back_on_drop.load(Ordering::SeqCst),
        1,
        "the cut-off unit's transaction was released through release_dropped"
    );
    assert!(transactions.released.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn services_whose_turn_never_came_are_aborted_without_being_blamed() {
    let (logs, _guard) = capture_logs();
    let journal = Journal::default();
    let mut builder = builder(Duration::from_secs(5));
    // Registered first, so its turn comes after backfill's overrun.
    builder
        .service(
            "ledger",
            Recorder {
                name: "ledger",
                journal: journal.clone(),
            },
        )
        .unwrap();
    builder
        .service(
            "backfill",
            Overrunning {
                scope: Scope::new(Transactions::default()),
                stop_hook_ran: Arc::default(),
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "ready", |s| s.ready).await;
    handle.shutdown();
    let exit = run.await.unwrap();

    assert!(
        matches!(&exit, ExitStatus::ShutdownTimedOut { services, .. } if services == &["ledger", "backfill"]),
        "both were aborted: {exit:?}"
    );
    assert!(
        logs.error_for("backfill", &["ignored cancellation"])
            .is_some(),
        "{}",
        logs.text()
    );
    let ledger = logs
        .error_for("ledger", &[])
        .unwrap_or_else(|| panic!("no ERROR line naming ledger:\n{}", logs.text()));
    assert!(
        !ledger.contains("ignored cancellation"),
        "ledger was never given time to stop: {ledger}"
    );
    assert!(ledger.contains("ran out before its turn"), "{ledger}");
    match state_of(&handle.status(), "ledger") {
        ServiceState::Faulted { error, .. } => {
            assert!(error.contains("ran out before its turn"), "{error}")
        }
        other => panic!("expected Faulted, got {other:?}"),
    }
    assert!(
        !journal.events().contains(&"ledger on_stop".to_string()),
        "its checkpoint could not run: {:?}",
        journal.events()
    );
}

/// Its stop hook fails: still stopped, but the failure is recorded.
struct BadCheckpoint;

impl Service for BadCheckpoint {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
    async fn on_stop(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        Err("checkpoint file is read-only".into())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn failing_stop_hook_is_logged_and_recorded() {
    let (logs, _guard) = capture_logs();
    let mut builder = builder(Duration::from_secs(5));
    builder.service("exporter", BadCheckpoint).unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "ready", |s| s.ready).await;
    handle.shutdown();
    let exit = run.await.unwrap();
    assert_eq!(
        exit.code(),
        5,
        "a lost checkpoint is not a clean exit: {exit:?}"
    );
    let status = handle.status();
    let exporter = status.service("exporter").unwrap();
    assert_eq!(exporter.state, ServiceState::Stopped);
    assert_eq!(
        exporter.last_error.as_ref().map(|e| e.message.as_str()),
        Some("stop hook failed: checkpoint file is read-only")
    );
    assert!(
        logs.error_for("exporter", &["checkpoint file is read-only"])
            .is_some(),
        "{}",
        logs.text()
    );
}
