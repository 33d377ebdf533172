//! Failure 3, the watchdog's per-child poll marks: a block left over from an
//! earlier start's child is not an init overrun, and a child spawned from a
//! detached task holding a context clone is still named as its service.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use steward_core::{BoxError, Context, FailurePolicy, Host, RestartPolicy, Service};

/// Start 1: its `run` starts a child that blocks its runtime thread for
/// 2.5 s (the mistake the watchdog exists for), then fails at 0.2 s. Start 2
/// (after a 0.3 s backoff, at 0.5 s): an honest async init of 0.8 s, within
/// its 1 s init timeout.
struct BlockingChildThenRestart {
    starts: Arc<AtomicUsize>,
    inits: Arc<AtomicUsize>,
}

impl Service for BlockingChildThenRestart {
    async fn init(&mut self, ctx: &Context) -> Result<(), BoxError> {
        if self.starts.load(Ordering::SeqCst) == 1 {
            ctx.sleep(Duration::from_millis(800)).await?;
        }
        self.inits.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        if self.starts.fetch_add(1, Ordering::SeqCst) == 0 {
            ctx.spawn(|_token| async move {
                std::thread::sleep(Duration::from_millis(2500));
                Ok(())
            });
            // Fails 0.2 s later (woken on the other worker thread).
            ctx.sleep(Duration::from_millis(200)).await?;
            return Err("first start fails".into());
        }
        ctx.cancelled().await;
        Ok(())
    }
}

/// Guarantee (§3): an `init` that blocks its thread past its `init_timeout`
/// is reported, and only then: the init check reads the service's own poll,
/// not its children's, so a child of the previous start still blocking does
/// not make an init of 0.8 s within a 1 s timeout look overrun (it did).
#[test]

fn old_child_block_is_not_reported_as_an_init_timeout() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut b = Host::builder();
        b.handle_signals(false)
            .panic_hook(false)
            .shutdown_timeout(Duration::from_secs(10));
        b.blocked_after(Duration::from_millis(200)).unwrap();
        let starts = Arc::new(AtomicUsize::new(0));
        let inits = Arc::new(AtomicUsize::new(0));
        b.service(
            "svc",
            BlockingChildThenRestart {
                starts: starts.clone(),
                inits: inits.clone(),
            },
        )
        .unwrap()
        .init_timeout(Duration::from_secs(1))
        .policy(FailurePolicy::Restart(RestartPolicy {
            initial_backoff: Duration::from_millis(300),
            jitter: 0.0,
            ..RestartPolicy::default()
        }));
        let host = b.build().unwrap();
        let handle = host.handle();
        let run = tokio::spawn(host.run());
        let mut messages = Vec::new();
        let t0 = std::time::Instant::now();
        while t0.elapsed() < Duration::from_secs(3) {
            if let Some(blocked) = handle.status().service("svc").unwrap().blocked.clone() {
                if !messages.contains(&blocked.message) {
                    messages.push(blocked.message);
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        handle.shutdown();
        let status = run.await.unwrap();
        assert_eq!(
            inits.load(Ordering::SeqCst),
            2,
            "both inits finished; starts {} messages {messages:?} exit {status}",
            starts.load(Ordering::SeqCst)
        );
        assert!(
            messages.iter().all(|m| !m.contains("init did not finish")),
            "the watchdog blamed an init that finished in 0.8 s: {messages:?}; exit {status}"
        );
    });
}

/// `ctx.spawn` called from outside the service's own task (a detached
/// `tokio::spawn` holding a context clone, or a callback): the child runs as
/// the service its `Context` names, so a block in it is named (it was not,
/// when the service came from the spawning task).
struct SpawnsFromDetachedTask;

impl Service for SpawnsFromDetachedTask {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let c = ctx.clone();
        tokio::spawn(async move {
            c.spawn(|_token| async move {
                std::thread::sleep(Duration::from_millis(1500));
                Ok(())
            });
        })
        .await?;
        ctx.cancelled().await;
        Ok(())
    }
}

#[test]

fn blocking_child_spawned_from_a_detached_task_is_named() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut b = Host::builder();
        b.handle_signals(false)
            .panic_hook(false)
            .shutdown_timeout(Duration::from_secs(10));
        b.blocked_after(Duration::from_millis(200)).unwrap();
        b.service("svc", SpawnsFromDetachedTask).unwrap();
        let host = b.build().unwrap();
        let handle = host.handle();
        let run = tokio::spawn(host.run());
        let mut seen = false;
        let t0 = std::time::Instant::now();
        while t0.elapsed() < Duration::from_millis(1400) {
            seen |= handle.status().service("svc").unwrap().blocked.is_some();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        handle.shutdown();
        let _ = run.await.unwrap();
        assert!(
            seen,
            "a 1.5 s block in a ctx.spawn child was never reported"
        );
    });
}
