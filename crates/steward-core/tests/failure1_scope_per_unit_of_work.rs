//! Failure 1: a resource held across units of work.
//!
//! A `Scope` gives every unit of work its own resource and takes it back on
//! every way out of the unit: success, error, panic, cancellation, and the
//! task being aborted (`release_dropped`). These tests count acquisitions and
//! releases, and check the outcome each release was told.

mod common;

use common::capture_logs;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use steward_core::{
    BoxError, Context, ExitStatus, Host, Scope, ScopeFactory, Service, TaskError, UnitOutcome,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// A fake pooled connection. `poisoned` stands for a connection left in a
/// bad state (an aborted transaction) by the unit that used it.
#[derive(Debug)]
struct Conn {
    id: usize,
    poisoned: bool,
}

/// Hands out numbered connections and records every acquisition and release.
#[derive(Default)]
struct Pool {
    next: AtomicUsize,
    fail_acquire: AtomicBool,
    /// How long `acquire` waits for a free connection (an exhausted pool).
    acquire_wait_ms: AtomicU64,
    /// Cancelled by `acquire` just as it hands out a connection: the race
    /// between a finished acquire and cancellation.
    cancel_on_acquire: Mutex<Option<CancellationToken>>,
    panic_in_acquire: AtomicBool,
    panic_in_release: AtomicBool,
    panic_in_release_dropped: AtomicBool,
    acquired: Mutex<Vec<usize>>,
    released: Mutex<Vec<(usize, UnitOutcome)>>,
    dropped: Mutex<Vec<usize>>,
}

impl Pool {
    fn acquired(&self) -> Vec<usize> {
        self.acquired.lock().unwrap().clone()
    }
    fn released(&self) -> Vec<(usize, UnitOutcome)> {
        self.released.lock().unwrap().clone()
    }
    fn dropped(&self) -> Vec<usize> {
        self.dropped.lock().unwrap().clone()
    }
    /// Every acquired connection came back exactly once, by either path.
    fn assert_balanced(&self) {
        let mut back: Vec<usize> = self.released().iter().map(|(id, _)| *id).collect();
        back.extend(self.dropped());
        back.sort_unstable();
        let mut acquired = self.acquired();
        acquired.sort_unstable();
        assert_eq!(
            acquired, back,
            "every acquired connection must be released exactly once"
        );
    }
}

/// The factory is a cheap handle on a shared `Pool`, so tests can read the
/// counts while the scope owns the factory.
#[derive(Clone, Default)]
struct Factory(Arc<Pool>);

impl ScopeFactory for Factory {
    type Resource = Conn;

    async fn acquire(&self) -> Result<Conn, BoxError> {
        let wait = self.0.acquire_wait_ms.load(Ordering::SeqCst);
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
        if self.0.panic_in_acquire.load(Ordering::SeqCst) {
            panic!("pool mutex poisoned");
        }
        if self.0.fail_acquire.load(Ordering::SeqCst) {
            return Err("pool exhausted".into());
        }
        let id = self.0.next.fetch_add(1, Ordering::SeqCst);
        self.0.acquired.lock().unwrap().push(id);
        if let Some(token) = self.0.cancel_on_acquire.lock().unwrap().as_ref() {
            token.cancel();
        }
        Ok(Conn {
            id,
            poisoned: false,
        })
    }

    async fn release(&self, conn: Conn, outcome: UnitOutcome) {
        // An await inside release, as a real rollback would have.
        tokio::task::yield_now().await;
        self.0.released.lock().unwrap().push((conn.id, outcome));
        if self.0.panic_in_release.load(Ordering::SeqCst) {
            panic!("commit lost the connection");
        }
    }

    fn release_dropped(&self, conn: Conn) {
        self.0.dropped.lock().unwrap().push(conn.id);
        if self.0.panic_in_release_dropped.load(Ordering::SeqCst) {
            panic!("rollback on drop failed");
        }
    }
}

#[tokio::test]
async fn each_unit_gets_a_fresh_resource_released_as_succeeded() {
    let factory = Factory::default();
    let scope = Scope::new(factory.clone());
    let mut seen = Vec::new();
    for _ in 0..3 {
        let id = scope
            .run(async |conn: &mut Conn| Ok(conn.id))
            .await
            .unwrap();
        seen.push(id);
    }
    assert_eq!(seen, vec![0, 1, 2], "each unit must get its own connection");
    assert_eq!(
        factory.0.released(),
        vec![
            (0, UnitOutcome::Succeeded),
            (1, UnitOutcome::Succeeded),
            (2, UnitOutcome::Succeeded)
        ]
    );
    assert!(factory.0.dropped().is_empty());
    factory.0.assert_balanced();
}

#[tokio::test]
async fn resource_is_released_as_failed_when_the_unit_returns_an_error() {
    let factory = Factory::default();
    let scope = Scope::new(factory.clone());
    let err = scope
        .run(async |conn: &mut Conn| -> Result<(), BoxError> {
            conn.poisoned = true;
            Err("constraint violation".into())
        })
        .await
        .unwrap_err();
    match err {
        TaskError::Failed { source } => assert_eq!(source.to_string(), "constraint violation"),
        other => panic!("expected TaskError::Failed, got {other:?}"),
    }
    assert_eq!(factory.0.released(), vec![(0, UnitOutcome::Failed)]);
    factory.0.assert_balanced();
}

#[tokio::test]
async fn resource_is_released_as_panicked_when_the_unit_panics() {
    let factory = Factory::default();
    let scope = Scope::new(factory.clone());
    let err = scope
        .run(async |conn: &mut Conn| -> Result<(), BoxError> {
            conn.poisoned = true;
            panic!("index out of bounds in unit {}", conn.id);
        })
        .await
        .unwrap_err();
    match err {
        TaskError::Panicked { message } => assert_eq!(message, "index out of bounds in unit 0"),
        other => panic!("expected TaskError::Panicked, got {other:?}"),
    }
    assert_eq!(factory.0.released(), vec![(0, UnitOutcome::Panicked)]);
    factory.0.assert_balanced();
}

#[tokio::test]
async fn a_poisoned_resource_never_reaches_the_next_unit() {
    let factory = Factory::default();
    let scope = Scope::new(factory.clone());
    let _ = scope
        .run(async |conn: &mut Conn| -> Result<(), BoxError> {
            conn.poisoned = true;
            Err("deadlock detected".into())
        })
        .await;
    let _ = scope
        .run(async |conn: &mut Conn| -> Result<(), BoxError> {
            conn.poisoned = true;
            panic!("unit panicked holding the connection");
        })
        .await;
    let (id, poisoned) = scope
        .run(async |conn: &mut Conn| Ok((conn.id, conn.poisoned)))
        .await
        .unwrap();
    assert_eq!(id, 2, "the third unit must get a third connection");
    assert!(
        !poisoned,
        "the third unit must not inherit a poisoned connection"
    );
    factory.0.assert_balanced();
}

#[tokio::test(start_paused = true)]
async fn resource_is_released_as_cancelled_when_the_unit_is_cancelled() {
    let factory = Factory::default();
    let scope = Scope::new(factory.clone());
    let token = CancellationToken::new();
    let canceller = {
        let token = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            token.cancel();
        })
    };
    // The unit waits far longer than the test allows: only cancellation can
    // end it before the outer timeout.
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        scope.run_until_cancelled(&token, async |_conn: &mut Conn| {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }),
    )
    .await
    .expect("cancellation must end the unit");
    canceller.await.unwrap();
    assert!(matches!(result, Err(TaskError::Cancelled)), "{result:?}");
    assert_eq!(factory.0.released(), vec![(0, UnitOutcome::Cancelled)]);
    factory.0.assert_balanced();
}

#[tokio::test]
async fn already_cancelled_unit_acquires_nothing() {
    let factory = Factory::default();
    let scope = Scope::new(factory.clone());
    let token = CancellationToken::new();
    token.cancel();
    let ran = AtomicBool::new(false);
    let result = scope
        .run_until_cancelled(&token, async |_conn: &mut Conn| {
            ran.store(true, Ordering::SeqCst);
            Ok(())
        })
        .await;
    assert!(matches!(result, Err(TaskError::Cancelled)), "{result:?}");
    assert!(!ran.load(Ordering::SeqCst));
    assert!(factory.0.acquired().is_empty());
    factory.0.assert_balanced();
}

#[tokio::test]
async fn failed_acquire_is_an_error_and_releases_nothing() {
    let factory = Factory::default();
    factory.0.fail_acquire.store(true, Ordering::SeqCst);
    let scope = Scope::new(factory.clone());
    let err = scope
        .run(async |_conn: &mut Conn| Ok(()))
        .await
        .unwrap_err();
    match err {
        TaskError::Failed { source } => assert_eq!(source.to_string(), "pool exhausted"),
        other => panic!("expected TaskError::Failed, got {other:?}"),
    }
    assert!(factory.0.released().is_empty());
    factory.0.assert_balanced();
}

#[tokio::test(start_paused = true)]
async fn resource_is_released_through_release_dropped_when_the_task_is_aborted() {
    let factory = Factory::default();
    let scope = Arc::new(Scope::new(factory.clone()));
    let started = Arc::new(tokio::sync::Notify::new());
    let task = {
        let scope = scope.clone();
        let started = started.clone();
        tokio::spawn(async move {
            scope
                .run(async |_conn: &mut Conn| {
                    started.notify_one();
                    std::future::pending::<()>().await;
                    Ok(())
                })
                .await
        })
    };
    started.notified().await;
    assert_eq!(factory.0.acquired(), vec![0]);
    task.abort();
    let joined = task.await;
    assert!(joined.unwrap_err().is_cancelled());
    assert_eq!(
        factory.0.dropped(),
        vec![0],
        "an aborted unit must hand its resource to release_dropped"
    );
    assert!(
        factory.0.released().is_empty(),
        "nothing async can run on abort"
    );
    factory.0.assert_balanced();
}

/// A service that runs one unit per tick, each ending a different way, the
/// last one still in flight when the host shuts down.
struct Worker {
    scope: Scope<Factory>,
    units: Arc<AtomicUsize>,
}

impl Service for Worker {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        loop {
            let n = self.units.fetch_add(1, Ordering::SeqCst);
            let result = self
                .scope
                .run_until_cancelled(ctx, async |_conn: &mut Conn| -> Result<(), BoxError> {
                    match n % 4 {
                        0 => Ok(()),
                        1 => Err("upstream said 503".into()),
                        2 => panic!("bad record {n}"),
                        _ => {
                            // Waits until shutdown cancels it.
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            Ok(())
                        }
                    }
                })
                .await;
            if matches!(result, Err(TaskError::Cancelled)) {
                return Ok(());
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn service_releases_every_unit_resource_on_every_exit_path() {
    let factory = Factory::default();
    let units = Arc::new(AtomicUsize::new(0));
    let mut builder = Host::builder();
    builder.handle_signals(false);
    builder
        .service(
            "worker",
            Worker {
                scope: Scope::new(factory.clone()),
                units: units.clone(),
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Units 0..=2 ended by themselves; unit 3 is waiting for cancellation.
    assert_eq!(units.load(Ordering::SeqCst), 4);
    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);

    assert_eq!(
        factory.0.released(),
        vec![
            (0, UnitOutcome::Succeeded),
            (1, UnitOutcome::Failed),
            (2, UnitOutcome::Panicked),
            (3, UnitOutcome::Cancelled),
        ]
    );
    factory.0.assert_balanced();
}

#[tokio::test(start_paused = true)]
async fn cancellation_during_acquire_returns_cancelled_at_once() {
    let factory = Factory::default();
    factory.0.acquire_wait_ms.store(10_000, Ordering::SeqCst); // exhausted pool
    let scope = Scope::new(factory.clone());
    let token = CancellationToken::new();
    let canceller = {
        let token = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            token.cancel();
        })
    };
    let ran = AtomicBool::new(false);
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        scope.run_until_cancelled(&token, async |_conn: &mut Conn| {
            ran.store(true, Ordering::SeqCst);
            Ok(())
        }),
    )
    .await
    .expect("cancellation must end the acquire, not wait it out");
    canceller.await.unwrap();
    assert!(matches!(result, Err(TaskError::Cancelled)), "{result:?}");
    assert!(!ran.load(Ordering::SeqCst));
    assert!(factory.0.acquired().is_empty(), "the acquire was abandoned");
    factory.0.assert_balanced();
}

#[tokio::test]
async fn resource_acquired_as_cancellation_fires_is_released_not_leaked() {
    let factory = Factory::default();
    let token = CancellationToken::new();
    *factory.0.cancel_on_acquire.lock().unwrap() = Some(token.clone());
    let scope = Scope::new(factory.clone());
    let ran = AtomicBool::new(false);
    let result = scope
        .run_until_cancelled(&token, async |_conn: &mut Conn| {
            ran.store(true, Ordering::SeqCst);
            Ok(())
        })
        .await;
    assert!(matches!(result, Err(TaskError::Cancelled)), "{result:?}");
    assert!(
        !ran.load(Ordering::SeqCst),
        "a cancelled unit does not start"
    );
    assert_eq!(factory.0.released(), vec![(0, UnitOutcome::Cancelled)]);
    factory.0.assert_balanced();
}

/// Runs units until cancelled; each waits 10 s for a connection.
struct Starved {
    scope: Scope<Factory>,
}

impl Service for Starved {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        loop {
            match self.scope.run_until_cancelled(ctx, async |_c| Ok(())).await {
                Err(TaskError::Cancelled) => return Ok(()),
                other => other?,
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn service_waiting_for_a_resource_stops_in_time_and_is_not_blamed() {
    let factory = Factory::default();
    factory.0.acquire_wait_ms.store(10_000, Ordering::SeqCst);
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .shutdown_timeout(Duration::from_secs(2));
    builder
        .service(
            "starved",
            Starved {
                scope: Scope::new(factory.clone()),
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    tokio::time::sleep(Duration::from_secs(1)).await; // inside the first acquire
    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
    assert_eq!(
        common::state_of(&handle.status(), "starved"),
        steward_core::ServiceState::Stopped
    );
}

#[tokio::test]
async fn panic_in_acquire_is_returned_as_an_error() {
    let factory = Factory::default();
    factory.0.panic_in_acquire.store(true, Ordering::SeqCst);
    let scope = Scope::new(factory.clone());
    let err = scope
        .run(async |_conn: &mut Conn| Ok(()))
        .await
        .unwrap_err();
    match err {
        TaskError::Panicked { message } => {
            assert_eq!(message, "acquire panicked: pool mutex poisoned")
        }
        other => panic!("expected TaskError::Panicked, got {other:?}"),
    }
    factory.0.assert_balanced();
}

#[tokio::test]
async fn panic_in_release_after_a_successful_unit_is_returned_as_an_error() {
    let factory = Factory::default();
    factory.0.panic_in_release.store(true, Ordering::SeqCst);
    let scope = Scope::new(factory.clone());
    let err = scope
        .run(async |conn: &mut Conn| Ok(conn.id))
        .await
        .expect_err("a unit whose commit panicked must not look successful");
    match err {
        TaskError::Panicked { message } => {
            assert_eq!(message, "release panicked: commit lost the connection")
        }
        other => panic!("expected TaskError::Panicked, got {other:?}"),
    }
    assert_eq!(factory.0.released(), vec![(0, UnitOutcome::Succeeded)]);
    factory.0.assert_balanced();
}

#[tokio::test]
async fn panic_in_release_after_a_failed_unit_keeps_the_unit_error_and_is_logged() {
    let (logs, _guard) = capture_logs();
    let factory = Factory::default();
    factory.0.panic_in_release.store(true, Ordering::SeqCst);
    let scope = Scope::new(factory.clone());
    let err = scope
        .run(async |_conn: &mut Conn| -> Result<(), BoxError> { Err("deadlock detected".into()) })
        .instrument(tracing::info_span!("service", name = %"ledger"))
        .await
        .unwrap_err();
    match err {
        TaskError::Failed { source } => assert_eq!(source.to_string(), "deadlock detected"),
        other => panic!("the unit's own error comes first, got {other:?}"),
    }
    let line = logs
        .errors()
        .into_iter()
        .find(|l| l.contains("release panicked") && l.contains("commit lost the connection"))
        .unwrap_or_else(|| panic!("the release panic must be logged: {}", logs.text()));
    assert!(line.contains("service{name=ledger}"), "{line}");
    factory.0.assert_balanced();
}

/// Runs one unit that ignores cancellation, so the host has to abort it.
struct Stuck {
    scope: Scope<Factory>,
}

impl Service for Stuck {
    async fn run(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        self.scope
            .run(async |_conn: &mut Conn| {
                std::future::pending::<()>().await;
                Ok(())
            })
            .await?;
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn panic_in_release_dropped_is_logged_with_the_service_name() {
    let (logs, _guard) = capture_logs();
    let factory = Factory::default();
    factory
        .0
        .panic_in_release_dropped
        .store(true, Ordering::SeqCst);
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .shutdown_timeout(Duration::from_secs(1));
    builder
        .service(
            "stuck",
            Stuck {
                scope: Scope::new(factory.clone()),
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    tokio::time::sleep(Duration::from_secs(1)).await;
    handle.shutdown();
    let status = run.await.unwrap();
    assert!(
        matches!(status, ExitStatus::ShutdownTimedOut { .. }),
        "{status:?}"
    );
    assert_eq!(factory.0.dropped(), vec![0]);
    let line = logs
        .errors()
        .into_iter()
        .find(|l| l.contains("release_dropped panicked") && l.contains("rollback on drop failed"))
        .unwrap_or_else(|| panic!("the panic must be logged: {}", logs.text()));
    assert!(line.contains("service{name=stuck}"), "{line}");
}
