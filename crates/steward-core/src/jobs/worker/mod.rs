//! The worker: a host service that claims jobs in batches, runs them with
//! per-queue concurrency limits, heartbeats their leases, writes their
//! outcomes in batches, and on shutdown drains, then releases what is left.
//!
//! - [`attempt`]: one attempt and how its outcome is decided.
//! - [`completer`]: batched outcome writes.
//! - [`heartbeat`]: lease renewal and operator cancels.

mod attempt;
mod completer;
mod heartbeat;
mod pace;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Job;
use super::context::Extensions;
use super::registry::Registry;
use crate::store::{ClaimRequest, ClaimedJob, Lease, QueueClaim, Store, StoreError};
use crate::{BoxError, ConfigError, Context, Service};
use attempt::{AttemptDeps, AttemptEnd, StopReason, Stopper};
use heartbeat::{Running, lock};

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
    registry: Registry,
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
            registry: Registry::default(),
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
        if !self.registry.register::<J>() {
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
            tracing::warn!("worker has no job kinds registered: every job it claims will fail");
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
        let registry = Arc::new(std::mem::take(&mut self.registry));
        let result = run_worker(self, &registry, ctx).await;
        // Keep the kinds for a restart after a failure.
        if let Ok(registry) = Arc::try_unwrap(registry) {
            self.registry = registry;
        }
        result
    }
}

/// The longest lease a worker may ask for. Leases are renewed by
/// heartbeats; a longer one only hides a dead worker's jobs for longer (and
/// far beyond it, overflows the stores' time arithmetic).
const MAX_LEASE: Duration = Duration::from_secs(24 * 3600);

/// A claimed job's slot: which queue it counts against.
struct Slot {
    queue: usize,
    lease: Lease,
    started: tokio::time::Instant,
}

async fn run_worker<S: Store>(
    worker: &Worker<S>,
    registry: &Arc<Registry>,
    ctx: &Context,
) -> Result<(), BoxError> {
    let config = &worker.config;
    let store = worker.store.clone();
    let running: Running = Arc::new(Mutex::new(HashMap::new()));
    let deps = Arc::new(AttemptDeps {
        registry: registry.clone(),
        sink: store.clone(),
        extensions: Arc::new(worker.extensions.clone()),
        grace: config.stop_grace,
    });
    let total: usize = config.queues.iter().map(|q| q.concurrency).sum();
    // Outcomes wait here while the previous batch is being written. Room
    // for a whole batch, so that a slow commit (a WAL flush on PostgreSQL)
    // lets the next batch grow instead of stalling this loop: throughput is
    // batch size over commit time. Bounded all the same: outcomes not yet
    // written are work to redo if the process dies.
    let (finish_tx, finish_rx) = mpsc::channel(completer::MAX_BATCH.max(total * 2));
    let mut helpers = JoinSet::new();
    helpers.spawn(completer::run(store.clone(), finish_rx));
    let beat_stop = CancellationToken::new();
    helpers.spawn(heartbeat::run(
        store.clone(),
        running.clone(),
        config.heartbeat_every,
        config.lease,
        beat_stop.clone(),
    ));

    let mut free: Vec<usize> = config.queues.iter().map(|q| q.concurrency).collect();
    let mut buffers: Vec<VecDeque<(ClaimedJob, Stopper)>> =
        config.queues.iter().map(|_| VecDeque::new()).collect();
    let mut jobs: JoinSet<(Slot, AttemptEnd)> = JoinSet::new();
    let mut backoff = Duration::from_millis(100);
    let mut to_release = Vec::new();
    let mut pace = pace::Pace::new(config.queues.len());
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

    while !ctx.is_cancelled() {
        start_buffered(&mut buffers, &mut free, &mut jobs, &deps);
        let prefetch: Vec<usize> = config
            .queues
            .iter()
            .enumerate()
            .map(|(i, q)| pace.prefetch(i, q.concurrency, config.prefetch))
            .collect();
        let backing_off = tokio::time::Instant::now() < claim_after;
        if claiming.is_none() && !backing_off && may_claim {
            let wanted = wanted_claims(config, &free, &buffers, &prefetch);
            if !wanted.is_empty() {
                let request = ClaimRequest {
                    worker: config.id.clone(),
                    queues: wanted,
                    lease: config.lease,
                };
                claiming = Some(Box::pin(timed_claim(store.clone(), request)));
            }
        }
        let room = claiming.is_none()
            && !backing_off
            && !may_claim
            && (0..buffers.len()).any(|i| wants_more(free[i], buffers[i].len(), prefetch[i]));
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
                pace.claimed(took);
                match claimed {
                    Ok(claimed) => {
                        backoff = Duration::from_millis(100);
                        ctx.set_ready(true);
                        may_claim = claimed.len() as u64 >= asked;
                        buffer_claimed(config, claimed, &running, &mut buffers);
                        // Started at once, not at the next turn: a stop
                        // arriving now would otherwise release them unrun.
                        start_buffered(&mut buffers, &mut free, &mut jobs, &deps);
                    }
                    Err(err) => {
                        ctx.set_ready(false);
                        may_claim = true;
                        tracing::error!(error = %err, retry_in = ?backoff, "cannot claim jobs; backing off");
                        claim_after = tokio::time::Instant::now() + backoff;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            Some(joined) = jobs.join_next(), if !jobs.is_empty() => {
                may_claim = true;
                ended(joined, &mut free, &running, &finish_tx, &mut to_release, &mut pace).await;
            }
            _ = tokio::time::sleep_until(claim_after), if backing_off && claiming.is_none() => {}
            _ = store.wait_for_work(config.poll_interval), if room => may_claim = true,
        }
        while let Some(joined) = jobs.try_join_next() {
            may_claim = true;
            ended(
                joined,
                &mut free,
                &running,
                &finish_tx,
                &mut to_release,
                &mut pace,
            )
            .await;
        }
    }

    // A claim still in flight at shutdown: the store already shows its jobs
    // as running, so those that fit a free slot start and get the drain's
    // time to finish, as if the claim had landed a moment earlier; the rest
    // join the buffered ones below and are released.
    if let Some(claim) = claiming.take() {
        if let (Ok(claimed), _, _) = claim.await {
            buffer_claimed(config, claimed, &running, &mut buffers);
            start_buffered(&mut buffers, &mut free, &mut jobs, &deps);
        }
    }

    // Jobs waiting in the prefetch buffers never started: release them now.
    for buffer in &mut buffers {
        for (job, _) in buffer.drain(..) {
            lock(&running).remove(&job.lease.id);
            to_release.push(job.lease);
        }
    }

    drain(
        worker,
        ctx,
        &mut jobs,
        &mut free,
        &running,
        &finish_tx,
        &mut to_release,
    )
    .await;
    beat_stop.cancel();
    drop(finish_tx);
    while let Some(result) = helpers.join_next().await {
        if let Err(err) = result {
            tracing::error!(error = %err, "worker helper task failed");
        }
    }
    Ok(())
}

/// What to claim for each queue that wants more (see [`wants_more`]): room
/// for its free slots and its prefetch, at most a fetch batch.
fn wanted_claims(
    config: &WorkerConfig,
    free: &[usize],
    buffers: &[VecDeque<(ClaimedJob, Stopper)>],
    prefetch: &[usize],
) -> Vec<QueueClaim> {
    config
        .queues
        .iter()
        .enumerate()
        .filter_map(|(i, q)| {
            if !wants_more(free[i], buffers[i].len(), prefetch[i]) {
                return None;
            }
            let room = (free[i] + prefetch[i]).saturating_sub(buffers[i].len());
            let limit = u32::try_from(room)
                .unwrap_or(u32::MAX)
                .min(config.fetch_batch);
            (limit > 0).then(|| QueueClaim {
                queue: q.name.clone(),
                limit,
            })
        })
        .collect()
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

/// Puts claimed jobs in their queues' buffers and lists them as running
/// (so they are heartbeated, and released if never started).
fn buffer_claimed(
    config: &WorkerConfig,
    claimed: Vec<ClaimedJob>,
    running: &Running,
    buffers: &mut [VecDeque<(ClaimedJob, Stopper)>],
) {
    let mut running = lock(running);
    for job in claimed {
        let Some(queue) = config.queues.iter().position(|q| q.name == job.queue) else {
            continue;
        };
        let stopper = Stopper::new();
        running.insert(job.lease.id, (job.lease, stopper.clone()));
        buffers[queue].push_back((job, stopper));
    }
}

/// Whether a queue should claim now: when a slot is free and nothing is
/// buffered for it, or when its prefetch buffer is down to half. Claiming
/// every time one job ends would cost a store round trip per job; refilling
/// at half keeps claims large while the buffer never runs dry.
fn wants_more(free: usize, buffered: usize, prefetch: usize) -> bool {
    if buffered >= free + prefetch {
        return false;
    }
    (free > 0 && buffered == 0) || buffered <= prefetch / 2
}

/// Starts buffered jobs into free slots.
fn start_buffered(
    buffers: &mut [VecDeque<(ClaimedJob, Stopper)>],
    free: &mut [usize],
    jobs: &mut JoinSet<(Slot, AttemptEnd)>,
    deps: &Arc<AttemptDeps>,
) {
    for (queue, buffer) in buffers.iter_mut().enumerate() {
        while free[queue] > 0 {
            let Some((job, stopper)) = buffer.pop_front() else {
                break;
            };
            free[queue] -= 1;
            let lease = job.lease;
            let deps = deps.clone();
            let started = tokio::time::Instant::now();
            // Inherits the worker service, so a panicking job is known to be
            // caught (by its attempt) rather than counted as unsupervised.
            jobs.spawn(crate::poll_mark::inherit(async move {
                let end = attempt::run_guarded(job, stopper, deps).await;
                (
                    Slot {
                        queue,
                        lease,
                        started,
                    },
                    end,
                )
            }));
        }
    }
}

/// Books an ended attempt: frees its slot and queues its outcome.
async fn ended(
    joined: Result<(Slot, AttemptEnd), tokio::task::JoinError>,
    free: &mut [usize],
    running: &Running,
    finish_tx: &mpsc::Sender<crate::store::Finish>,
    to_release: &mut Vec<Lease>,
    pace: &mut pace::Pace,
) {
    let Ok((slot, end)) = joined else {
        // Attempt tasks catch the job's panics; only an abort lands here, and
        // aborted attempts are released by `drain`.
        return;
    };
    free[slot.queue] += 1;
    pace.ran(slot.queue, slot.started.elapsed());
    lock(running).remove(&slot.lease.id);
    match end {
        AttemptEnd::Finish(finish) => {
            if finish_tx.send(finish).await.is_err() {
                tracing::error!(job = %slot.lease.id, "outcome writer is gone; the job will be rescued");
            }
        }
        AttemptEnd::Release(lease) => to_release.push(lease),
        AttemptEnd::Nothing => {}
    }
}

/// Shutdown: stop claiming, let running jobs finish within the drain
/// timeout, then stop the rest and release them at once as interrupted.
#[allow(clippy::too_many_arguments)]
async fn drain<S: Store>(
    worker: &Worker<S>,
    ctx: &Context,
    jobs: &mut JoinSet<(Slot, AttemptEnd)>,
    free: &mut [usize],
    running: &Running,
    finish_tx: &mpsc::Sender<crate::store::Finish>,
    to_release: &mut Vec<Lease>,
) {
    // Job times seen while draining inform nothing any more.
    let mut pace = pace::Pace::new(free.len());
    let budget = worker.config.drain_timeout.unwrap_or_else(|| {
        ctx.host()
            .shutdown_timeout()
            .saturating_sub(Duration::from_secs(2))
    });
    if !jobs.is_empty() {
        tracing::info!(running = jobs.len(), budget = ?budget, "worker stopping: letting running jobs finish");
    }
    let deadline = tokio::time::Instant::now() + budget;
    while !jobs.is_empty() {
        match tokio::time::timeout_at(deadline, jobs.join_next()).await {
            Ok(Some(joined)) => {
                ended(joined, free, running, finish_tx, to_release, &mut pace).await
            }
            Ok(None) => break,
            Err(_) => break,
        }
    }
    if !jobs.is_empty() {
        tracing::warn!(
            running = jobs.len(),
            "drain timeout reached: stopping and releasing the jobs still running"
        );
        for (_, stopper) in lock(running).values() {
            stopper.stop(StopReason::Shutdown);
        }
        // Each attempt returns within its stop grace; wait a little longer.
        let grace = worker.config.stop_grace + Duration::from_millis(500);
        let cut_off = tokio::time::Instant::now() + grace;
        while !jobs.is_empty() {
            match tokio::time::timeout_at(cut_off, jobs.join_next()).await {
                Ok(Some(joined)) => {
                    ended(joined, free, running, finish_tx, to_release, &mut pace).await
                }
                _ => break,
            }
        }
        jobs.abort_all();
        while jobs.join_next().await.is_some() {}
        // Whatever is still listed was aborted: release it too.
        to_release.extend(lock(running).drain().map(|(_, (lease, _))| lease));
    }
    if !to_release.is_empty() {
        let leases = std::mem::take(to_release);
        match worker.store.release(leases.clone()).await {
            Ok(n) => tracing::info!(
                released = n,
                "released unfinished jobs as interrupted; they will run again"
            ),
            Err(err) => tracing::error!(
                error = %err,
                jobs = leases.len(),
                "cannot release unfinished jobs; they will be rescued when their leases expire"
            ),
        }
    }
}
