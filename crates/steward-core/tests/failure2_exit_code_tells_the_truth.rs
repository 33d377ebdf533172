//! Failure 2, silent death, seen from outside the process: the exit code and
//! the final summary. Only a run in which every service stopped cleanly is
//! `Clean` (exit 0); every other ending maps to a documented non-zero code,
//! and the summary names every failure, a later timeout included.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Idle, Journal, capture_logs, state_of, wait_for};
use steward_core::{
    BoxError, Context, ExitStatus, FailureKind, FailurePolicy, Host, HostBuilder, RestartPolicy,
    Service, ServiceState,
};

fn builder() -> HostBuilder {
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .shutdown_timeout(Duration::from_secs(5));
    builder
}

/// Fails once its run starts.
struct Broken;

impl Service for Broken {
    async fn run(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        Err("upstream refused the connection".into())
    }
}

/// Runs the host until every service is running (or settled), then stops it.
async fn run_briefly(builder: HostBuilder) -> (ExitStatus, steward_core::HostHandle) {
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    tokio::time::sleep(Duration::from_secs(2)).await;
    handle.shutdown();
    (run.await.unwrap(), handle)
}

fn kinds(exit: &ExitStatus) -> Vec<(String, FailureKind)> {
    exit.failures()
        .iter()
        .map(|f| (f.name.clone(), f.kind))
        .collect()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_clean_run_exits_zero_with_no_failures() {
    let (_logs, _guard) = capture_logs();
    let mut builder = builder();
    builder.service("idle", Idle).unwrap();
    let (exit, _) = run_briefly(builder).await;
    assert_eq!(exit, ExitStatus::Clean);
    assert_eq!(exit.code(), 0);
    assert!(exit.failures().is_empty());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_service_left_faulted_under_ignore_is_a_non_zero_exit_naming_it() {
    let (_logs, _guard) = capture_logs();
    let mut builder = builder();
    builder.service("idle", Idle).unwrap();
    builder
        .service("billing", Broken)
        .unwrap()
        .policy(FailurePolicy::Ignore);
    let (exit, _) = run_briefly(builder).await;
    assert_eq!(exit.code(), 4, "{exit:?}");
    assert_eq!(
        kinds(&exit),
        [("billing".to_string(), FailureKind::Faulted)]
    );
    assert!(
        exit.to_string().contains("upstream refused the connection"),
        "{exit}"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_service_out_of_restarts_is_a_non_zero_exit_naming_it() {
    let (_logs, _guard) = capture_logs();
    let mut builder = builder();
    builder
        .service("billing", Broken)
        .unwrap()
        .policy(FailurePolicy::Restart(RestartPolicy {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
            max_restarts: 2,
            ..RestartPolicy::default()
        }));
    let (exit, handle) = run_briefly(builder).await;
    assert_eq!(exit.code(), 4, "{exit:?}");
    assert_eq!(
        kinds(&exit),
        [("billing".to_string(), FailureKind::RestartsExhausted)]
    );
    assert_eq!(handle.status().service("billing").unwrap().restarts, 2);
}

/// Its checkpoint cannot be written at stop.
struct LostCheckpoint;

impl Service for LostCheckpoint {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
    async fn on_stop(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        Err("checkpoint file is read-only".into())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_failed_stop_hook_is_a_non_zero_exit_naming_it() {
    let (_logs, _guard) = capture_logs();
    let mut builder = builder();
    builder.service("exporter", LostCheckpoint).unwrap();
    let (exit, _) = run_briefly(builder).await;
    assert_eq!(exit.code(), 5, "{exit:?}");
    assert_eq!(
        kinds(&exit),
        [("exporter".to_string(), FailureKind::StopFailed)]
    );
    assert!(exit.to_string().contains("read-only"), "{exit}");
}

/// Fails while draining, after it was asked to stop.
struct FailsItsDrain;

impl Service for FailsItsDrain {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Err("flush of 12 buffered rows failed".into())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_failed_drain_during_shutdown_is_a_non_zero_exit_naming_it() {
    let (_logs, _guard) = capture_logs();
    let mut builder = builder();
    builder.service("writer", FailsItsDrain).unwrap();
    let (exit, _) = run_briefly(builder).await;
    assert_eq!(exit.code(), 5, "{exit:?}");
    assert_eq!(
        kinds(&exit),
        [("writer".to_string(), FailureKind::DrainFailed)]
    );
}

/// Panics when the host drops it.
struct PanicsInDrop;

impl Drop for PanicsInDrop {
    fn drop(&mut self) {
        panic!("flushing on drop failed");
    }
}

impl Service for PanicsInDrop {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_panic_in_drop_is_a_non_zero_exit_naming_it() {
    let (logs, _guard) = capture_logs();
    let mut builder = builder();
    builder.service("buffer", PanicsInDrop).unwrap();
    builder.service("idle", Idle).unwrap();
    let (exit, handle) = run_briefly(builder).await;
    assert_eq!(exit.code(), 5, "{exit:?}");
    assert_eq!(
        kinds(&exit),
        [("buffer".to_string(), FailureKind::DropPanicked)]
    );
    assert!(
        exit.to_string().contains("flushing on drop failed"),
        "{exit}"
    );
    assert_eq!(state_of(&handle.status(), "idle"), ServiceState::Stopped);
    assert!(
        logs.error_for("buffer", &["flushing on drop failed"])
            .is_some(),
        "{}",
        logs.text()
    );
}

/// Fails after `after`, stopping the host.
struct FailsLater {
    after: Duration,
}

impl Service for FailsLater {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.sleep(self.after).await?;
        Err("ledger is corrupt".into())
    }
}

/// Ignores cancellation until `hold` has passed.
struct Stubborn {
    hold: Duration,
}

impl Service for Stubborn {
    async fn run(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        tokio::time::sleep(self.hold).await;
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_later_shutdown_timeout_is_not_hidden_by_the_failure_that_stopped_the_host() {
    let (_logs, _guard) = capture_logs();
    let mut builder = builder();
    builder
        .service(
            "stubborn",
            Stubborn {
                hold: Duration::from_secs(3600),
            },
        )
        .unwrap();
    builder
        .service(
            "billing",
            FailsLater {
                after: Duration::from_secs(1),
            },
        )
        .unwrap()
        .policy(FailurePolicy::StopHost);
    let exit = builder.build().unwrap().run().await;
    assert_eq!(exit.code(), 2, "the timeout wins the code: {exit:?}");
    assert!(
        matches!(&exit, ExitStatus::ShutdownTimedOut { services, .. } if services == &["stubborn"]),
        "{exit:?}"
    );
    assert_eq!(
        kinds(&exit),
        [
            ("billing".to_string(), FailureKind::StoppedHost),
            ("stubborn".to_string(), FailureKind::TimedOut)
        ]
    );
    let summary = exit.to_string();
    assert!(summary.contains("ledger is corrupt"), "{summary}");
    assert!(summary.contains("stubborn"), "{summary}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_final_log_line_names_every_failure() {
    let (logs, _guard) = capture_logs();
    let mut builder = builder();
    builder
        .service("billing", Broken)
        .unwrap()
        .policy(FailurePolicy::Ignore);
    builder.service("exporter", LostCheckpoint).unwrap();
    let (exit, _) = run_briefly(builder).await;
    assert_eq!(exit.failures().len(), 2, "{exit:?}");
    let last = logs
        .errors()
        .into_iter()
        .rev()
        .find(|l| l.contains("host stopped"))
        .unwrap_or_else(|| panic!("no final ERROR line:\n{}", logs.text()));
    for needle in ["billing", "exporter", "code=5"] {
        assert!(last.contains(needle), "final line lacks {needle}: {last}");
    }
}

/// Counts its stop hooks.
struct Checkpointer {
    hooks: Arc<AtomicUsize>,
    journal: Journal,
}

impl Service for Checkpointer {
    async fn run(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        Err("disk unplugged".into())
    }
    async fn on_stop(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        self.hooks.fetch_add(1, Ordering::SeqCst);
        self.journal.push("checkpoint written");
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_faulted_service_whose_init_finished_still_gets_its_stop_hook() {
    let (_logs, _guard) = capture_logs();
    let hooks = Arc::new(AtomicUsize::new(0));
    let mut builder = builder();
    builder
        .service(
            "importer",
            Checkpointer {
                hooks: hooks.clone(),
                journal: Journal::default(),
            },
        )
        .unwrap()
        .policy(FailurePolicy::Ignore);
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "faulted", |s| !s.live).await;
    assert_eq!(hooks.load(Ordering::SeqCst), 0, "not before shutdown");
    handle.shutdown();
    let exit = run.await.unwrap();
    assert_eq!(hooks.load(Ordering::SeqCst), 1, "once, at shutdown");
    assert!(state_of(&handle.status(), "importer").is_faulted());
    assert_eq!(exit.code(), 4);
}
