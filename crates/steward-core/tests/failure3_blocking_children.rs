//! Failure 3: a service's child task (a `ctx.spawn` child, a task-group
//! child) that blocks its runtime thread is named as its service, like a
//! block in the service's own `run`.

mod common;

use std::time::{Duration, Instant};

use steward_core::{BoxError, Context, Host, Service};

/// The service's own loop is fine; the listener it spawned beside it with
/// `ctx.spawn` blocks its runtime thread (a sync DNS lookup, a
/// `std::sync::Mutex` held across a slow call...).
struct BlockingChild;

impl Service for BlockingChild {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.spawn(|token| async move {
            std::thread::sleep(Duration::from_millis(3000));
            token.cancelled().await;
            Ok(())
        });
        ctx.cancelled().await;
        Ok(())
    }
}

/// Same with a task-group child.
struct BlockingGroupChild;

impl Service for BlockingGroupChild {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let mut group = ctx.task_group(2)?;
        group
            .spawn(|token| async move {
                std::thread::sleep(Duration::from_millis(3000));
                token.cancelled().await;
                Ok(())
            })
            .await?;
        ctx.cancelled().await;
        group.join().await?;
        Ok(())
    }
}

async fn blocked_is_reported<S: Service>(service: S) {
    let mut b = Host::builder();
    b.handle_signals(false)
        .panic_hook(false)
        .shutdown_timeout(Duration::from_secs(5));
    b.service("svc", service).unwrap();
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    let started = Instant::now();
    let mut seen = false;
    // The child blocks for 3 s; the default threshold is 1 s.
    while started.elapsed() < Duration::from_millis(2600) {
        let status = handle.status();
        if status.blocked().count() > 0 || !status.live {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = handle.status();
    handle.shutdown();
    let _ = run.await;
    assert!(
        seen,
        "a child blocked its runtime thread for > 2.5 s and the host never said so: {status:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_child_blocking_its_thread_is_reported() {
    blocked_is_reported(BlockingChild).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_group_child_blocking_its_thread_is_reported() {
    blocked_is_reported(BlockingGroupChild).await;
}

/// Control: the same block in the service's own `run` is reported, so the
/// harness above can see a report when there is one.
struct BlockingRun;

impl Service for BlockingRun {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(3000));
        ctx.cancelled().await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_blocking_in_run_is_reported() {
    blocked_is_reported(BlockingRun).await;
}
