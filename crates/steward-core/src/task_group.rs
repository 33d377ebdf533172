//! Bounded, structured parallelism: task groups and `for_each_concurrent`.
//!
//! Every child is owned by its group: a group waits for its children in
//! [`TaskGroup::join`], and aborts whatever is left when it is dropped, so no
//! child outlives the service that started it.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::panic_message;
use crate::{BoxError, Cancelled, ConfigError, TaskError};

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
    set: JoinSet<Result<(), BoxError>>,
    limit: Arc<Semaphore>,
    token: CancellationToken,
    first_error: Option<TaskError>,
    // Aborting a child (on drop) only schedules its end; the tracker lets
    // the owning service's supervisor wait until every child's future is
    // really gone, so none outlives the service.
    tracker: TaskTracker,
}

impl TaskGroup {
    /// A group named `name` (for logs) allowing `limit` children at once,
    /// cancelled when `parent` is. A zero limit is an error.
    ///
    /// ```
    /// use steward_core::TaskGroup;
    /// # fn main() -> Result<(), steward_core::ConfigError> {
    /// let parent = tokio_util::sync::CancellationToken::new();
    /// assert!(TaskGroup::new("resize", 0, &parent).is_err());
    /// let group = TaskGroup::new("resize", 4, &parent)?;
    /// # Ok(()) }
    /// ```
    pub fn new(name: &str, limit: usize, parent: &CancellationToken) -> Result<Self, ConfigError> {
        if limit == 0 {
            return Err(ConfigError::ZeroConcurrency {
                what: format!("task group `{name}`"),
            });
        }
        Ok(TaskGroup {
            name: Arc::from(name),
            set: JoinSet::new(),
            limit: Arc::new(Semaphore::new(limit)),
            token: parent.child_token(),
            first_error: None,
            tracker: TaskTracker::new(),
        })
    }

    /// Tracks the children in `tracker` (the service's), so its supervisor
    /// can wait for them to end.
    pub(crate) fn tracked_by(mut self, tracker: TaskTracker) -> Self {
        self.tracker = tracker;
        self
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
        let fut = child(self.token.clone());
        self.set.spawn(self.tracker.track_future(async move {
            let _permit = permit; // released when the child ends, however it ends
            fut.await
        }));
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

    fn record(&mut self, result: Result<Result<(), BoxError>, JoinError>) {
        let err = match result {
            Ok(Ok(())) => return,
            Ok(Err(source)) => TaskError::Failed { source },
            Err(join) => join_error(join),
        };
        tracing::error!(group = %self.name, error = %err, "child task failed");
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

/// Runs `f` on every item with at most `limit` running at once, each in its
/// own task. Stops taking new items when `cancel` fires, waits for those in
/// flight, and returns the first error or panic.
///
/// ```
/// # async fn demo(ctx: steward_core::Context) -> Result<(), steward_core::BoxError> {
/// steward_core::for_each_concurrent(ctx.token(), 1..=100u32, 4, |n, _token| async move {
///     let _ = n * 2;
///     Ok(())
/// }).await?;
/// # Ok(()) }
/// ```
pub async fn for_each_concurrent<I, F, Fut>(
    cancel: &CancellationToken,
    items: I,
    limit: usize,
    mut f: F,
) -> Result<(), TaskError>
where
    I: IntoIterator,
    F: FnMut(I::Item, CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    let mut group = TaskGroup::new("for_each_concurrent", limit, cancel)?;
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
