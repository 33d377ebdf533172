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
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::FutureExt;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, Span};

use crate::error::panic_message;
use crate::status::Slot;
use crate::{BoxError, Cancelled, TaskError};

/// A service's children, shared by every clone of its context.
pub(crate) struct Children {
    service: CancellationToken,
    span: Span,
    slot: Arc<Slot>,
    tracker: TaskTracker,
    // Only for aborting: each child reports its own result.
    spawned: Mutex<JoinSet<()>>,
    start: Mutex<Arc<Start>>,
}

/// One start (init + run) of the service, as its `spawn`ed children see it.
struct Start {
    token: CancellationToken,
    failure: watch::Sender<Option<String>>,
    ended: Mutex<bool>,
}

impl Start {
    fn new(service: &CancellationToken) -> Arc<Self> {
        Arc::new(Start {
            token: service.child_token(),
            failure: watch::Sender::new(None),
            ended: Mutex::new(false),
        })
    }

    /// Records the first failure; false if the start already ended, so that
    /// nobody is waiting for it any more.
    fn fail(&self, message: &str) -> bool {
        let ended = lock(&self.ended);
        if *ended {
            return false;
        }
        self.failure.send_if_modified(|first| {
            let unset = first.is_none();
            if unset {
                *first = Some(message.to_owned());
            }
            unset
        });
        true
    }

    fn end(&self) {
        *lock(&self.ended) = true;
        self.token.cancel();
    }
}

impl Children {
    pub(crate) fn new(service: &CancellationToken, span: Span, slot: Arc<Slot>) -> Self {
        Children {
            start: Mutex::new(Start::new(service)),
            service: service.clone(),
            span,
            slot,
            tracker: TaskTracker::new(),
            spawned: Mutex::new(JoinSet::new()),
        }
    }

    pub(crate) fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    pub(crate) fn spawn<F, Fut>(&self, child: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let start = lock(&self.start).clone();
        let token = start.token.child_token();
        let fut = child(token.clone());
        let slot = self.slot.clone();
        let task = async move {
            let Err(err) = run_child(fut, &token, &slot.name).await else {
                return;
            };
            if is_stop(&token, &err) {
                return;
            }
            let message = err.to_string();
            if !start.fail(&message) {
                // Its start is over: nothing to fail, but the status shows it.
                slot.record_error(format!("child task failed: {message}"));
            }
        };
        let mut spawned = lock(&self.spawned);
        while spawned.try_join_next().is_some() {}
        spawned.spawn(
            self.tracker
                .track_future(crate::host::current::child(task).instrument(self.span.clone())),
        );
    }

    /// Completes with the first failure of a child of the current start.
    /// Dropping the future ends the start: its children are cancelled, and
    /// children spawned afterwards belong to the next one. The guard is
    /// built before the future is first polled, so a `select!` that finishes
    /// on its other branch at once still ends the start.
    pub(crate) fn failed(self: &Arc<Self>) -> impl Future<Output = String> + Send + 'static {
        let start = lock(&self.start).clone();
        let mut failure = start.failure.subscribe();
        let end = EndStart {
            children: self.clone(),
            start,
        };
        async move {
            let _end = end;
            let first = match failure.wait_for(Option::is_some).await {
                Ok(first) => first.clone(),
                // The sender lives in `_end.start`: it cannot be dropped here.
                Err(_) => None,
            };
            match first {
                Some(message) => message,
                None => std::future::pending().await,
            }
        }
    }

    /// Waits for every child (spawned or in a task group) to end.
    pub(crate) async fn ended(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }

    fn abort_spawned(&self) {
        lock(&self.start).token.cancel();
        lock(&self.spawned).abort_all();
    }
}

struct EndStart {
    children: Arc<Children>,
    start: Arc<Start>,
}

impl Drop for EndStart {
    fn drop(&mut self) {
        self.start.end();
        let mut current = lock(&self.children.start);
        if Arc::ptr_eq(&current, &self.start) {
            *current = Start::new(&self.children.service);
        }
    }
}

/// Aborts a service's `spawn`ed children when dropped; the supervisor holds
/// it for as long as the service's task lives.
pub(crate) struct AbortChildren(pub(crate) Arc<Children>);

impl Drop for AbortChildren {
    fn drop(&mut self) {
        self.0.abort_spawned();
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

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a few non-panicking lines; a poisoned
    // lock still holds consistent data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
