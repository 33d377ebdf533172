//! The [`JobContext`] a running job receives.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tracing::Span;

use crate::store::{JobId, Lease, Store, StoreError};

/// Shared application state handed to every job (a connection pool, an
/// HTTP client, configuration), looked up by type.
///
/// ```
/// use steward_core::jobs::Extensions;
/// let mut ext = Extensions::default();
/// ext.insert(String::from("smtp.example.com"));
/// assert_eq!(ext.get::<String>().map(String::as_str), Some("smtp.example.com"));
/// ```
#[derive(Default, Clone)]
pub struct Extensions {
    map: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Extensions {
    /// Adds (or replaces) the value of type `T`.
    ///
    /// ```
    /// let mut ext = steward_core::jobs::Extensions::default();
    /// ext.insert(42u32);
    /// ```
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) {
        self.map.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// The value of type `T`, if one was inserted.
    ///
    /// ```
    /// let ext = steward_core::jobs::Extensions::default();
    /// assert!(ext.get::<u32>().is_none());
    /// ```
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.map
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
    }
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions")
            .field("values", &self.map.len())
            .finish()
    }
}

/// Object-safe checkpoint writer, so `JobContext` need not be generic over
/// the store.
pub(crate) trait CheckpointSink: Send + Sync {
    fn save(&self, lease: Lease, state: String) -> BoxFuture<'_, Result<(), StoreError>>;
}

impl<S: Store> CheckpointSink for S {
    fn save(&self, lease: Lease, state: String) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.checkpoint(lease, state))
    }
}

/// What a running job knows about itself and can do: its id and attempt,
/// cancellation, checkpoints, shared state.
///
/// ```
/// # async fn demo(ctx: steward_core::jobs::JobContext) -> Result<(), steward_core::BoxError> {
/// let mut next: u32 = ctx.checkpoint()?.unwrap_or(0); // resume where the last attempt stopped
/// while next < 100 {
///     if ctx.is_cancelled() { break; }
///     next += 1;
///     ctx.save_checkpoint(&next).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct JobContext {
    inner: Arc<Inner>,
}

struct Inner {
    lease: Lease,
    kind: String,
    attempt: u32,
    max_attempts: u32,
    token: CancellationToken,
    shutting_down: CancellationToken,
    span: Span,
    checkpoint: Option<String>,
    sink: Arc<dyn CheckpointSink>,
    extensions: Arc<Extensions>,
    completed_externally: AtomicBool,
}

/// What the worker knows when it starts an attempt.
pub(crate) struct Attempt {
    pub(crate) lease: Lease,
    pub(crate) kind: String,
    pub(crate) attempt: u32,
    pub(crate) max_attempts: u32,
    pub(crate) checkpoint: Option<String>,
}

impl JobContext {
    pub(crate) fn new(
        attempt: Attempt,
        token: CancellationToken,
        shutting_down: CancellationToken,
        span: Span,
        sink: Arc<dyn CheckpointSink>,
        extensions: Arc<Extensions>,
    ) -> Self {
        JobContext {
            inner: Arc::new(Inner {
                lease: attempt.lease,
                kind: attempt.kind,
                attempt: attempt.attempt,
                max_attempts: attempt.max_attempts,
                token,
                shutting_down,
                span,
                checkpoint: attempt.checkpoint,
                sink,
                extensions,
                completed_externally: AtomicBool::new(false),
            }),
        }
    }

    /// The job's id.
    ///
    /// ```
    /// # fn demo(ctx: steward_core::jobs::JobContext) { println!("job {}", ctx.id()); }
    /// ```
    pub fn id(&self) -> JobId {
        self.inner.lease.id
    }

    /// The job's kind.
    ///
    /// ```
    /// # fn demo(ctx: steward_core::jobs::JobContext) { let k = ctx.kind(); }
    /// ```
    pub fn kind(&self) -> &str {
        &self.inner.kind
    }

    /// This attempt's number, from 1.
    ///
    /// ```
    /// # fn demo(ctx: steward_core::jobs::JobContext) { let first = ctx.attempt() == 1; }
    /// ```
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// How many attempts the job is allowed.
    ///
    /// ```
    /// # fn demo(ctx: steward_core::jobs::JobContext) { let last = ctx.attempt() == ctx.max_attempts(); }
    /// ```
    pub fn max_attempts(&self) -> u32 {
        self.inner.max_attempts
    }

    /// This attempt's lease: the id and fencing token. Pass it to a store's
    /// transactional completion (e.g. `steward_store_sqlite::complete_in`).
    ///
    /// ```
    /// # fn demo(ctx: steward_core::jobs::JobContext) { let lease = ctx.lease(); }
    /// ```
    pub fn lease(&self) -> Lease {
        self.inner.lease
    }

    /// Fires when the job must stop: its timeout passed, an operator
    /// cancelled it, the worker lost its lease, or shutdown ran out of time.
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::jobs::JobContext) { ctx.token().cancelled().await; }
    /// ```
    pub fn token(&self) -> &CancellationToken {
        &self.inner.token
    }

    /// True once the worker has begun to stop (the host is shutting down).
    /// The job is not cancelled yet: it may finish, or save a checkpoint
    /// and return early; it is cancelled only when the worker's drain time
    /// runs out (then [`token`](Self::token) fires and, on return, the job
    /// is released to run again). Like Sidekiq's quiet and River's `Stop`
    /// before `StopAndCancel`.
    ///
    /// ```
    /// # fn demo(ctx: steward_core::jobs::JobContext) { if ctx.is_shutting_down() { /* wrap up */ } }
    /// ```
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.is_cancelled()
    }

    /// Completes when the worker begins to stop (see
    /// [`is_shutting_down`](Self::is_shutting_down)).
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::jobs::JobContext) {
    /// tokio::select! {
    ///     _ = ctx.shutting_down() => { /* save a checkpoint, return */ }
    ///     _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
    /// }
    /// # }
    /// ```
    pub async fn shutting_down(&self) {
        self.inner.shutting_down.cancelled().await
    }

    /// Waits `duration`, or less: ends with [`Cancelled`](crate::Cancelled)
    /// as soon as the worker begins to stop or the job is cancelled. Return
    /// that with `?` and a job stopped by shutdown is released (available
    /// again, no attempt used, its checkpoint kept), not failed.
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::jobs::JobContext) -> Result<(), steward_core::BoxError> {
    /// for batch in ctx.checkpoint::<u32>()?.unwrap_or(0)..10 {
    ///     // ... one batch ...
    ///     ctx.save_checkpoint(&(batch + 1)).await?;
    ///     ctx.sleep(std::time::Duration::from_secs(1)).await?; // stops here at shutdown
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn sleep(&self, duration: std::time::Duration) -> Result<(), crate::Cancelled> {
        tokio::select! {
            biased;
            _ = self.inner.token.cancelled() => Err(crate::Cancelled),
            _ = self.inner.shutting_down.cancelled() => Err(crate::Cancelled),
            _ = tokio::time::sleep(duration) => Ok(()),
        }
    }

    /// True once the job must stop.
    ///
    /// ```
    /// # fn demo(ctx: steward_core::jobs::JobContext) { if ctx.is_cancelled() { return; } }
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.inner.token.is_cancelled()
    }

    /// The job's tracing span (`job{id, kind, attempt}`); `run` already runs in it.
    ///
    /// ```
    /// # fn demo(ctx: steward_core::jobs::JobContext) { let _e = ctx.span().enter(); }
    /// ```
    pub fn span(&self) -> &Span {
        &self.inner.span
    }

    /// The progress saved by an earlier attempt, if any.
    ///
    /// ```
    /// # fn demo(ctx: steward_core::jobs::JobContext) -> Result<(), serde_json::Error> {
    /// let done: Vec<u64> = ctx.checkpoint()?.unwrap_or_default();
    /// # Ok(()) }
    /// ```
    pub fn checkpoint<T: DeserializeOwned>(&self) -> Result<Option<T>, serde_json::Error> {
        self.inner
            .checkpoint
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
    }

    /// Persists progress now, so the next attempt (after a crash, a deploy
    /// or a retry) resumes from it. Refused with `LeaseLost` if this attempt
    /// no longer owns the job.
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::jobs::JobContext) -> Result<(), steward_core::BoxError> {
    /// ctx.save_checkpoint(&42u32).await?;
    /// # Ok(()) }
    /// ```
    pub async fn save_checkpoint<T: Serialize>(&self, state: &T) -> Result<(), StoreError> {
        let json = serde_json::to_string(state).map_err(|e| StoreError::Invalid {
            message: format!("checkpoint does not serialize: {e}"),
        })?;
        self.inner.sink.save(self.inner.lease, json).await
    }

    /// Shared state of type `T` given to the worker with
    /// [`Worker::state`](super::Worker::state). Missing, it is a
    /// [`MissingState`] error naming the type; returned from the job (with
    /// `?`), it fails the job at once rather than on every attempt, since
    /// no retry can help a worker configured without it.
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::jobs::JobContext) -> Result<(), steward_core::BoxError> {
    /// let smtp: &String = ctx.state::<String>()?;
    /// # Ok(()) }
    /// ```
    pub fn state<T: Send + Sync + 'static>(&self) -> Result<&T, MissingState> {
        self.inner.extensions.get::<T>().ok_or(MissingState {
            type_name: std::any::type_name::<T>(),
        })
    }

    /// Tells the worker this attempt was already marked complete inside the
    /// job's own transaction (transactional completion), so it writes no
    /// completion of its own. Call it after that transaction committed.
    ///
    /// ```
    /// # fn demo(ctx: steward_core::jobs::JobContext) { ctx.mark_completed(); }
    /// ```
    pub fn mark_completed(&self) {
        self.inner
            .completed_externally
            .store(true, Ordering::Release);
    }

    pub(crate) fn completed_externally(&self) -> bool {
        self.inner.completed_externally.load(Ordering::Acquire)
    }
}

/// A job's context is its cancel signal: pass `&ctx` to a channel's
/// `send`/`recv` or a scope's `run_until_cancelled`, and they end when the
/// job must stop (timeout, operator's cancel, lost lease, shutdown).
///
/// ```
/// use steward_core::jobs::JobContext;
/// use steward_core::Receiver;
/// async fn next(rx: &mut Receiver<u32>, ctx: &JobContext) -> Option<u32> {
///     rx.recv(ctx).await
/// }
/// ```
impl crate::CancelSignal for JobContext {
    fn token(&self) -> &CancellationToken {
        JobContext::token(self)
    }
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("id", &self.inner.lease.id)
            .field("kind", &self.inner.kind)
            .field("attempt", &self.inner.attempt)
            .finish()
    }
}

/// A job asked for shared state its worker was not given (see
/// [`JobContext::state`]). Returned from a job, it fails the job at once.
///
/// ```
/// # async fn demo(ctx: steward_core::jobs::JobContext) {
/// if let Err(missing) = ctx.state::<u64>() {
///     assert!(missing.to_string().contains("u64"));
/// }
/// # }
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "this worker was not given state of type `{type_name}`: give it with `Worker::state` \
     when the worker is built (no retry can help)"
)]
pub struct MissingState {
    /// The missing type, as `std::any::type_name` spells it.
    pub type_name: &'static str,
}
