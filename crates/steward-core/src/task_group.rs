//! Bounded, structured parallelism: task groups and `for_each_concurrent`.
//!
//! A group only comes from a service's [`Context`] ([`Context::task_group`],
//! [`Context::for_each_concurrent`]), so its children are the service's:
//! they run in its span, are cancelled with it, and its supervisor waits for
//! them before the service counts as stopped. Every child is owned by its
//! group: a group waits for its children in [`TaskGroup::join`], and aborts
//! whatever is left when it is dropped, saying so in a WARN line.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, Span};

use crate::children::run_child;
use crate::error::panic_message;
use crate::{BoxError, Cancelled, ConfigError, Context, TaskError};

/// A set of child tasks with at most `limit` running at once, cancelled
/// together, whose errors and panics reach the parent.
///
/// ```
/// # async fn demo(ctx: steward_core::Context) -> Result<(), steward_core::BoxError> {
/// let mut group = ctx.task_group(8)?;
/// for n in 0..100u64 {
///     // waits for a free slot: back-pressure instead of 100 tasks at once
///     group.spawn(move |token| async move {
///         if token.is_cancelled() { return Ok(()); }
///         let _square = n * n;
///         Ok(())
///     }).await?;
/// }
/// group.join().await?; // the first child error or panic, after all finished
/// # Ok(()) }
/// ```
pub struct TaskGroup {
    name: Arc<str>,
    span: Span,
    set: JoinSet<Result<(), TaskError>>,
    limit: Arc<Semaphore>,
    token: CancellationToken,
    first_error: Option<TaskError>,
    // Aborting a child (on drop) only schedules its end; the tracker lets
    // the owning service's supervisor wait until every child's future is
    // really gone, so none outlives the service.
    tracker: TaskTracker,
    /// Its service, for the children to run as (channel roles, watchdog).
    service: Arc<crate::status::Slot>,
}

impl TaskGroup {
    /// A group of `ctx`'s service allowing `limit` children at once,
    /// cancelled when the service is. A zero limit is an error.
    pub(crate) fn new(ctx: &Context, limit: usize) -> Result<Self, ConfigError> {
        let name = ctx.name();
        if limit == 0 {
            return Err(ConfigError::ZeroConcurrency {
                what: format!("task group `{name}`"),
            });
        }
        Ok(TaskGroup {
            name: Arc::from(name),
            span: ctx.span().clone(),
            set: JoinSet::new(),
            limit: Arc::new(Semaphore::new(limit)),
            token: ctx.token().child_token(),
            first_error: None,
            tracker: ctx.children().tracker().clone(),
            service: ctx.slot().clone(),
        })
    }

    /// Starts a child once fewer than `limit` are running. The child gets the
    /// group's token, which is cancelled when the parent is.
    ///
    /// Returns an error instead of spawning if an earlier child already
    /// failed or panicked (so the parent hears of it without delay), or if
    /// the group is cancelled while waiting for a slot.
    ///
    /// ```
    /// # async fn demo(mut group: steward_core::TaskGroup) -> Result<(), steward_core::TaskError> {
    /// group.spawn(|_token| async { Ok(()) }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn spawn<F, Fut>(&mut self, child: F) -> Result<(), TaskError>
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.reap();
        if let Some(err) = self.first_error.take() {
            return Err(err);
        }
        let permit = tokio::select! {
            biased;
            _ = self.token.cancelled() => return Err(TaskError::Cancelled),
            permit = self.limit.clone().acquire_owned() => permit,
        };
        let permit: OwnedSemaphorePermit = permit.map_err(|_| TaskError::Cancelled)?;
        let token = self.token.clone();
        let fut = child(token.clone());
        let service = self.name.clone();
        let task = async move {
            let _permit = permit; // released when the child ends, however it ends
            run_child(fut, &token, &service).await
        };
        self.set.spawn(
            self.tracker.track_future(
                crate::poll_mark::record_child(self.service.clone(), task)
                    .instrument(self.span.clone()),
            ),
        );
        Ok(())
    }

    /// How many children are running or waiting to be joined.
    ///
    /// ```
    /// # fn demo(group: steward_core::TaskGroup) { let n = group.len(); }
    /// ```
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// True if the group has no children left.
    ///
    /// ```
    /// # fn demo(group: steward_core::TaskGroup) { let done = group.is_empty(); }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Cancels every child (they see their token fire).
    ///
    /// ```
    /// # fn demo(group: steward_core::TaskGroup) { group.cancel(); }
    /// ```
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// The group's token.
    ///
    /// ```
    /// # fn demo(group: steward_core::TaskGroup) { let t = group.token().clone(); }
    /// ```
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// Waits for every child and returns the first failure (error or panic),
    /// if any.
    ///
    /// ```
    /// # async fn demo(group: steward_core::TaskGroup) {
    /// if let Err(e) = group.join().await { eprintln!("a child failed: {e}"); }
    /// # }
    /// ```
    pub async fn join(mut self) -> Result<(), TaskError> {
        while let Some(result) = self.set.join_next().await {
            self.record(result);
        }
        match self.first_error.take() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }

    fn reap(&mut self) {
        while let Some(result) = self.set.try_join_next() {
            self.record(result);
        }
    }

    fn record(&mut self, result: Result<Result<(), TaskError>, JoinError>) {
        // The child logged its own failure when it happened (`run_child`).
        let err = match result {
            Ok(Ok(())) => return,
            Ok(Err(err)) => err,
            Err(join) => join_error(join),
        };
        if self.first_error.is_none() {
            self.first_error = Some(err);
        }
    }
}

impl Drop for TaskGroup {
    fn drop(&mut self) {
        // Structured: children never outlive their group. JoinSet aborts its
        // tasks on drop too; cancelling first lets them see why.
        self.token.cancel();
        self.reap();
        let running = self.set.len();
        if running > 0 {
            // Dropped outside the service's span when its task is aborted.
            let _entered = self.span.enter();
            tracing::warn!(
                service = %self.name,
                running,
                "task group dropped without join: its children still running were aborted"
            );
        }
        self.set.abort_all();
    }
}

pub(crate) fn join_error(err: JoinError) -> TaskError {
    if err.is_panic() {
        TaskError::Panicked {
            message: panic_message(err.into_panic().as_ref()),
        }
    } else {
        TaskError::Cancelled
    }
}

/// The body of [`Context::for_each_concurrent`], on a group made for it.
pub(crate) async fn for_each_concurrent<I, F, Fut>(
    mut group: TaskGroup,
    items: I,
    mut f: F,
) -> Result<(), TaskError>
where
    I: IntoIterator,
    F: FnMut(I::Item, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    let mut stopped = None;
    for item in items {
        if group.token().is_cancelled() {
            break;
        }
        if let Err(err) = group.spawn(|token| f(item, token)).await {
            stopped = Some(err);
            break;
        }
    }
    let joined = group.join().await;
    match stopped {
        Some(TaskError::Cancelled) | None => joined,
        Some(err) => Err(err),
    }
}

impl From<Cancelled> for TaskError {
    fn from(_: Cancelled) -> Self {
        TaskError::Cancelled
    }
}

impl From<ConfigError> for TaskError {
    fn from(err: ConfigError) -> Self {
        TaskError::Failed {
            source: Box::new(err),
        }
    }
}

impl std::fmt::Debug for TaskGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskGroup")
            .field("name", &self.name)
            .field("children", &self.set.len())
            .field("free_slots", &self.limit.available_permits())
            .finish()
    }
}
