//! Failure 6: `ctx.spawn`, the supervised replacement for a bare
//! `tokio::spawn`. A spawned child runs in its service's span, its error or
//! panic fails the service (so the failure policy applies), a failed run
//! cancels its children before the restart, and the host aborts the
//! children with their service at the shutdown timeout.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Journal, SetOnDrop, capture_logs, in_service, wait_for};
use steward_core::{BoxError, Context, ExitStatus, Host, HostBuilder, Service};

fn builder() -> HostBuilder {
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .shutdown_timeout(Duration::from_secs(30));
    builder
}

/// Runs `body` (a closure over its context) as a service's `run`.
struct Runs<F>(F);

impl<F, Fut> Service for Runs<F>
where
    F: FnMut(Context) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        (self.0)(ctx.clone()).await
    }
}

#[tokio::test(start_paused = true)]
async fn spawned_child_logs_inside_the_service_span() {
    let (logs, _guard) = capture_logs();
    in_service("mailer", |ctx| async move {
        ctx.spawn(|_token| async {
            tracing::warn!("smtp server greeted slowly");
            Ok(())
        });
    })
    .await;
    let line = logs
        .text()
        .lines()
        .find(|l| l.contains("smtp server greeted slowly"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("the child's line is missing: {}", logs.text()));
    assert!(line.contains("service{name=mailer}"), "{line}");
}

#[tokio::test(start_paused = true)]
async fn spawned_child_error_is_logged_and_fails_the_service() {
    let (logs, _guard) = capture_logs();
    let mut builder = builder();
    builder
        .service(
            "leases",
            Runs(|ctx: Context| async move {
                ctx.spawn(|_token| async {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    Err::<(), BoxError>("lost the lease".into())
                });
                ctx.cancelled().await;
                Ok(())
            }),
        )
        .unwrap()
        .policy(steward_core::FailurePolicy::StopHost);
    let host = builder.build().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), host.run())
        .await
        .expect("the child's failure must stop the host (policy StopHost)");
    assert!(
        matches!(&status, ExitStatus::ServiceFailed { service, error, .. }
            if service == "leases" && error == "child task failed: lost the lease"),
        "{status:?}"
    );
    let line = logs
        .errors()
        .into_iter()
        .find(|l| l.contains("lost the lease"))
        .unwrap_or_else(|| panic!("the child's error must be logged: {}", logs.text()));
    assert!(line.contains("service{name=leases}"), "{line}");
}

#[tokio::test(start_paused = true)]
async fn spawned_child_panic_fails_the_service_which_is_restarted() {
    let starts = Arc::new(AtomicUsize::new(0));
    let s = starts.clone();
    let mut builder = builder();
    builder
        .service(
            "indexer",
            Runs(move |ctx: Context| {
                let start = s.fetch_add(1, Ordering::SeqCst);
                async move {
                    if start == 0 {
                        ctx.spawn(|_token| async { panic!("shard 4 missing") });
                    }
                    ctx.cancelled().await;
                    Ok(())
                }
            }),
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    let status = wait_for(&handle, Duration::from_secs(60), "a restart", |_| {
        starts.load(Ordering::SeqCst) == 2
    })
    .await;
    let last_error = status.services[0].last_error.clone().expect("recorded");
    assert_eq!(
        last_error.message,
        "child task failed: panicked: shard 4 missing"
    );
    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
}

#[tokio::test(start_paused = true)]
async fn a_failed_run_cancels_its_spawned_children_before_the_restart() {
    let journal = Journal::default();
    let starts = Arc::new(AtomicUsize::new(0));
    let (j, s) = (journal.clone(), starts.clone());
    let mut builder = builder();
    builder
        .service(
            "sync",
            Runs(move |ctx: Context| {
                let start = s.fetch_add(1, Ordering::SeqCst);
                let j = j.clone();
                async move {
                    if start > 0 {
                        ctx.cancelled().await;
                        return Ok(());
                    }
                    ctx.spawn(move |token| async move {
                        token.cancelled().await;
                        j.push("child of the first run cancelled");
                        Ok(())
                    });
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    Err("upstream went away".into())
                }
            }),
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(60), "the restart", |_| {
        starts.load(Ordering::SeqCst) == 2
    })
    .await;
    let j = journal.clone();
    wait_for(
        &handle,
        Duration::from_secs(60),
        "the old child",
        move |_| !j.events().is_empty(),
    )
    .await;
    assert_eq!(journal.events(), ["child of the first run cancelled"]);
    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
}

#[tokio::test(start_paused = true)]
async fn spawned_children_are_cancelled_with_the_service_and_awaited() {
    let journal = Journal::default();
    let j = journal.clone();
    let mut builder = builder();
    builder
        .service(
            "uploader",
            Runs(move |ctx: Context| {
                let j = j.clone();
                async move {
                    ctx.spawn(move |token| async move {
                        token.cancelled().await;
                        tokio::time::sleep(Duration::from_millis(100)).await; // flushes
                        j.push("child flushed");
                        Ok(())
                    });
                    ctx.cancelled().await;
                    Ok(())
                }
            }),
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "running", |s| {
        s.services[0].state.is_running()
    })
    .await;
    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
    assert_eq!(
        journal.events(),
        ["child flushed"],
        "awaited before the end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_children_are_aborted_when_the_host_aborts_the_service() {
    let ended = Arc::new(AtomicUsize::new(0));
    let e = ended.clone();
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .shutdown_timeout(Duration::from_millis(300));
    builder
        .service(
            "orphan-maker",
            Runs(move |ctx: Context| {
                let ended = e.clone();
                async move {
                    // The child keeps a context clone, as real children do.
                    let held = ctx.clone();
                    ctx.spawn(move |_token| async move {
                        let _ctx = held;
                        let _ended = SetOnDrop(ended, Duration::ZERO);
                        std::future::pending::<Result<(), BoxError>>().await // ignores its token
                    });
                    ctx.cancelled().await;
                    Ok(())
                }
            }),
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "running", |s| {
        s.services[0].state.is_running()
    })
    .await;
    handle.shutdown();
    let exit = run.await.unwrap();
    assert!(
        matches!(&exit, ExitStatus::ShutdownTimedOut { services, .. } if services == &["orphan-maker"]),
        "a child ignoring its token keeps its service from stopping: {exit:?}"
    );
    // Aborting is asynchronous: give the runtime a (generous) moment.
    for _ in 0..1000 {
        if ended.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        ended.load(Ordering::SeqCst),
        1,
        "the child must be aborted with its service"
    );
}
