//! The children a service starts, through [`Context::spawn`] or its task
//! groups: who owns them, what happens when one fails, and how none outlives
//! the service (failure 6 in `docs/seven-failures.md`).
//!
//! - Every child runs in the service's span, so its own log lines name the
//!   service, and its error or panic is logged at ERROR there when it ends.
//! - A `spawn`ed child belongs to the current start of the service (its init
//!   and run): a failure fails that start (the supervisor waits on
//!   [`Children::failed`]), and when the run ends, however it ends, the
//!   start's children are cancelled. Task-group children report to their
//!   group instead; the group's owner decides.
//! - Every child is tracked: the supervisor waits for all of them before the
//!   service counts as stopped, and aborts the `spawn`ed ones if the host
//!   aborts the service (a child holding a [`Context`] clone would otherwise
//!   keep itself alive).
//!
//! [`Context`]: crate::Context
//! [`Context::spawn`]: crate::Context::spawn

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::error::panic_message;
use crate::sync::LockExt;
use crate::{BoxError, Cancelled, Context, TaskError};

/// A service's children, shared by every clone of its context.
///
/// Idle services are the common case (a host may run thousands), so the
/// parts only children need (a start's token, the set of `spawn`ed tasks)
/// are made on the first `spawn`, not with the context.
pub(crate) struct Children {
    tracker: TaskTracker,
    // Only for aborting: each child reports its own result.
    spawned: Mutex<Option<JoinSet<()>>>,
    starts: Mutex<Starts>,
    /// Woken when a `spawn`ed child of the current start fails.
    failed: Notify,
}

/// Which start (init + run) of the service is current, and its children's
/// shared state once one was `spawn`ed.
struct Starts {
    generation: u64,
    current: Option<Arc<Start>>,
}

/// One start of the service, as its `spawn`ed children see it.
struct Start {
    token: CancellationToken,
    /// `(ended, first failure)`.
    state: Mutex<(bool, Option<String>)>,
}

impl Start {
    /// Records the first failure; false if the start already ended, so that
    /// nobody is waiting for it any more.
    fn fail(&self, message: &str) -> bool {
        let mut state = self.state.lock_or_recover();
        if state.0 {
            return false;
        }
        state.1.get_or_insert_with(|| message.to_owned());
        true
    }

    fn end(&self) {
        self.state.lock_or_recover().0 = true;
        self.token.cancel();
    }
}

impl Children {
    pub(crate) fn new() -> Self {
        Children {
            tracker: TaskTracker::new(),
            spawned: Mutex::new(None),
            starts: Mutex::new(Starts {
                generation: 0,
                current: None,
            }),
            failed: Notify::new(),
        }
    }

    pub(crate) fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// Spawns a child of `ctx`'s service (whose children these are).
    pub(crate) fn spawn<F, Fut>(&self, ctx: &Context, child: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let start = self
            .starts
            .lock_or_recover()
            .current
            .get_or_insert_with(|| {
                Arc::new(Start {
                    token: ctx.token().child_token(),
                    state: Mutex::new((false, None)),
                })
            })
            .clone();
        let token = start.token.child_token();
        let fut = child(token.clone());
        let slot = ctx.slot().clone();
        // Weak: a child must not keep its service's context alive.
        let service = ctx.downgrade();
        let task = async move {
            let Err(err) = run_child(fut, &token, &slot.name).await else {
                return;
            };
            if is_stop(&token, &err) {
                return;
            }
            let message = err.to_string();
            let ctx = service.upgrade();
            if let Some(ctx) = ctx.as_ref().filter(|ctx| ctx.is_cancelled()) {
                // Asked to stop: there is no next start to protect, and the
                // work the child held is lost. A failure of the run.
                slot.record_error(format!("child task failed: {message}"));
                ctx.host().record_failure(
                    ctx.name(),
                    crate::FailureKind::DrainFailed,
                    format!("child task failed: {message}"),
                );
            } else if start.fail(&message) {
                if let Some(ctx) = ctx {
                    ctx.children().failed.notify_waiters();
                }
            } else {
                // Its start is over: nothing to fail, but the status shows it.
                slot.record_error(format!("child task failed: {message}"));
            }
        };
        let mut spawned = self.spawned.lock_or_recover();
        let spawned = spawned.get_or_insert_with(JoinSet::new);
        while spawned.try_join_next().is_some() {}
        spawned.spawn(self.tracker.track_future(
            crate::poll_mark::record_child(ctx.slot().clone(), task).instrument(ctx.span().clone()),
        ));
    }

    /// Completes with the first failure of a child of the current start.
    /// Dropping the future ends the start: its children are cancelled, and
    /// children spawned afterwards belong to the next one. The guard is
    /// built before the future is first polled, so a `select!` that finishes
    /// on its other branch at once still ends the start.
    pub(crate) fn failed(ctx: &Context) -> impl Future<Output = String> + Send + 'static {
        let generation = ctx.children().starts.lock_or_recover().generation;
        let end = EndStart {
            ctx: ctx.clone(),
            generation,
        };
        async move {
            let children = end.ctx.children();
            loop {
                let woken = children.failed.notified();
                tokio::pin!(woken);
                woken.as_mut().enable();
                if let Some(message) = children.failure_of(generation) {
                    return message;
                }
                woken.await;
            }
        }
    }

    /// The first failure of start `generation`, if it is still current.
    fn failure_of(&self, generation: u64) -> Option<String> {
        let starts = self.starts.lock_or_recover();
        if starts.generation != generation {
            return None;
        }
        let start = starts.current.as_ref()?;
        start.state.lock_or_recover().1.clone()
    }

    /// Waits for every child (spawned or in a task group) to end.
    pub(crate) async fn ended(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }

    fn abort_spawned(&self) {
        if let Some(start) = &self.starts.lock_or_recover().current {
            start.token.cancel();
        }
        if let Some(spawned) = self.spawned.lock_or_recover().as_mut() {
            spawned.abort_all();
        }
    }
}

struct EndStart {
    ctx: Context,
    generation: u64,
}

impl Drop for EndStart {
    fn drop(&mut self) {
        let mut starts = self.ctx.children().starts.lock_or_recover();
        if starts.generation == self.generation {
            starts.generation += 1;
            if let Some(start) = starts.current.take() {
                start.end();
            }
        }
    }
}

/// Aborts a service's `spawn`ed children when dropped; the supervisor holds
/// it for as long as the service's task lives.
pub(crate) struct AbortChildren(pub(crate) Context);

impl Drop for AbortChildren {
    fn drop(&mut self) {
        self.0.children().abort_spawned();
    }
}

/// Runs one child to its end, turning a panic into [`TaskError::Panicked`]
/// and logging any failure (in the caller's span) as it happens, so that a
/// failure is never lost with an unjoined handle.
pub(crate) async fn run_child(
    fut: impl Future<Output = Result<(), BoxError>>,
    token: &CancellationToken,
    service: &str,
) -> Result<(), TaskError> {
    let err = match AssertUnwindSafe(fut).catch_unwind().await {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(source)) => TaskError::Failed { source },
        Err(payload) => TaskError::Panicked {
            message: panic_message(payload.as_ref()),
        },
    };
    if !is_stop(token, &err) {
        tracing::error!(service = %service, error = %err, "child task failed");
    }
    Err(err)
}

/// `Err(Cancelled)` after being asked to stop is how a cancel-aware wait
/// says "stop", not a failure.
fn is_stop(token: &CancellationToken, err: &TaskError) -> bool {
    token.is_cancelled()
        && match err {
            TaskError::Cancelled => true,
            TaskError::Failed { source } => {
                source.is::<Cancelled>()
                    || matches!(
                        source.downcast_ref::<TaskError>(),
                        Some(TaskError::Cancelled)
                    )
            }
            _ => false,
        }
}
