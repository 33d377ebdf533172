//! Failure 6: unbounded, orphaned parallelism.
//!
//! A `TaskGroup` (and `for_each_concurrent`) runs at most `limit` children at
//! once; a child's error or panic reaches the parent; children are cancelled
//! with their service and none outlives the host's shutdown; and blocking
//! work is bounded by the host's blocking limit.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Journal, SetOnDrop, capture_logs, in_service, state_of, wait_for};
use steward_core::{
    BoxError, Context, ExitStatus, Host, HostBuilder, Service, ServiceState, TaskError,
};

/// Tracks how many children run at once, and the most ever seen.
#[derive(Clone, Default)]
struct InFlight {
    now: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
}

impl InFlight {
    fn enter(&self) -> InFlightGuard {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        InFlightGuard(self.clone())
    }
    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
    fn done(&self) -> usize {
        self.done.load(Ordering::SeqCst)
    }
}

struct InFlightGuard(InFlight);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
        self.0.done.fetch_add(1, Ordering::SeqCst);
    }
}

fn builder() -> HostBuilder {
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .shutdown_timeout(Duration::from_secs(30));
    builder
}

#[tokio::test(start_paused = true)]
async fn task_group_never_runs_more_children_than_its_limit() {
    let in_flight = InFlight::default();
    let counted = in_flight.clone();
    in_service("resize", |ctx| async move {
        let mut group = ctx.task_group(3)?;
        for i in 0..20u64 {
            let in_flight = counted.clone();
            group
                .spawn(move |_token| async move {
                    let _guard = in_flight.enter();
                    tokio::time::sleep(Duration::from_millis(10 + i % 7)).await;
                    Ok(())
                })
                .await?;
        }
        group.join().await
    })
    .await
    .unwrap();
    assert_eq!(in_flight.done(), 20);
    assert_eq!(in_flight.max(), 3, "at most 3 at once, and 3 were used");
}

#[tokio::test(start_paused = true)]
async fn for_each_concurrent_never_runs_more_than_its_limit() {
    let in_flight = InFlight::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (counted, recorded) = (in_flight.clone(), seen.clone());
    in_service("resize", |ctx| async move {
        ctx.for_each_concurrent(0..50u64, 4, |n, _token| {
            let in_flight = counted.clone();
            let seen = recorded.clone();
            async move {
                let _guard = in_flight.enter();
                tokio::time::sleep(Duration::from_millis(5 + n % 3)).await;
                seen.lock().unwrap().push(n);
                Ok(())
            }
        })
        .await
    })
    .await
    .unwrap();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..50).collect::<Vec<_>>(),
        "every item processed once"
    );
    assert_eq!(in_flight.max(), 4);
}

#[tokio::test(start_paused = true)]
async fn child_error_reaches_the_parent_through_join() {
    let joined = in_service("import", |ctx| async move {
        let mut group = ctx.task_group(2)?;
        group.spawn(|_| async { Ok(()) }).await?;
        group
            .spawn(|_| async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Err::<(), BoxError>("row 17: invalid date".into())
            })
            .await?;
        group.join().await
    })
    .await;
    match joined {
        Err(TaskError::Failed { source }) => assert_eq!(source.to_string(), "row 17: invalid date"),
        other => panic!("expected the child's error, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn child_panic_reaches_the_parent_through_join() {
    let joined = in_service("import", |ctx| async move {
        let mut group = ctx.task_group(2)?;
        group
            .spawn(|_| async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                panic!("attempt to divide by zero");
            })
            .await?;
        group
            .spawn(|_| async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(())
            })
            .await?;
        group.join().await
    })
    .await;
    match joined {
        Err(TaskError::Panicked { message }) => assert_eq!(message, "attempt to divide by zero"),
        other => panic!("expected the child's panic, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn spawn_refuses_new_children_once_a_child_failed() {
    let spawned = Arc::new(AtomicUsize::new(0));
    let s = spawned.clone();
    let refused = in_service("import", |ctx| async move {
        let mut group = ctx.task_group(4)?;
        group
            .spawn(|_| async { Err::<(), BoxError>("disk full".into()) })
            .await?;
        tokio::time::sleep(Duration::from_millis(1)).await; // the child has ended
        group
            .spawn(move |_| {
                s.fetch_add(1, Ordering::SeqCst);
                async { Ok(()) }
            })
            .await
    })
    .await;
    match refused {
        Err(TaskError::Failed { source }) => assert_eq!(source.to_string(), "disk full"),
        other => panic!("spawn must report the earlier failure, got {other:?}"),
    }
    assert_eq!(spawned.load(Ordering::SeqCst), 0, "nothing new was started");
}

#[tokio::test(start_paused = true)]
async fn for_each_concurrent_stops_taking_items_after_a_failure_and_returns_it() {
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let result = in_service("import", |ctx| async move {
        ctx.for_each_concurrent(0..1000u64, 2, move |n, _token| {
            s.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                if n == 5 {
                    panic!("item {n} is corrupt");
                }
                Ok(())
            }
        })
        .await
    })
    .await;
    match result {
        Err(TaskError::Panicked { message }) => assert_eq!(message, "item 5 is corrupt"),
        other => panic!("expected the panic of item 5, got {other:?}"),
    }
    assert!(
        started.load(Ordering::SeqCst) < 20,
        "stopped taking items soon after the failure: {}",
        started.load(Ordering::SeqCst)
    );
}

#[tokio::test(start_paused = true)]
async fn task_group_children_log_inside_the_service_span() {
    let (logs, _guard) = capture_logs();
    in_service("resizer", |ctx| async move {
        let mut group = ctx.task_group(2)?;
        group
            .spawn(|_| async {
                tracing::warn!("image 7 is larger than expected");
                Ok(())
            })
            .await?;
        group.join().await
    })
    .await
    .unwrap();
    let line = logs
        .text()
        .lines()
        .find(|l| l.contains("image 7 is larger than expected"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("the child's line is missing: {}", logs.text()));
    assert!(line.contains("service{name=resizer}"), "{line}");
}

#[tokio::test(start_paused = true)]
async fn dropped_group_logs_its_children_errors_and_how_many_it_aborted() {
    let (logs, _guard) = capture_logs();
    in_service("importer", |ctx| async move {
        let mut group = ctx.task_group(4)?;
        group
            .spawn(|_| async { Err::<(), BoxError>("row 3: bad checksum".into()) })
            .await?;
        group
            .spawn(|_| async { panic!("row 9: out of range") })
            .await?;
        for _ in 0..2 {
            group
                .spawn(|_| std::future::pending::<Result<(), BoxError>>())
                .await?;
        }
        tokio::time::sleep(Duration::from_millis(10)).await; // two have ended
        drop(group); // without join
        Ok::<(), TaskError>(())
    })
    .await
    .unwrap();
    for needle in ["row 3: bad checksum", "row 9: out of range"] {
        let line = logs
            .errors()
            .into_iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("`{needle}` must be logged: {}", logs.text()));
        assert!(line.contains("service{name=importer}"), "{line}");
    }
    let warn = logs
        .text()
        .lines()
        .find(|l| l.contains(" WARN ") && l.contains("aborted"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("a WARN for the aborted children: {}", logs.text()));
    assert!(warn.contains("service{name=importer}"), "{warn}");
    assert!(warn.contains("running=2"), "{warn}");
}

/// Starts `children` children that run until cancelled, then spend a while
/// cleaning up (not cancel-aware: it must be awaited, not cut off).
struct FanOut {
    children: usize,
    ended: Arc<AtomicUsize>,
    join: bool,
    journal: Journal,
}

impl Service for FanOut {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let mut group = ctx.task_group(self.children)?;
        for _ in 0..self.children {
            let ended = self.ended.clone();
            let join = self.join;
            group
                .spawn(move |token| async move {
                    // A child aborted mid-way cleans up in its destructor;
                    // that takes a moment, and must still end before the host.
                    let linger = if join {
                        Duration::ZERO
                    } else {
                        Duration::from_millis(20)
                    };
                    let _ended = SetOnDrop(ended, linger);
                    if join {
                        token.cancelled().await;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    } else {
                        // Ignores its token: only an abort ends it.
                        std::future::pending::<()>().await;
                    }
                    Ok(())
                })
                .await?;
        }
        ctx.cancelled().await;
        if self.join {
            group.join().await?;
            self.journal.push("children joined");
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn children_are_cancelled_and_awaited_at_shutdown() {
    let ended = Arc::new(AtomicUsize::new(0));
    let journal = Journal::default();
    let mut builder = builder();
    builder
        .service(
            "fan-out",
            FanOut {
                children: 5,
                ended: ended.clone(),
                join: true,
                journal: journal.clone(),
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "running", |s| {
        s.services[0].state.is_running()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(ended.load(Ordering::SeqCst), 0);
    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
    assert_eq!(ended.load(Ordering::SeqCst), 5, "every child ended first");
    assert_eq!(journal.events(), ["children joined"]);
    assert_eq!(state_of(&handle.status(), "fan-out"), ServiceState::Stopped);
}

async fn no_child_outlives_a_service_that_drops_its_group() {
    let ended = Arc::new(AtomicUsize::new(0));
    let mut builder = builder();
    builder
        .service(
            "fan-out",
            FanOut {
                children: 8,
                ended: ended.clone(),
                join: false,
                journal: Journal::default(),
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "running", |s| {
        s.services[0].state.is_running()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ended.load(Ordering::SeqCst), 0);
    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
    assert_eq!(
        ended.load(Ordering::SeqCst),
        8,
        "every child must have ended when Host::run returns"
    );
}

#[tokio::test(start_paused = true)]
async fn no_child_outlives_a_service_that_drops_its_group_current_thread() {
    no_child_outlives_a_service_that_drops_its_group().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_child_outlives_a_service_that_drops_its_group_multi_thread() {
    no_child_outlives_a_service_that_drops_its_group().await;
}

/// Runs `calls` blocking calls at once through `ctx.spawn_blocking`.
struct Crunch {
    calls: usize,
    in_flight: InFlight,
}

impl Service for Crunch {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let calls = (0..self.calls).map(|i| {
            let in_flight = self.in_flight.clone();
            ctx.spawn_blocking(move || {
                let _guard = in_flight.enter();
                std::thread::sleep(Duration::from_millis(20));
                i * 2
            })
        });
        let results = futures::future::join_all(calls).await;
        let doubled: Vec<usize> = results.into_iter().collect::<Result<_, _>>()?;
        assert_eq!(doubled, (0..self.calls).map(|i| i * 2).collect::<Vec<_>>());
        ctx.cancelled().await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_blocking_is_bounded_by_the_blocking_limit() {
    let in_flight = InFlight::default();
    let mut builder = builder();
    builder.blocking_limit(2).unwrap();
    builder
        .service(
            "crunch",
            Crunch {
                calls: 12,
                in_flight: in_flight.clone(),
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(60), "all calls done", |_| {
        in_flight.done() == 12
    })
    .await;
    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
    assert!(
        in_flight.max() <= 2,
        "at most 2 blocking calls at once, saw {}",
        in_flight.max()
    );
}

/// Panics in a blocking call and reports what came back.
struct BlockingPanic {
    journal: Journal,
}

impl Service for BlockingPanic {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let result = ctx
            .spawn_blocking(|| -> u32 { panic!("checksum mismatch") })
            .await;
        self.journal.push(format!("{result:?}"));
        ctx.cancelled().await;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_blocking_panic_comes_back_to_the_caller() {
    let journal = Journal::default();
    let mut builder = builder();
    builder
        .service(
            "blocking",
            BlockingPanic {
                journal: journal.clone(),
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    let j = journal.clone();
    wait_for(
        &handle,
        Duration::from_secs(60),
        "the call returned",
        move |_| !j.events().is_empty(),
    )
    .await;
    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
    assert_eq!(
        journal.events(),
        [format!(
            "{:?}",
            Err::<u32, _>(TaskError::Panicked {
                message: "checksum mismatch".into()
            })
        )]
    );
}
