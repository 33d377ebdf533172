//! Failure 2 at the end of a run: a service still crash-looping when the
//! host stops did not recover (exit 4); many failures at once are all named
//! and the timeout wins the code; a run future dropped mid-stop stops each
//! service once, in order.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{capture_logs, wait_for};
use steward_core::{
    BoxError, Context, FailureKind, FailurePolicy, Host, HostBuilder, RestartPolicy, Service,
};

fn builder() -> HostBuilder {
    let mut b = Host::builder();
    b.handle_signals(false)
        .panic_hook(false)
        .shutdown_timeout(Duration::from_secs(5));
    b
}

/// Its database is unreachable: init fails every time.
struct NeverStarts {
    attempts: Arc<AtomicUsize>,
}

impl Service for NeverStarts {
    async fn init(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        Err("connection refused: db:5432".into())
    }
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
}

/// A service that failed on every attempt of the run and was waiting for its
/// next restart when the operator stopped the host did not recover: exit 4
/// naming it (it was exit 0, "host stopped cleanly").

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_service_still_crash_looping_at_shutdown_did_not_recover() {
    let (_logs, _guard) = capture_logs();
    let attempts = Arc::new(AtomicUsize::new(0));
    let mut b = builder();
    b.service(
        "db-writer",
        NeverStarts {
            attempts: attempts.clone(),
        },
    )
    .unwrap()
    .policy(FailurePolicy::Restart(RestartPolicy {
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        jitter: 0.0,
        ..RestartPolicy::default()
    }));
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(
        &handle,
        Duration::from_secs(30),
        "3 failed attempts",
        |_| attempts.load(Ordering::SeqCst) >= 3,
    )
    .await;
    handle.shutdown();
    let exit = run.await.unwrap();
    assert!(attempts.load(Ordering::SeqCst) >= 3);
    assert!(
        !exit.is_success(),
        "exit {} although `db-writer` failed {} times and never ran: {exit}",
        exit.code(),
        attempts.load(Ordering::SeqCst)
    );
}

/// Held: many failures at once; the timeout wins and every one is named.
struct Stubborn;
impl Service for Stubborn {
    async fn run(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
}
struct FailsThenBadStop;
impl Service for FailsThenBadStop {
    async fn run(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        Err("boom".into())
    }
    async fn on_stop(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        panic!("on_stop panicked")
    }
}
struct PanicsOnDrop;
impl Service for PanicsOnDrop {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
}
impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("drop panicked")
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn every_failure_named_and_timeout_wins() {
    let (_logs, _guard) = capture_logs();
    let mut b = builder();
    let (tx, _rx_kept) = b.channel::<u8>("orphan", 4).unwrap();
    tx.try_send(1).unwrap();
    b.service("stubborn", Stubborn).unwrap();
    b.service("ignored", FailsThenBadStop)
        .unwrap()
        .policy(FailurePolicy::Ignore);
    b.service("dropper", PanicsOnDrop).unwrap();
    b.service("stopper", FailsThenBadStop)
        .unwrap()
        .policy(FailurePolicy::StopHost);
    let host = b.build().unwrap();
    let exit = host.run().await;
    assert_eq!(exit.code(), 2, "{exit}");
    let kinds: Vec<(String, FailureKind)> = exit
        .failures()
        .iter()
        .map(|f| (f.name.clone(), f.kind))
        .collect();
    for want in [
        ("stubborn", FailureKind::TimedOut),
        ("ignored", FailureKind::Faulted),
        ("ignored", FailureKind::StopFailed),
        ("dropper", FailureKind::DropPanicked),
        ("stopper", FailureKind::StoppedHost),
        ("stopper", FailureKind::StopFailed),
        ("orphan", FailureKind::ItemsLeft),
    ] {
        assert!(
            kinds.iter().any(|(n, k)| n == want.0 && *k == want.1),
            "missing {want:?} in {kinds:?}"
        );
    }
}

/// Held: the run future dropped half-way through a normal stop still stops
/// every service once, in order.
struct SlowStop {
    name: &'static str,
    stops: Arc<std::sync::Mutex<Vec<&'static str>>>,
}
impl Service for SlowStop {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
    async fn on_stop(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.stops.lock().unwrap().push(self.name);
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn run_future_dropped_during_stop_still_stops_in_order_once() {
    let (_logs, _guard) = capture_logs();
    let stops = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut b = builder();
    for name in ["first", "second", "third"] {
        b.service(
            name,
            SlowStop {
                name,
                stops: stops.clone(),
            },
        )
        .unwrap();
    }
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(5), "running", |s| {
        s.services.iter().all(|s| s.state.is_running())
    })
    .await;
    handle.shutdown();
    tokio::time::sleep(Duration::from_millis(450)).await; // "third" stopped, "second" in on_stop
    run.abort();
    let _ = run.await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(*stops.lock().unwrap(), ["third", "second", "first"]);
    assert!(
        handle
            .status()
            .services
            .iter()
            .all(|s| s.state == steward_core::ServiceState::Stopped),
        "{:#?}",
        handle.status()
    );
}
