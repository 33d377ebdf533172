//! The [`Context`] every service receives.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Span;

use crate::host::HostHandle;
use crate::status::Slot;
use crate::{Cancelled, ConfigError, TaskError, TaskGroup, Ticker};

/// A service's handle on the host: its name, its cancellation token,
/// cancel-aware waits, readiness, its tracing span and bounded helpers.
///
/// Cheap to clone; clones share the same token and status.
///
/// ```
/// use std::time::Duration;
/// use steward_core::{BoxError, Context, Service};
///
/// struct Poller;
/// impl Service for Poller {
///     async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
///         ctx.set_ready(true);
///         loop {
///             tracing::info!(service = ctx.name(), "polling");
///             ctx.sleep(Duration::from_secs(5)).await?; // Err(Cancelled) on shutdown
///         }
///     }
/// }
/// ```
#[derive(Clone)]
pub struct Context {
    inner: Arc<ContextInner>,
}

struct ContextInner {
    token: CancellationToken,
    slot: Arc<Slot>,
    host: HostHandle,
    span: Span,
    children: TaskTracker,
}

impl Context {
    pub(crate) fn new(token: CancellationToken, slot: Arc<Slot>, host: HostHandle) -> Self {
        let span = tracing::info_span!("service", name = %slot.name);
        Context {
            inner: Arc::new(ContextInner {
                token,
                slot,
                host,
                span,
                children: TaskTracker::new(),
            }),
        }
    }

    /// The service's unique name.
    ///
    /// ```
    /// # fn demo(ctx: steward_core::Context) {
    /// tracing::info!(service = ctx.name(), "hello");
    /// # }
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.slot.name
    }

    /// The token that is cancelled when this service is asked to stop.
    /// Pass it (or a child of it) to anything that waits.
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::Context) {
    /// tokio::select! {
    ///     _ = ctx.token().cancelled() => {}
    ///     _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
    /// }
    /// # }
    /// ```
    pub fn token(&self) -> &CancellationToken {
        &self.inner.token
    }

    /// True once the service has been asked to stop.
    ///
    /// ```
    /// # fn demo(ctx: steward_core::Context) {
    /// while !ctx.is_cancelled() { /* one unit of work */ break; }
    /// # }
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.inner.token.is_cancelled()
    }

    /// Completes when the service is asked to stop.
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::Context) {
    /// ctx.cancelled().await;
    /// # }
    /// ```
    pub async fn cancelled(&self) {
        self.inner.token.cancelled().await
    }

    /// Sleeps for `duration`, or returns `Err(Cancelled)` as soon as the
    /// service is asked to stop.
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::Context) -> Result<(), steward_core::BoxError> {
    /// ctx.sleep(std::time::Duration::from_millis(10)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn sleep(&self, duration: Duration) -> Result<(), Cancelled> {
        tokio::select! {
            biased;
            _ = self.inner.token.cancelled() => Err(Cancelled),
            _ = tokio::time::sleep(duration) => Ok(()),
        }
    }

    /// A drift-free ticker that fires every `period` until the service is
    /// asked to stop; each tick is recorded as the service's `last_tick`.
    /// A zero period is an error rather than a panic.
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::Context) -> Result<(), steward_core::BoxError> {
    /// let mut ticker = ctx.every(std::time::Duration::from_secs(60))?;
    /// while ticker.tick().await.is_some() { /* periodic work */ }
    /// # Ok(()) }
    /// ```
    pub fn every(&self, period: Duration) -> Result<Ticker, ConfigError> {
        if period.is_zero() {
            return Err(ConfigError::ZeroPeriod {
                what: format!("ticker of service `{}`", self.name()),
            });
        }
        Ok(Ticker::new(
            period,
            self.inner.token.clone(),
            Some(self.inner.slot.clone()),
        ))
    }

    /// Reports whether this service is ready to serve. A service is ready by
    /// default once its init finished; it can say otherwise (for example
    /// while a dependency is down) and back.
    ///
    /// ```
    /// # fn demo(ctx: steward_core::Context) {
    /// ctx.set_ready(false); // upstream lost
    /// # }
    /// ```
    pub fn set_ready(&self, ready: bool) {
        self.inner.slot.set_ready(ready);
    }

    /// The service's tracing span (`service{name=...}`); everything the
    /// service runs is already inside it.
    ///
    /// ```
    /// # fn demo(ctx: steward_core::Context) {
    /// let _entered = ctx.span().enter();
    /// # }
    /// ```
    pub fn span(&self) -> &Span {
        &self.inner.span
    }

    /// The host this service runs in: status of the others, shutdown.
    ///
    /// ```
    /// # fn demo(ctx: steward_core::Context) {
    /// let live = ctx.host().status().live;
    /// # }
    /// ```
    pub fn host(&self) -> &HostHandle {
        &self.inner.host
    }

    /// A task group whose children are cancelled when this service is asked
    /// to stop, with at most `limit` children running at once.
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::Context) -> Result<(), steward_core::BoxError> {
    /// let mut group = ctx.task_group(4)?;
    /// group.spawn(|_token| async { Ok(()) }).await?;
    /// group.join().await?;
    /// # Ok(()) }
    /// ```
    pub fn task_group(&self, limit: usize) -> Result<TaskGroup, ConfigError> {
        Ok(TaskGroup::new(self.name(), limit, &self.inner.token)?
            .tracked_by(self.inner.children.clone()))
    }

    /// Runs CPU-bound or blocking work on the host's bounded blocking pool,
    /// waiting for a free slot first. A panic comes back as
    /// [`TaskError::Panicked`].
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::Context) -> Result<(), steward_core::BoxError> {
    /// let sum = ctx.spawn_blocking(|| (0..1_000u64).sum::<u64>()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn spawn_blocking<F, R>(&self, f: F) -> Result<R, TaskError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.inner.host.blocking().run(f, &self.inner.token).await
    }

    pub(crate) fn slot(&self) -> &Arc<Slot> {
        &self.inner.slot
    }

    /// Completes once every child of this service's task groups has ended
    /// (a dropped group aborts its children, but they end a moment later).
    pub(crate) async fn children_ended(&self) {
        self.inner.children.close();
        self.inner.children.wait().await;
    }
}

/// Anything that carries a cancellation token: a [`Context`] or a bare
/// [`CancellationToken`]. Channel and scope helpers take either.
///
/// ```
/// use steward_core::CancelSignal;
/// let token = tokio_util::sync::CancellationToken::new();
/// assert!(!token.token().is_cancelled());
/// ```
pub trait CancelSignal {
    /// The token to watch.
    fn token(&self) -> &CancellationToken;
}

impl CancelSignal for Context {
    fn token(&self) -> &CancellationToken {
        Context::token(self)
    }
}

impl CancelSignal for CancellationToken {
    fn token(&self) -> &CancellationToken {
        self
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("service", &self.name())
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}
