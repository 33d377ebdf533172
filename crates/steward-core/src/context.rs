//! The [`Context`] every service receives.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::Span;

use crate::children::{AbortChildren, Children};
use crate::host::HostHandle;
use crate::status::Slot;
use crate::{BoxError, Cancelled, ConfigError, TaskError, TaskGroup, Ticker, task_group};

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
    children: Children,
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
                children: Children::new(),
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

    /// Tells the host this service is alive and making progress. A service
    /// registered with a liveness interval
    /// ([`ServiceConfig::liveness`](crate::ServiceConfig::liveness)) calls
    /// it from its loop; ticks of its tickers count as beats too.
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::Context, mut rx: steward_core::Receiver<u64>) {
    /// while let Some(_item) = rx.recv(&ctx).await {
    ///     ctx.heartbeat();
    /// }
    /// # }
    /// ```
    pub fn heartbeat(&self) {
        self.inner.slot.record_beat();
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

    /// Starts a supervised child task, for work that runs beside the
    /// service's own loop (a listener, a watcher): the child gets a token
    /// that is cancelled when the service is asked to stop or its `run`
    /// ends, and runs in the service's span.
    ///
    /// There is no handle to lose: a child's error or panic is logged at
    /// ERROR with the service's name and fails the service, whose
    /// [`FailurePolicy`](crate::FailurePolicy) then applies (restart, stop
    /// the host, or stay faulted). An `Err(Cancelled)` after the token fired
    /// is a clean stop. The service does not count as stopped until every
    /// child has ended, and if the host aborts the service at the shutdown
    /// timeout, its children are aborted with it. For many short tasks with
    /// a limit and results to collect, use [`task_group`](Context::task_group).
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::Context) -> Result<(), steward_core::BoxError> {
    /// let watcher = ctx.clone();
    /// ctx.spawn(move |token| async move {
    ///     while !token.is_cancelled() {
    ///         watcher.sleep(std::time::Duration::from_secs(5)).await?; // Err(Cancelled): a clean stop
    ///         tracing::info!("config unchanged");
    ///     }
    ///     Ok(())
    /// });
    /// ctx.cancelled().await;
    /// # Ok(()) }
    /// ```
    pub fn spawn<F, Fut>(&self, child: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.inner.children.spawn(self, child);
    }

    /// A task group whose children are cancelled when this service is asked
    /// to stop, with at most `limit` children running at once. The children
    /// run in the service's span and the service does not count as stopped
    /// until they have ended. A zero limit is an error.
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::Context) -> Result<(), steward_core::BoxError> {
    /// assert!(ctx.task_group(0).is_err());
    /// let mut group = ctx.task_group(4)?;
    /// group.spawn(|_token| async { Ok(()) }).await?;
    /// group.join().await?;
    /// # Ok(()) }
    /// ```
    pub fn task_group(&self, limit: usize) -> Result<TaskGroup, ConfigError> {
        TaskGroup::new(self, limit)
    }

    /// Runs `f` on every item with at most `limit` running at once, each in
    /// its own child task of this service (see
    /// [`task_group`](Context::task_group)). Stops taking new items when the
    /// service is asked to stop or a child fails, waits for those in flight,
    /// and returns the first error or panic.
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::Context) -> Result<(), steward_core::BoxError> {
    /// ctx.for_each_concurrent(1..=100u32, 4, |n, _token| async move {
    ///     let _ = n * 2;
    ///     Ok(())
    /// }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn for_each_concurrent<I, F, Fut>(
        &self,
        items: I,
        limit: usize,
        f: F,
    ) -> Result<(), TaskError>
    where
        I: IntoIterator,
        F: FnMut(I::Item, CancellationToken) -> Fut,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        task_group::for_each_concurrent(self.task_group(limit)?, items, f).await
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

    pub(crate) fn children(&self) -> &Children {
        &self.inner.children
    }

    /// Completes once every child of this service (spawned or in a task
    /// group) has ended (a dropped group aborts its children, but they end a
    /// moment later).
    pub(crate) async fn children_ended(&self) {
        self.inner.children.ended().await;
    }

    /// Completes with the message of the first failed child spawned with
    /// [`spawn`](Context::spawn) during the current start (init and run).
    /// The supervisor races it against `run`; dropping it ends the start:
    /// that start's children are cancelled, and a later failure belongs to
    /// the next start.
    pub(crate) fn child_failed(&self) -> impl Future<Output = String> + Send + 'static {
        Children::failed(self)
    }

    /// Aborts the children spawned with [`spawn`](Context::spawn) when the
    /// returned guard is dropped; the supervisor holds it in the service's
    /// task, so that a host abort of the service reaches them too.
    pub(crate) fn abort_children_on_drop(&self) -> AbortChildren {
        AbortChildren(self.clone())
    }

    /// A handle that does not keep the service's context alive.
    pub(crate) fn downgrade(&self) -> WeakContext {
        WeakContext(Arc::downgrade(&self.inner))
    }
}

/// A [`Context`] that does not keep its service's context alive (for
/// children, which must not hold their own parent).
pub(crate) struct WeakContext(std::sync::Weak<ContextInner>);

impl WeakContext {
    pub(crate) fn upgrade(&self) -> Option<Context> {
        self.0.upgrade().map(|inner| Context { inner })
    }
}

/// Anything that carries a cancellation token: a service's [`Context`], a
/// job's [`JobContext`](crate::jobs::JobContext) or a bare
/// [`CancellationToken`]. Channel and scope helpers take any of them.
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
