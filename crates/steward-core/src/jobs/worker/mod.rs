//! The worker: a host service that claims jobs in batches, runs them with
//! per-queue concurrency limits, heartbeats their leases, writes their
//! outcomes in batches, and on shutdown drains, then releases what is left.
//!
//! - [`attempt`]: one attempt and how its outcome is decided.
//! - [`completer`]: batched outcome writes.
//! - [`heartbeat`]: lease renewal and operator cancels.

mod attempt;
mod completer;
mod dispatch;
mod heartbeat;
mod pace;
mod ready;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Job;
use super::context::Extensions;
use super::registry::Registry;
use crate::store::{ClaimRequest, ClaimedJob, Store, StoreError};
use crate::{BoxError, ConfigError, Context, Service};
use attempt::AttemptDeps;
use completer::Completer;
use dispatch::Dispatcher;
use heartbeat::Running;
use ready::Readiness;

/// A queue this worker serves and how many of its jobs may run at once.
///
/// ```
/// let q = steward_core::jobs::QueueConfig { name: "default".into(), concurrency: 16 };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// The queue's name.
    pub name: String,
    /// At most this many of its jobs run at once in this worker.
    pub concurrency: usize,
}

/// How a worker claims, leases and stops.
///
/// ```
/// use std::time::Duration;
/// let config = steward_core::jobs::WorkerConfig { lease: Duration::from_secs(60), ..Default::default() };
/// ```
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Queues in the order they are served (earlier ones first), with limits.
    pub queues: Vec<QueueConfig>,
    /// At most this many jobs claimed in one round trip (default 256, the
    /// default prefetch cap: with the claim running alongside the jobs, a
    /// fast queue's claims are as large as its buffer allows; measured with
    /// `steward bench jobs --fetch-batch`, 256 processed 10–15 % more no-op
    /// jobs per second than 100 on SQLite and 3–7 % more on PostgreSQL).
    /// Slow queues claim far fewer: see `prefetch`.
    pub fetch_batch: u32,
    /// The most jobs claimed ahead of free slots, per queue, so the next
    /// ones start without a round trip to the store. The worker buffers only
    /// as many as hide its measured claim time (deep for fast jobs, about
    /// none for slow ones; see `pace.rs`). Buffered jobs are leased and
    /// heartbeated, and released at once on shutdown. 0 turns it off.
    pub prefetch: usize,
    /// How long a claim holds a job without a heartbeat; at most 24 h
    /// (heartbeats renew it).
    pub lease: Duration,
    /// How often running jobs' leases are renewed (well under `lease`).
    pub heartbeat_every: Duration,
    /// How long to wait for new work before claiming again anyway.
    pub poll_interval: Duration,
    /// How long running jobs may take to finish at shutdown before they are
    /// stopped and released; `None` uses the host's shutdown timeout minus
    /// two seconds (kept for releasing them).
    pub drain_timeout: Option<Duration>,
    /// How long a job told to stop gets to return before it is dropped.
    pub stop_grace: Duration,
    /// This worker's name in job records (default `host/pid`).
    pub id: String,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            queues: vec![QueueConfig {
                name: "default".to_string(),
                concurrency: 10,
            }],
            fetch_batch: 256,
            prefetch: 256,
            lease: Duration::from_secs(30),
            heartbeat_every: Duration::from_secs(5),
            poll_interval: Duration::from_secs(1),
            drain_timeout: None,
            stop_grace: Duration::from_secs(1),
            id: default_worker_id(),
        }
    }
}

fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_string());
    format!("{host}/{}", std::process::id())
}

/// Runs jobs from a store; register it with the host like any service.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct Ping;
/// # impl steward_core::jobs::Job for Ping {
/// #     const KIND: &'static str = "ping";
/// #     async fn run(self, _ctx: steward_core::jobs::JobContext) -> Result<(), steward_core::BoxError> { Ok(()) }
/// # }
/// # fn demo<S: steward_core::store::Store>(store: std::sync::Arc<S>) -> Result<(), steward_core::ConfigError> {
/// use steward_core::jobs::Worker;
/// let worker = Worker::new(store)
///     .register::<Ping>()?
///     .queue("default", 16)?
///     .queue("low", 2)?;
/// let mut host = steward_core::Host::builder();
/// host.service("worker", worker)?;
/// # Ok(()) }
/// ```
pub struct Worker<S> {
    store: Arc<S>,
    /// Shared with the attempts of a run, never taken out: a worker
    /// restarted after a failure runs the kinds it was configured with.
    registry: Arc<Registry>,
    config: WorkerConfig,
    extensions: Extensions,
    custom_queues: bool,
}

impl<S: Store> Worker<S> {
    /// A worker over `store` serving queue `default` with 10 at a time.
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(store: std::sync::Arc<S>) {
    /// let worker = steward_core::jobs::Worker::new(store);
    /// # }
    /// ```
    pub fn new(store: Arc<S>) -> Self {
        Worker {
            store,
            registry: Arc::default(),
            config: WorkerConfig::default(),
            extensions: Extensions::default(),
            custom_queues: false,
        }
    }

    /// Adds a job kind this worker runs. Registering a kind twice is an error.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Ping;
    /// # impl steward_core::jobs::Job for Ping {
    /// #     const KIND: &'static str = "ping";
    /// #     async fn run(self, _ctx: steward_core::jobs::JobContext) -> Result<(), steward_core::BoxError> { Ok(()) }
    /// # }
    /// # fn demo<S: steward_core::store::Store>(w: steward_core::jobs::Worker<S>) -> Result<(), steward_core::ConfigError> {
    /// let w = w.register::<Ping>()?;
    /// # Ok(()) }
    /// ```
    pub fn register<J: Job>(mut self) -> Result<Self, ConfigError> {
        // Only while configuring, when this worker is the sole owner.
        let Some(registry) = Arc::get_mut(&mut self.registry) else {
            return Err(ConfigError::Invalid {
                what: "job kind",
                reason: format!("`{}` registered on a worker that is running", J::KIND),
            });
        };
        if !registry.register::<J>() {
            return Err(ConfigError::Invalid {
                what: "job kind",
                reason: format!("`{}` is registered twice", J::KIND),
            });
        }
        Ok(self)
    }

    /// Serves `name` with at most `concurrency` of its jobs at once. The
    /// first call replaces the default queue; queues are served in the order
    /// added.
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(w: steward_core::jobs::Worker<S>) {
    /// assert!(w.queue("default", 0).is_err());
    /// # }
    /// ```
    pub fn queue(
        mut self,
        name: impl Into<String>,
        concurrency: usize,
    ) -> Result<Self, ConfigError> {
        let name = name.into();
        if concurrency == 0 {
            return Err(ConfigError::ZeroConcurrency {
                what: format!("queue `{name}`"),
            });
        }
        if !self.custom_queues {
            self.config.queues.clear();
            self.custom_queues = true;
        }
        if self.config.queues.iter().any(|q| q.name == name) {
            return Err(ConfigError::Invalid {
                what: "queue",
                reason: format!("`{name}` is configured twice"),
            });
        }
        self.config.queues.push(QueueConfig { name, concurrency });
        Ok(self)
    }

    /// Replaces the whole configuration (queues included).
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(w: steward_core::jobs::Worker<S>) -> Result<(), steward_core::ConfigError> {
    /// let w = w.config(steward_core::jobs::WorkerConfig::default())?;
    /// # Ok(()) }
    /// ```
    pub fn config(mut self, config: WorkerConfig) -> Result<Self, ConfigError> {
        if config.queues.is_empty() {
            return Err(ConfigError::Invalid {
                what: "worker",
                reason: "it serves no queue".to_string(),
            });
        }
        if let Some(q) = config.queues.iter().find(|q| q.concurrency == 0) {
            return Err(ConfigError::ZeroConcurrency {
                what: format!("queue `{}`", q.name),
            });
        }
        if config.fetch_batch == 0 {
            return Err(ConfigError::ZeroConcurrency {
                what: "the worker's fetch batch".to_string(),
            });
        }
        if config.heartbeat_every.is_zero() || config.heartbeat_every >= config.lease {
            return Err(ConfigError::Invalid {
                what: "worker",
                reason: format!(
                    "heartbeat_every ({:?}) must be positive and shorter than the lease ({:?})",
                    config.heartbeat_every, config.lease
                ),
            });
        }
        if config.lease > MAX_LEASE {
            return Err(ConfigError::Invalid {
                what: "worker",
                reason: format!(
                    "lease ({:?}) is longer than {MAX_LEASE:?}: heartbeats renew a lease, so a \
                     long one only delays the rescue of jobs whose worker died",
                    config.lease
                ),
            });
        }
        if config.poll_interval.is_zero() {
            return Err(ConfigError::ZeroPeriod {
                what: "the worker's poll interval".to_string(),
            });
        }
        self.config = config;
        self.custom_queues = true;
        Ok(self)
    }

    /// Makes `value` available to every job through
    /// [`JobContext::state`](super::JobContext::state).
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(w: steward_core::jobs::Worker<S>) {
    /// let w = w.state(String::from("https://api.example.com"));
    /// # }
    /// ```
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }
}

impl<S: Store> Service for Worker<S> {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        if self.registry.is_empty() {
            tracing::warn!("worker has no job kinds registered: it claims nothing");
        }
        // Not refused: workers split by queue over one code base register
        // every kind. But a kind nobody serves waits forever without a word.
        for (kind, queue) in self.registry.queues() {
            if !self.config.queues.iter().any(|q| q.name == queue) {
                tracing::warn!(
                    kind,
                    queue,
                    "job kind `{kind}` goes to queue `{queue}`, which this worker does not serve: \
                     its jobs wait until a worker serving `{queue}` runs"
                );
            }
        }
        let registry = self.registry.clone();
        run_worker(self, &registry, ctx).await
    }
}

/// The longest lease a worker may ask for. Leases are renewed by
/// heartbeats; a longer one only hides a dead worker's jobs for longer (and
/// far beyond it, overflows the stores' time arithmetic).
const MAX_LEASE: Duration = Duration::from_secs(24 * 3600);

async fn run_worker<S: Store>(
    worker: &Worker<S>,
    registry: &Arc<Registry>,
    ctx: &Context,
) -> Result<(), BoxError> {
    let config = &worker.config;
    let store = worker.store.clone();
    let running: Running = Arc::new(Mutex::new(HashMap::new()));
    let ready = Arc::new(Readiness::new(ctx));
    let shutting_down = CancellationToken::new();
    // The worker service's span: its tasks (outcome writer, heartbeat, each
    // attempt) run apart from this one, and would otherwise log with no
    // span at all.
    let span = tracing::Span::current();
    let deps = Arc::new(AttemptDeps {
        registry: registry.clone(),
        sink: store.clone(),
        extensions: Arc::new(worker.extensions.clone()),
        grace: config.stop_grace,
        shutting_down: shutting_down.clone(),
        span: span.clone(),
    });
    let total: usize = config.queues.iter().map(|q| q.concurrency).sum();
    // Outcomes wait here while the previous batch is being written. Room
    // for a whole batch, so that a slow commit (a WAL flush on PostgreSQL)
    // lets the next batch grow instead of stalling this loop: throughput is
    // batch size over commit time. Bounded all the same: outcomes not yet
    // written are work to redo if the process dies.
    let (finish_tx, finish_rx) = mpsc::channel(completer::MAX_BATCH.max(total * 2));
    let give_up = CancellationToken::new();
    let mut helpers = JoinSet::new();
    helpers.spawn(
        Completer {
            store: store.clone(),
            running: running.clone(),
            ready: ready.clone(),
            give_up: give_up.clone(),
        }
        .run(finish_rx)
        .instrument(span.clone()),
    );
    let beat_stop = CancellationToken::new();
    helpers.spawn(
        heartbeat::run(
            store.clone(),
            running.clone(),
            config.heartbeat_every,
            config.lease,
            beat_stop.clone(),
        )
        .instrument(span),
    );

    let mut dispatcher = Dispatcher::new(config, running, finish_tx, deps);
    // A panic in the loop (store code, the worker's own) must not walk away
    // from what the worker holds: it is caught here, everything is given
    // back at once, and the panic goes on to the supervisor, which restarts
    // this worker with its configuration intact.
    let served = AssertUnwindSafe(serve(worker, ctx, &ready, &mut dispatcher))
        .catch_unwind()
        .await;
    // Running jobs hear at once that the worker is stopping; they are
    // cancelled only when the drain's time runs out.
    shutting_down.cancel();
    let budget = match &served {
        Ok(()) => StopBudget::new(ctx, config.drain_timeout),
        Err(panic) => {
            tracing::error!(
                panic = %crate::error::panic_message(panic.as_ref()),
                "the worker's loop panicked: stopping and releasing its jobs before it restarts"
            );
            StopBudget::now(ctx)
        }
    };
    dispatcher
        .drain(&*worker.store, &budget, config.stop_grace)
        .await;
    beat_stop.cancel();
    // Closes the outcome channel: the writer flushes what is queued, then
    // ends, or gives up when the time to stop is over.
    drop(dispatcher);
    let joined = async {
        while let Some(result) = helpers.join_next().await {
            if let Err(err) = result {
                tracing::error!(error = %err, "worker helper task failed");
            }
        }
    };
    if tokio::time::timeout_at(budget.flush_until, joined)
        .await
        .is_err()
    {
        give_up.cancel();
        while helpers.join_next().await.is_some() {}
    }
    match served {
        Ok(()) => Ok(()),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// How the worker spends the time it has to stop: the host's deadline for
/// the whole stop sequence, less what services stopped before it used.
pub(super) struct StopBudget {
    /// Running jobs may finish until then; the rest are stopped.
    pub(super) drain_until: tokio::time::Instant,
    /// Releases and outcome writes must be done by then.
    pub(super) flush_until: tokio::time::Instant,
}

impl StopBudget {
    /// Kept back from the host's deadline for stopping the jobs still
    /// running, releasing them and writing the last outcomes: a quarter of
    /// the time left, at most two seconds.
    fn reserve(left: Duration) -> Duration {
        (left / 4).min(Duration::from_secs(2))
    }

    fn new(ctx: &Context, drain_timeout: Option<Duration>) -> Self {
        let now = tokio::time::Instant::now();
        let deadline = ctx
            .host()
            .stop_deadline()
            .unwrap_or_else(|| now + ctx.host().shutdown_timeout());
        let left = deadline.saturating_duration_since(now);
        let mut drain_until = now + (left - Self::reserve(left));
        if let Some(limit) = drain_timeout {
            drain_until = drain_until.min(now + limit);
        }
        StopBudget {
            drain_until,
            // A margin for the last log lines and the task's own exit.
            flush_until: now + left.saturating_sub(Duration::from_millis(100)),
        }
    }

    /// No time to drain: stop everything at once (the loop panicked).
    fn now(ctx: &Context) -> Self {
        let now = tokio::time::Instant::now();
        StopBudget {
            drain_until: now,
            flush_until: now + ctx.host().shutdown_timeout(),
        }
    }
}

/// The worker's loop: claim into the buffers, start buffered jobs into free
/// slots, book the ones that end, until the worker is told to stop.
async fn serve<S: Store>(worker: &Worker<S>, ctx: &Context, ready: &Readiness, d: &mut Dispatcher) {
    let config = &worker.config;
    let store = &worker.store;
    let mut backoff = Duration::from_millis(100);
    // At most one claim in flight, polled alongside the running jobs: slots
    // keep turning over (outcomes queued, buffered jobs started) while the
    // store answers, instead of the whole loop waiting a round trip per
    // claim. The claim is what feeds the buffers, so overlapping it with the
    // work they hold is what keeps a fast queue busy.
    let mut claiming = None;
    // Whether to claim when there is room: after a claim that got all it
    // asked for (there may be more), a job's end, or a wake-up; not after a
    // claim that came back short (the queue is empty: wait for work).
    let mut may_claim = true;
    let mut claim_after = tokio::time::Instant::now();
    let kinds = worker.registry.kinds();

    while !ctx.is_cancelled() {
        d.start_buffered();
        let prefetch = d.prefetch(config.prefetch);
        let backing_off = tokio::time::Instant::now() < claim_after;
        if claiming.is_none() && !backing_off && may_claim {
            let wanted = d.wanted_claims(&prefetch, config.fetch_batch);
            if !wanted.is_empty() {
                let request = ClaimRequest {
                    worker: config.id.clone(),
                    queues: wanted,
                    lease: config.lease,
                    max_suspects: d.max_suspects(),
                    kinds: Some(kinds.clone()),
                };
                claiming = Some(Box::pin(timed_claim(store.clone(), request)));
            }
        }
        let room = claiming.is_none() && !backing_off && !may_claim && d.has_room(&prefetch);
        tokio::select! {
            biased;
            _ = ctx.cancelled() => break,
            (claimed, took, asked) = async {
                match claiming.as_mut() {
                    Some(claim) => claim.await,
                    None => std::future::pending().await,
                }
            }, if claiming.is_some() => {
                claiming = None;
                d.pace.claimed(took);
                match claimed {
                    Ok(claimed) => {
                        backoff = Duration::from_millis(100);
                        ready.claims(true);
                        may_claim = claimed.len() as u64 >= asked;
                        d.buffer_claimed(claimed);
                        // Started at once, not at the next turn: a stop
                        // arriving now would otherwise release them unrun.
                        d.start_buffered();
                    }
                    Err(err) => {
                        ready.claims(false);
                        may_claim = true;
                        tracing::error!(error = %err, retry_in = ?backoff, "cannot claim jobs; backing off");
                        claim_after = tokio::time::Instant::now() + backoff;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            Some(joined) = d.next_ended(), if d.is_busy() => {
                may_claim = true;
                d.ended(joined).await;
            }
            _ = tokio::time::sleep_until(claim_after), if backing_off && claiming.is_none() => {}
            _ = store.wait_for_work(config.poll_interval), if room => may_claim = true,
        }
        if d.book_ended().await {
            may_claim = true;
        }
    }

    // A claim still in flight at shutdown: the store already shows its jobs
    // as running, so those that fit a free slot start and get the drain's
    // time to finish, as if the claim had landed a moment earlier; the rest
    // are buffered, and released by the drain.
    if let Some(claim) = claiming.take() {
        if let (Ok(claimed), _, _) = claim.await {
            d.buffer_claimed(claimed);
            d.start_buffered();
        }
    }
}

/// One claim, with how long it took and how many jobs it asked for.
async fn timed_claim<S: Store>(
    store: Arc<S>,
    request: ClaimRequest,
) -> (Result<Vec<ClaimedJob>, StoreError>, Duration, u64) {
    let asked = request.queues.iter().map(|q| u64::from(q.limit)).sum();
    let started = tokio::time::Instant::now();
    let result = store.claim(request).await;
    (result, started.elapsed(), asked)
}
