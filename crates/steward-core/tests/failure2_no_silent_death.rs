//! Failure 2: silent death.
//!
//! Every `Err` and panic out of a service is caught (a panic is isolated: the
//! host and the other services keep running), logged at ERROR with the
//! service's name and the whole error chain, shown as `Faulted { error, at }`,
//! and handled by the service's policy: Restart (exponential backoff, limited
//! within a window), StopHost (graceful shutdown, failing exit status) or
//! Ignore (stays faulted, the host goes on).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use common::{Beating, Idle, Journal, capture_logs, state_of, wait_for};
use steward_core::{
    BoxError, Context, ExitStatus, FailurePolicy, Host, RestartPolicy, Service, ServiceState,
};
use tokio::time::Instant;

/// The middle of a three-level error chain, as a library would define it.
#[derive(Debug, thiserror::Error)]
#[error("syncing invoices for tenant 7")]
struct SyncError {
    #[source]
    source: std::io::Error,
}

/// `nightly billing run: syncing invoices for tenant 7: connection refused by db:5432`
fn chained_error() -> anyhow::Error {
    let root = std::io::Error::other("connection refused by db:5432");
    Err::<(), _>(SyncError { source: root })
        .context("nightly billing run")
        .unwrap_err()
}

const CHAIN: [&str; 3] = [
    "nightly billing run",
    "syncing invoices for tenant 7",
    "connection refused by db:5432",
];

/// Fails with the chained error after `after`, counting its starts.
struct Billing {
    after: Duration,
    starts: Arc<AtomicUsize>,
}

impl Service for Billing {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        ctx.sleep(self.after).await?;
        Err(chained_error().into())
    }
}

/// Panics as soon as it runs, recording when each start happened.
struct Panicky {
    starts: Arc<Mutex<Vec<Instant>>>,
}

impl Service for Panicky {
    async fn run(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        self.starts.lock().unwrap().push(Instant::now());
        panic!("lost connection to broker");
    }
}

fn builder() -> steward_core::HostBuilder {
    let mut builder = Host::builder();
    builder.handle_signals(false);
    builder
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn failing_service_is_logged_at_error_with_its_name_and_full_error_chain() {
    let (logs, _guard) = capture_logs();
    let starts = Arc::new(AtomicUsize::new(0));
    let mut builder = builder();
    builder
        .service(
            "billing",
            Billing {
                after: Duration::from_secs(1),
                starts: starts.clone(),
            },
        )
        .unwrap()
        .policy(FailurePolicy::Ignore);
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());

    let status = wait_for(&handle, Duration::from_secs(10), "billing faulted", |s| {
        s.service("billing").unwrap().state.is_faulted()
    })
    .await;

    let line = logs
        .error_for("billing", &["service failed"])
        .unwrap_or_else(|| panic!("no ERROR line for billing in:\n{}", logs.text()));
    for part in CHAIN {
        assert!(line.contains(part), "log line lacks `{part}`: {line}");
    }

    let billing = status.service("billing").unwrap();
    let ServiceState::Faulted { error, at } = &billing.state else {
        panic!("expected Faulted, got {:?}", billing.state);
    };
    assert_eq!(error, &CHAIN.join(": "));
    let last = billing.last_error.as_ref().expect("last_error is recorded");
    assert_eq!(&last.message, error);
    assert_eq!(&last.at, at);
    assert!(!status.live, "a faulted service makes the host not live");

    handle.shutdown();
    run.await.unwrap();
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn panicking_service_is_caught_and_the_others_keep_running() {
    let (logs, _guard) = capture_logs();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let (beating, beats) = Beating::new(Duration::from_millis(100));
    let mut builder = builder();
    builder.service("heartbeat", beating).unwrap();
    builder
        .service(
            "broker",
            Panicky {
                starts: starts.clone(),
            },
        )
        .unwrap()
        .policy(FailurePolicy::Ignore);
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());

    let status = wait_for(&handle, Duration::from_secs(10), "broker faulted", |s| {
        s.service("broker").unwrap().state.is_faulted()
    })
    .await;
    let ServiceState::Faulted { error, .. } = state_of(&status, "broker") else {
        unreachable!()
    };
    assert_eq!(error, "panicked: lost connection to broker");
    assert!(
        logs.error_for("broker", &["panicked: lost connection to broker"])
            .is_some(),
        "the panic must be logged at ERROR with the service's name:\n{}",
        logs.text()
    );

    // The panic took down neither the host nor its neighbour.
    let before = beats.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(beats.load(Ordering::SeqCst) >= before + 5);
    let status = handle.status();
    assert!(state_of(&status, "heartbeat").is_running());
    assert!(!run.is_finished(), "the host keeps running");

    handle.shutdown();
    let exit = run.await.unwrap();
    assert_eq!(exit.code(), 4, "it ended faulted: {exit:?}");
    assert_eq!(starts.lock().unwrap().len(), 1, "Ignore never restarts");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn panicking_service_is_restarted_with_backoff() {
    let (logs, _guard) = capture_logs();
    let starts = Arc::new(Mutex::new(Vec::new()));
    let (beating, beats) = Beating::new(Duration::from_millis(10));
    let policy = RestartPolicy {
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(10),
        multiplier: 2.0,
        jitter: 0.0,
        max_restarts: 3,
        window: Duration::from_secs(60),
    };
    let mut builder = builder();
    builder.service("heartbeat", beating).unwrap();
    builder
        .service(
            "broker",
            Panicky {
                starts: starts.clone(),
            },
        )
        .unwrap()
        .policy(FailurePolicy::Restart(policy));
    let host = builder.build().unwrap();
    let handle = host.handle();
    let t0 = Instant::now();
    let run = tokio::spawn(host.run());

    // Failures at 0, 100, 300 and 700 ms (backoffs 100, 200, 400 ms). Look
    // at the status in the middle of each backoff.
    for (at_ms, attempt) in [(50, 1), (200, 2), (500, 3)] {
        tokio::time::sleep_until(t0 + Duration::from_millis(at_ms)).await;
        let status = handle.status();
        let broker = status.service("broker").unwrap();
        let ServiceState::Restarting {
            attempt: seen,
            next_at,
        } = broker.state
        else {
            panic!("at {at_ms} ms expected Restarting, got {:?}", broker.state);
        };
        assert_eq!(seen, attempt);
        assert_eq!(broker.restarts, attempt);
        let failed_at = broker.last_error.as_ref().expect("failure recorded").at;
        let backoff = chrono::Duration::milliseconds(100 << (attempt - 1));
        assert!(
            next_at - failed_at >= backoff,
            "next_at must be the failure time plus the backoff ({backoff})"
        );
        assert!(status.live, "a service being restarted is not faulted");
        assert!(!status.ready, "a restarting service is not ready");
    }

    // The fourth failure exhausts three restarts in the window: Faulted.
    tokio::time::sleep_until(t0 + Duration::from_secs(5)).await;
    let status = handle.status();
    let broker = status.service("broker").unwrap();
    assert!(broker.state.is_faulted(), "{:?}", broker.state);
    assert_eq!(broker.restarts, 3);
    assert!(!status.live);
    let gaps: Vec<Duration> = starts
        .lock()
        .unwrap()
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect();
    assert_eq!(
        gaps,
        [100, 200, 400].map(Duration::from_millis),
        "exponential backoff between starts"
    );
    assert!(
        logs.error_for("broker", &["restart limit reached"])
            .is_some(),
        "giving up must be logged at ERROR:\n{}",
        logs.text()
    );
    assert!(
        beats.load(Ordering::SeqCst) > 100,
        "the neighbour kept running"
    );

    handle.shutdown();
    let exit = run.await.unwrap();
    assert_eq!(exit.code(), 4, "it ended out of restarts: {exit:?}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn failures_spread_wider_than_the_window_keep_being_restarted() {
    let starts = Arc::new(AtomicUsize::new(0));
    let policy = RestartPolicy {
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        jitter: 0.0,
        max_restarts: 1,
        window: Duration::from_secs(5),
        ..RestartPolicy::default()
    };
    let mut builder = builder();
    builder
        .service(
            "billing",
            Billing {
                after: Duration::from_secs(10),
                starts: starts.clone(),
            },
        )
        .unwrap()
        .policy(FailurePolicy::Restart(policy));
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());

    // One failure every ~10 s: never more than one restart in any 5 s window.
    tokio::time::sleep(Duration::from_secs(55)).await;
    let status = handle.status();
    let billing = status.service("billing").unwrap();
    assert!(!billing.state.is_faulted(), "{:?}", billing.state);
    assert!(billing.restarts >= 4, "restarts: {}", billing.restarts);
    assert_eq!(starts.load(Ordering::SeqCst) as u32, billing.restarts + 1);

    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
}

/// Records its stop hook, so the test sees the host stopped it gracefully.
struct Mailer {
    journal: Journal,
}

impl Service for Mailer {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        self.journal.push("mailer: run returned");
        Ok(())
    }
    async fn on_stop(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        self.journal.push("mailer: on_stop");
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn failing_service_under_stop_host_shuts_the_whole_host_down_gracefully() {
    let (logs, _guard) = capture_logs();
    let journal = Journal::default();
    let starts = Arc::new(AtomicUsize::new(0));
    let mut builder = builder();
    builder
        .service(
            "mailer",
            Mailer {
                journal: journal.clone(),
            },
        )
        .unwrap();
    builder
        .service(
            "billing",
            Billing {
                after: Duration::from_secs(1),
                starts: starts.clone(),
            },
        )
        .unwrap()
        .policy(FailurePolicy::StopHost);
    let host = builder.build().unwrap();
    let handle = host.handle();

    // Nobody calls shutdown: the failure alone must end the host.
    let exit = tokio::time::timeout(Duration::from_secs(60), host.run())
        .await
        .expect("a StopHost failure must stop the host");

    let ExitStatus::ServiceFailed { service, error, .. } = &exit else {
        panic!("expected ServiceFailed, got {exit:?}");
    };
    assert_eq!(service, "billing");
    assert_eq!(error, &CHAIN.join(": "));
    assert_ne!(exit.code(), 0);
    let status = handle.status();
    assert!(state_of(&status, "billing").is_faulted());
    assert_eq!(state_of(&status, "mailer"), ServiceState::Stopped);
    assert_eq!(
        journal.events(),
        ["mailer: run returned", "mailer: on_stop"],
        "the other services are stopped gracefully"
    );
    assert_eq!(starts.load(Ordering::SeqCst), 1, "StopHost never restarts");
    let line = logs
        .error_for("billing", &["service failed"])
        .unwrap_or_else(|| panic!("no ERROR line for billing:\n{}", logs.text()));
    for part in CHAIN {
        assert!(line.contains(part), "log line lacks `{part}`: {line}");
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn failing_service_under_ignore_stays_faulted_while_the_host_goes_on() {
    let starts = Arc::new(AtomicUsize::new(0));
    let (beating, beats) = Beating::new(Duration::from_millis(100));
    let mut builder = builder();
    builder.service("heartbeat", beating).unwrap();
    builder.service("idle", Idle).unwrap();
    builder
        .service(
            "billing",
            Billing {
                after: Duration::from_secs(1),
                starts: starts.clone(),
            },
        )
        .unwrap()
        .policy(FailurePolicy::Ignore);
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());

    tokio::time::sleep(Duration::from_secs(2)).await;
    let faulted_at = match state_of(&handle.status(), "billing") {
        ServiceState::Faulted { at, .. } => at,
        other => panic!("expected Faulted, got {other:?}"),
    };
    let beats_then = beats.load(Ordering::SeqCst);

    tokio::time::sleep(Duration::from_secs(60)).await;
    let status = handle.status();
    match state_of(&status, "billing") {
        ServiceState::Faulted { at, .. } => assert_eq!(at, faulted_at, "still the same fault"),
        other => panic!("expected Faulted, got {other:?}"),
    }
    assert_eq!(status.service("billing").unwrap().restarts, 0);
    assert_eq!(starts.load(Ordering::SeqCst), 1);
    assert!(!status.live);
    assert!(state_of(&status, "heartbeat").is_running());
    assert!(state_of(&status, "idle").is_running());
    assert!(beats.load(Ordering::SeqCst) >= beats_then + 500);
    assert!(!run.is_finished(), "the host goes on");

    handle.shutdown();
    assert_eq!(run.await.unwrap().code(), 4, "it ended faulted");
    let status = handle.status();
    assert!(
        state_of(&status, "billing").is_faulted(),
        "still faulted after shutdown"
    );
    assert_eq!(state_of(&status, "heartbeat"), ServiceState::Stopped);
}

/// Fails once with a plain `Err` in init: init failures are failures too.
struct BadInit;

impl Service for BadInit {
    async fn init(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        Err(chained_error().into())
    }
    async fn run(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn failing_init_is_logged_with_its_chain_and_faults_the_service() {
    let (logs, _guard) = capture_logs();
    let mut builder = builder();
    builder
        .service("ledger", BadInit)
        .unwrap()
        .policy(FailurePolicy::Ignore);
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    let status = wait_for(&handle, Duration::from_secs(10), "ledger faulted", |s| {
        s.service("ledger").unwrap().state.is_faulted()
    })
    .await;
    let ServiceState::Faulted { error, .. } = state_of(&status, "ledger") else {
        unreachable!()
    };
    assert_eq!(error, format!("init failed: {}", CHAIN.join(": ")));
    let line = logs
        .error_for("ledger", &["init failed"])
        .unwrap_or_else(|| panic!("no ERROR line for ledger:\n{}", logs.text()));
    for part in CHAIN {
        assert!(line.contains(part), "log line lacks `{part}`: {line}");
    }
    handle.shutdown();
    run.await.unwrap();
}
