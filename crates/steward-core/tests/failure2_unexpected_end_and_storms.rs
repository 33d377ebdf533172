//! Failure 2, silent death, in two quieter forms: a long-running service
//! whose `run` simply returns (its stream ended) while the host is not
//! shutting down, and a restart storm that floods the logs.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Idle, capture_logs, state_of, wait_for};
use steward_core::{
    BoxError, ConfigError, Context, ExitStatus, FailureKind, FailurePolicy, Host, HostBuilder,
    RestartPolicy, Service, ServiceState,
};

fn builder() -> HostBuilder {
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .shutdown_timeout(Duration::from_secs(5));
    builder
}

/// Consumes a stream that ends after a while: `run` returns `Ok(())`
/// although nobody asked it to stop.
struct StreamEnds {
    starts: Arc<AtomicUsize>,
}

impl Service for StreamEnds {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        ctx.sleep(Duration::from_millis(500)).await?;
        Ok(()) // the stream ended
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_service_that_returns_by_itself_is_a_failure_under_its_policy() {
    let (logs, _guard) = capture_logs();
    let starts = Arc::new(AtomicUsize::new(0));
    let mut builder = builder();
    builder.service("idle", Idle).unwrap();
    builder
        .service(
            "events",
            StreamEnds {
                starts: starts.clone(),
            },
        )
        .unwrap()
        .policy(FailurePolicy::Restart(RestartPolicy {
            initial_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(10),
            jitter: 0.0,
            ..RestartPolicy::default()
        }));
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());

    let status = wait_for(&handle, Duration::from_secs(5), "events restarting", |s| {
        matches!(state_of(s, "events"), ServiceState::Restarting { .. })
    })
    .await;
    let events = status.service("events").unwrap();
    let error = &events.last_error.as_ref().expect("recorded").message;
    assert!(error.contains("ended by itself"), "{error}");
    assert!(!status.ready, "not ready while it is down");
    let line = logs
        .error_for("events", &["ended by itself"])
        .unwrap_or_else(|| panic!("no ERROR line for events:\n{}", logs.text()));
    assert!(
        line.contains("may_finish"),
        "the line says how to allow it: {line}"
    );

    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(starts.load(Ordering::SeqCst), 2, "restarted by its policy");
    handle.shutdown();
    run.await.unwrap();
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_service_that_returns_by_itself_under_ignore_is_unhealthy_and_a_failed_exit() {
    // Every test here captures its logs: a thread without a subscriber that
    // reaches a log call first can race another thread's capture.
    let (_logs, _guard) = capture_logs();
    let mut builder = builder();
    builder.service("idle", Idle).unwrap();
    builder
        .service(
            "events",
            StreamEnds {
                starts: Arc::default(),
            },
        )
        .unwrap()
        .policy(FailurePolicy::Ignore);
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    let status = wait_for(&handle, Duration::from_secs(5), "events faulted", |s| {
        state_of(s, "events").is_faulted()
    })
    .await;
    assert!(!status.live, "/healthz must not say 200");
    handle.shutdown();
    let exit = run.await.unwrap();
    assert_ne!(exit.code(), 0);
    assert_eq!(exit.failures()[0].kind, FailureKind::Faulted);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_service_that_may_finish_ends_cleanly_by_itself() {
    let (_logs, _guard) = capture_logs();
    let mut builder = builder();
    builder.service("idle", Idle).unwrap();
    builder
        .service(
            "migrate",
            StreamEnds {
                starts: Arc::default(),
            },
        )
        .unwrap()
        .may_finish();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    let status = wait_for(&handle, Duration::from_secs(5), "migrate stopped", |s| {
        state_of(s, "migrate") == ServiceState::Stopped
    })
    .await;
    assert!(status.live && status.ready, "{status:#?}");
    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
}

#[test]
fn zero_backoff_restart_policies_are_refused() {
    let mut builder = builder();
    builder
        .service("storm", Idle)
        .unwrap()
        .policy(FailurePolicy::Restart(RestartPolicy {
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
            max_restarts: u32::MAX,
            ..RestartPolicy::default()
        }));
    let err = builder.build().unwrap_err();
    assert!(matches!(err, ConfigError::Invalid { .. }), "{err:?}");
    assert!(err.to_string().contains("initial_backoff"), "{err}");
}

/// Fails at once, the same way, every time.
struct AlwaysFails {
    starts: Arc<AtomicUsize>,
}

impl Service for AlwaysFails {
    async fn run(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        Err("database is read-only".into())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn identical_failure_lines_are_rate_limited_with_a_count() {
    let (logs, _guard) = capture_logs();
    let starts = Arc::new(AtomicUsize::new(0));
    let mut builder = builder();
    builder
        .service(
            "storm",
            AlwaysFails {
                starts: starts.clone(),
            },
        )
        .unwrap()
        .policy(FailurePolicy::Restart(RestartPolicy {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
            jitter: 0.0,
            max_restarts: u32::MAX,
            ..RestartPolicy::default()
        }));
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    tokio::time::sleep(Duration::from_secs(60)).await;
    handle.shutdown();
    run.await.unwrap();

    let failures = starts.load(Ordering::SeqCst);
    assert!(failures > 1000, "it kept failing: {failures}");
    let lines = logs
        .errors()
        .into_iter()
        .filter(|l| l.contains("database is read-only"))
        .collect::<Vec<_>>();
    assert!(
        lines.len() <= 20,
        "{} ERROR lines for {failures} identical failures",
        lines.len()
    );
    assert!(
        lines.iter().any(|l| l.contains("repeated=")),
        "a line counts the repeats: {lines:#?}"
    );
    let warnings = logs
        .text()
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("restarting"))
        .count();
    assert!(warnings <= 20, "{warnings} restart lines");
}
