//! The worker: a host service that claims jobs in batches, runs them with
//! per-queue concurrency limits, heartbeats their leases, writes their
//! outcomes in batches, and on shutdown drains, then releases what is left.
//!
//! - [`config`]: the settings and the rules they must follow.
//! - [`serve`]: the loop that claims and starts jobs.
//! - [`dispatch`]: what a running worker holds (slots, buffers, attempts).
//! - [`attempt`]: one attempt and how its outcome is decided.
//! - [`completer`]: batched outcome writes.
//! - [`heartbeat`]: lease renewal and operator cancels.
//! - [`pauses`]: queues paused in the store, read once per poll interval.
//! - [`stop`]: how the time to stop is spent.
//! - [`drain`]: running a queue's due jobs inline, for tests.

mod attempt;
mod completer;
mod config;
mod dispatch;
mod drain;
mod heartbeat;
mod history;
mod pace;
mod pauses;
mod presence;
mod ready;
mod serve;
mod settings;
mod stop;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Job;
use super::context::Extensions;
use super::registry::Registry;
use crate::store::Store;
use crate::{BoxError, ConfigError, Context, Service};
use attempt::AttemptDeps;
use completer::Completer;
pub use config::{QueueConfig, WorkerConfig};
use dispatch::Dispatcher;
pub use drain::{DRAIN_LIMIT, DrainOutcome, Drained, DrainedJob};
use heartbeat::Running;
pub use presence::NodeConfig;
use presence::Presence;
use ready::Readiness;
use serve::serve;
use stop::StopBudget;

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
///     .register::<Ping>()
///     .queue("default", 16)
///     .queue("low", 2);
/// let mut host = steward_core::Host::builder();
/// host.service("worker", worker)?;
/// let host = host.build()?; // mistakes in the chain above are reported here
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
    /// Mistakes made while configuring, reported at `build` (and by `run`,
    /// for a worker started without a host's checks).
    problems: Vec<ConfigError>,
    /// Its node's id, taken at its first run and kept across restarts.
    node_id: Option<String>,
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
            problems: Vec::new(),
            node_id: None,
        }
    }

    /// Adds a job kind this worker runs. Registering a kind twice is a
    /// mistake reported by [`HostBuilder::build`](crate::HostBuilder::build)
    /// (see [`check`](Self::check)).
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Ping;
    /// # impl steward_core::jobs::Job for Ping {
    /// #     const KIND: &'static str = "ping";
    /// #     async fn run(self, _ctx: steward_core::jobs::JobContext) -> Result<(), steward_core::BoxError> { Ok(()) }
    /// # }
    /// # fn demo<S: steward_core::store::Store>(w: steward_core::jobs::Worker<S>) {
    /// let w = w.register::<Ping>();
    /// assert!(w.check().is_empty());
    /// let w = w.register::<Ping>();
    /// assert_eq!(w.check().len(), 1);
    /// # }
    /// ```
    pub fn register<J: Job>(mut self) -> Self {
        // The worker is the registry's sole owner until it runs, and
        // `register` takes it by value: sharing here is a bug, reported all
        // the same rather than panicking.
        let problem = match Arc::get_mut(&mut self.registry) {
            None => Some(format!(
                "`{}` registered on a worker that is running",
                J::KIND
            )),
            Some(registry) => {
                (!registry.register::<J>()).then(|| format!("`{}` is registered twice", J::KIND))
            }
        };
        if let Some(reason) = problem {
            self.problems.push(ConfigError::Invalid {
                what: "job kind",
                reason,
            });
        }
        self
    }

    /// Serves `name` with at most `concurrency` of its jobs at once. The
    /// first call replaces the default queue; queues are served in the order
    /// added. A zero concurrency or a queue given twice is a mistake
    /// reported by [`HostBuilder::build`](crate::HostBuilder::build).
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(w: steward_core::jobs::Worker<S>) {
    /// let w = w.queue("default", 16).queue("low", 0);
    /// assert_eq!(w.check()[0].to_string(), "queue `low` has concurrency 0; at least 1 task must be allowed to run");
    /// # }
    /// ```
    pub fn queue(mut self, name: impl Into<String>, concurrency: usize) -> Self {
        let name = name.into();
        if !self.custom_queues {
            self.config.queues.clear();
            self.custom_queues = true;
        }
        if concurrency == 0 {
            self.problems.push(ConfigError::ZeroConcurrency {
                what: format!("queue `{name}`"),
            });
        } else if self.config.queues.iter().any(|q| q.name == name) {
            self.problems.push(ConfigError::Invalid {
                what: "queue",
                reason: format!("`{name}` is configured twice"),
            });
        } else {
            self.config.queues.push(QueueConfig { name, concurrency });
        }
        self
    }

    /// Replaces the whole configuration (queues included). Settings that
    /// break [`WorkerConfig::validate`] are reported by
    /// [`HostBuilder::build`](crate::HostBuilder::build).
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(w: steward_core::jobs::Worker<S>) {
    /// let w = w.config(steward_core::jobs::WorkerConfig::default());
    /// # }
    /// ```
    pub fn config(mut self, config: WorkerConfig) -> Self {
        if let Err(err) = config.validate() {
            self.problems.push(err);
        }
        self.config = config;
        self.custom_queues = true;
        self
    }

    /// Every mistake made while configuring this worker, in order; empty
    /// when it is ready to run. The host calls it at
    /// [`build`](crate::HostBuilder::build) (through [`Service::check`]).
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(w: steward_core::jobs::Worker<S>) {
    /// assert!(w.check().is_empty());
    /// # }
    /// ```
    pub fn check(&self) -> Vec<ConfigError> {
        self.problems.clone()
    }

    /// The configuration as it stands: what the code set, with
    /// [`Settings`](crate::Settings) applied once the host has been built.
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(w: steward_core::jobs::Worker<S>) {
    /// let w = w.queue("mail", 2);
    /// assert_eq!(w.current_config().queues[0].concurrency, 2);
    /// # }
    /// ```
    pub fn current_config(&self) -> &WorkerConfig {
        &self.config
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
    fn check(&self) -> Vec<ConfigError> {
        Worker::check(self)
    }

    fn configure(&mut self, section: &crate::Section) -> Result<(), ConfigError> {
        self.apply_settings(section)
    }

    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        if !self.problems.is_empty() {
            return Err(ConfigError::Service {
                name: ctx.name().to_string(),
                problems: self.problems.clone(),
            }
            .into());
        }
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
        let node_id = self
            .node_id
            .get_or_insert_with(presence::next_node_id)
            .clone();
        run_worker(self, &registry, ctx, node_id).await
    }
}

async fn run_worker<S: Store>(
    worker: &Worker<S>,
    registry: &Arc<Registry>,
    ctx: &Context,
    node_id: String,
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
    let tally = history::Tally::default();
    let mut helpers = JoinSet::new();
    helpers.spawn(
        Completer {
            store: store.clone(),
            running: running.clone(),
            ready: ready.clone(),
            give_up: give_up.clone(),
            tally: tally.clone(),
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
        .instrument(span.clone()),
    );

    // Stopped after the outcome writer, so the history gets its last
    // outcomes too.
    let history_stop = CancellationToken::new();
    let mut history_writer = JoinSet::new();
    history_writer.spawn(
        history::run(
            store.clone(),
            tally,
            config.history_every,
            history_stop.clone(),
            give_up.clone().cancelled_owned(),
        )
        .instrument(span.clone()),
    );
    // Stops with the heartbeat: once the loop has ended, pauses no longer
    // matter.
    // A store that does not answer must not hold up a stop.
    let first = tokio::select! {
        read = pauses::first_read(&*store) => read,
        _ = ctx.cancelled() => Vec::new(),
    };
    let (paused_tx, paused) = watch::channel(first);
    helpers.spawn(
        pauses::watch(
            store.clone(),
            config.poll_interval,
            paused_tx,
            beat_stop.clone(),
        )
        .instrument(span.clone()),
    );
    // The node's row: one small periodic write, off the job path.
    let node_stop = CancellationToken::new();
    let leave = Arc::new(AtomicBool::new(false));
    helpers.spawn(
        Presence {
            store: store.clone(),
            id: node_id,
            queues: config.queues.clone(),
            config: config.node.clone(),
            running: running.clone(),
            host: ctx.host().clone(),
        }
        .run(node_stop.clone(), leave.clone(), give_up.clone())
        .instrument(span),
    );

    let mut dispatcher = Dispatcher::new(config, running, finish_tx, deps);
    // A panic in the loop (store code, the worker's own) must not walk away
    // from what the worker holds: it is caught here, everything is given
    // back at once, and the panic goes on to the supervisor, which restarts
    // this worker with its configuration intact.
    let served = AssertUnwindSafe(serve(worker, ctx, &ready, &mut dispatcher, paused))
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
    // A clean stop removes the node's row at once; after a panic the worker
    // restarts under the same id, so the row stays.
    leave.store(served.is_ok(), Ordering::SeqCst);
    node_stop.cancel();
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
    history_stop.cancel();
    if tokio::time::timeout_at(budget.flush_until, history_writer.join_next())
        .await
        .is_err()
    {
        give_up.cancel();
        while history_writer.join_next().await.is_some() {}
    }
    match served {
        Ok(()) => Ok(()),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
