//! Failure 6 while a service stops: a `ctx.spawn` child that fails or
//! panics during shutdown, or one spawned from `on_stop`, is a failure of the
//! run (exit 5); a child failing after its start ended does not fail the
//! next start; a grandchild of a task-group child still fails the service.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{capture_logs, wait_for};
use steward_core::{BoxError, Context, ExitStatus, FailureKind, Host, HostBuilder, Service};

fn builder() -> HostBuilder {
    let mut b = Host::builder();
    b.handle_signals(false)
        .panic_hook(false)
        .shutdown_timeout(Duration::from_secs(10));
    b
}

/// A writer child: on shutdown it flushes its buffer, and the flush fails.
/// The service's own loop just waits to be stopped.
struct FlushingChild {
    panic: bool,
}

impl Service for FlushingChild {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let panic = self.panic;
        ctx.spawn(move |token| async move {
            token.cancelled().await;
            // Flushing what was buffered...
            tokio::task::yield_now().await;
            if panic {
                panic!("flush panicked: buffer corrupted");
            }
            Err("flush failed: disk full, 120 buffered records lost".into())
        });
        ctx.cancelled().await;
        Ok(())
    }
}

/// Guarantee (§6, §7): a child whose drain fails after its service was asked
/// to stop is a failure of the run (`DrainFailed`, exit 5). It was only
/// logged: `run` had returned first, which ended the start.
#[tokio::test(flavor = "current_thread", start_paused = true)]

async fn child_failing_its_drain_at_shutdown_is_a_failure_of_the_run() {
    let (logs, _guard) = capture_logs();
    let mut b = builder();
    b.service("writer", FlushingChild { panic: false }).unwrap();
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(5), "running", |s| {
        s.services.iter().all(|s| s.state.is_running())
    })
    .await;
    handle.shutdown();
    let status = run.await.unwrap();
    assert!(
        logs.error_for("writer", &["disk full"]).is_some(),
        "the failure is at least logged"
    );
    assert_ne!(
        status,
        ExitStatus::Clean,
        "a child lost 120 records at shutdown, yet the run is clean"
    );
    assert!(
        status
            .failures()
            .iter()
            .any(|f| f.name == "writer" && f.message.contains("disk full")),
        "{status}"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]

async fn child_panicking_at_shutdown_is_a_failure_of_the_run() {
    let (_logs, _guard) = capture_logs();
    let mut b = builder();
    b.service("writer", FlushingChild { panic: true }).unwrap();
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(5), "running", |s| {
        s.services.iter().all(|s| s.state.is_running())
    })
    .await;
    handle.shutdown();
    let status = run.await.unwrap();
    assert_ne!(status, ExitStatus::Clean);
}

/// A child spawned from `on_stop` (an upload of the checkpoint in the
/// background) that fails is a failure of the run too (it was not recorded).
struct SpawnsInOnStop;

impl Service for SpawnsInOnStop {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
    async fn on_stop(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.spawn(|_token| async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Err("checkpoint upload failed".into())
        });
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]

async fn child_spawned_from_on_stop_failing_is_a_failure_of_the_run() {
    let (logs, _guard) = capture_logs();
    let mut b = builder();
    b.service("checkpointer", SpawnsInOnStop).unwrap();
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(5), "running", |s| {
        s.services.iter().all(|s| s.state.is_running())
    })
    .await;
    handle.shutdown();
    let status = run.await.unwrap();
    assert!(
        logs.error_for("checkpointer", &["checkpoint upload failed"])
            .is_some()
    );
    assert_ne!(status, ExitStatus::Clean, "{status}");
}

/// A child that fails after its start ended is recorded, and does not fail
/// the next start (what held up in round 1; checked again with restarts).
struct RestartsWithLateChild {
    starts: Arc<AtomicUsize>,
}

impl Service for RestartsWithLateChild {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let n = self.starts.fetch_add(1, Ordering::SeqCst);
        if n == 0 {
            // Ignores its token a while, then fails: after the start ended.
            ctx.spawn(|_token| async move {
                tokio::time::sleep(Duration::from_secs(2)).await;
                Err("late child failure".into())
            });
            return Err("first start fails".into());
        }
        ctx.cancelled().await;
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn late_child_failure_does_not_fail_the_next_start() {
    let (_logs, _guard) = capture_logs();
    let mut b = builder();
    let starts = Arc::new(AtomicUsize::new(0));
    b.service(
        "svc",
        RestartsWithLateChild {
            starts: starts.clone(),
        },
    )
    .unwrap();
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(starts.load(Ordering::SeqCst), 2);
    assert!(handle.status().service("svc").unwrap().state.is_running());
    handle.shutdown();
    let status = run.await.unwrap();
    assert_eq!(status, ExitStatus::Clean, "{status}");
}

/// `ctx.spawn` from a task-group child: roles and failures still belong to
/// the service.
struct SpawnFromGroupChild;

impl Service for SpawnFromGroupChild {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let mut group = ctx.task_group(2)?;
        let c = ctx.clone();
        group
            .spawn(move |_token| async move {
                c.spawn(|_t| async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err("grandchild failed".into())
                });
                Ok(())
            })
            .await?;
        group.join().await?;
        ctx.cancelled().await;
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn grandchild_spawned_from_a_group_child_fails_the_service() {
    let (_logs, _guard) = capture_logs();
    let mut b = builder();
    b.service("svc", SpawnFromGroupChild)
        .unwrap()
        .policy(steward_core::FailurePolicy::Ignore);
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(5), "faulted", |s| {
        s.service("svc").unwrap().state.is_faulted()
    })
    .await;
    handle.shutdown();
    let status = run.await.unwrap();
    assert!(
        status
            .failures()
            .iter()
            .any(|f| f.kind == FailureKind::Faulted && f.message.contains("grandchild failed")),
        "{status}"
    );
}
