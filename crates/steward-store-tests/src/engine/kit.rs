//! What the engine cases share: a running worker on a fresh store, job
//! types that record what happened, and polling with generous patience.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use steward_core::jobs::{
    Client, Job, JobContext, JobControl, JobOptions, Maintenance, QueueConfig, RetryPolicy, Worker,
    WorkerConfig,
};
use steward_core::store::{JobId, JobRecord, JobState, Store};
use steward_core::{BoxError, ExitStatus, Host, HostBuilder, HostHandle};

use crate::Harness;

/// How long to wait for something that should happen soon.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A worker's settings serving the `default` queue with `concurrency`
/// slots, the rest defaults: the start of most cases' settings.
///
/// ```
/// use steward_store_tests::engine::one_queue;
/// let config = steward_core::jobs::WorkerConfig { prefetch: 0, ..one_queue(2) };
/// assert_eq!(config.queues[0].concurrency, 2);
/// ```
pub fn one_queue(concurrency: usize) -> WorkerConfig {
    WorkerConfig {
        queues: vec![QueueConfig {
            name: "default".into(),
            concurrency,
        }],
        ..WorkerConfig::default()
    }
}

/// What jobs saw, shared through the worker's state.
#[derive(Default)]
pub struct Log {
    /// Free-form events, in order.
    pub events: Mutex<Vec<String>>,
    /// Jobs running right now, and the most seen at once.
    pub in_flight: Mutex<(usize, usize)>,
}

impl Log {
    /// Records an event.
    pub fn push(&self, event: impl Into<String>) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.into());
    }
    /// The events so far.
    pub fn events(&self) -> Vec<String> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    /// The most jobs seen running at once.
    pub fn max_in_flight(&self) -> usize {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).1
    }
    fn enter(&self) {
        let mut f = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        f.0 += 1;
        f.1 = f.1.max(f.0);
    }
    fn leave(&self) {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).0 -= 1;
    }
}

fn log(ctx: &JobContext) -> &Log {
    ctx.state::<Arc<Log>>().expect("the kit registers a Log")
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy::exponential(Duration::from_millis(50), Duration::from_millis(200), 0.0)
}

/// Records `tag` and completes.
#[derive(Serialize, Deserialize)]
pub struct Record {
    /// What to record.
    pub tag: String,
}

impl Job for Record {
    const KIND: &'static str = "record";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        log(&ctx).push(self.tag);
        Ok(())
    }
}

/// Fails its first `times` attempts with a chained error.
#[derive(Serialize, Deserialize)]
pub struct Flaky {
    /// Attempts that fail.
    pub times: u32,
}

impl Job for Flaky {
    const KIND: &'static str = "flaky";
    fn options() -> JobOptions {
        JobOptions {
            retry: fast_retry(),
            max_attempts: 3,
            ..JobOptions::default()
        }
    }
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        log(&ctx).push(format!("attempt {}", ctx.attempt()));
        if ctx.attempt() <= self.times {
            let cause = std::io::Error::other("connection refused");
            return Err(Box::new(Outer(cause)));
        }
        Ok(())
    }
}

/// An error with a source, to see the chain kept.
#[derive(Debug)]
pub struct Outer(std::io::Error);
impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("calling upstream failed")
    }
}
impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Panics.
#[derive(Serialize, Deserialize)]
pub struct Boom {}

impl Job for Boom {
    const KIND: &'static str = "boom";
    fn options() -> JobOptions {
        JobOptions {
            max_attempts: 1,
            ..JobOptions::default()
        }
    }
    async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
        panic!("boom goes the job");
    }
}

/// Sleeps `ms`, counting itself in flight; ends early when told to stop
/// unless `stubborn`.
#[derive(Serialize, Deserialize)]
pub struct Nap {
    /// How long.
    pub ms: u64,
    /// Ignore the token.
    pub stubborn: bool,
}

impl Job for Nap {
    const KIND: &'static str = "nap";
    fn options() -> JobOptions {
        JobOptions {
            retry: fast_retry(),
            max_attempts: 2,
            ..JobOptions::default()
        }
    }
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        let log = log(&ctx);
        log.enter();
        let nap = tokio::time::sleep(Duration::from_millis(self.ms));
        let stopped = if self.stubborn {
            nap.await;
            false
        } else {
            tokio::select! {
                _ = nap => false,
                _ = ctx.token().cancelled() => true,
            }
        };
        log.leave();
        if stopped {
            log.push(format!("nap {} stopped", ctx.id()));
            return Err("told to stop".into());
        }
        log.push(format!("nap {} done", ctx.id()));
        Ok(())
    }
}

/// Five steps, checkpointed; the first attempt fails after step `fail_after`.
#[derive(Serialize, Deserialize)]
pub struct Steps {
    /// The step after which attempt 1 fails.
    pub fail_after: u32,
}

impl Job for Steps {
    const KIND: &'static str = "steps";
    fn options() -> JobOptions {
        JobOptions {
            retry: fast_retry(),
            ..JobOptions::default()
        }
    }
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        let mut done: u32 = ctx.checkpoint()?.unwrap_or(0);
        while done < 5 {
            done += 1;
            log(&ctx).push(format!("step {done}"));
            ctx.save_checkpoint(&done).await?;
            if ctx.attempt() == 1 && done == self.fail_after {
                return Err("crashed mid-way".into());
            }
        }
        Ok(())
    }
}

/// Asks for something other than success: `snooze`, `retry_later` or `cancel`.
#[derive(Serialize, Deserialize)]
pub struct Ask {
    /// Which.
    pub what: String,
}

impl Job for Ask {
    const KIND: &'static str = "ask";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        let log = log(&ctx);
        let runs = log.events().iter().filter(|e| e.starts_with("ask")).count();
        log.push(format!("ask {} attempt {}", self.what, ctx.attempt()));
        match (self.what.as_str(), runs) {
            ("snooze", 0) => Err(JobControl::Snooze(Duration::from_millis(100)).into()),
            ("retry_later", 0) => Err(JobControl::RetryAfter {
                after: Duration::from_secs(3600),
                source: "upstream says come back in an hour".into(),
            }
            .into()),
            ("cancel", _) => Err(JobControl::Cancel("nothing left to do".into()).into()),
            ("nul", _) => Err("bad \0 byte".into()),
            _ => Ok(()),
        }
    }
}

/// A fresh store, and the database it lives in (kept alive with it).
pub struct Bench<H: Harness> {
    /// The store.
    pub store: Arc<H::Store>,
    /// The client.
    pub client: Client<H::Store>,
    /// What the jobs saw.
    pub log: Arc<Log>,
    _database: H::Database,
}

impl<H: Harness> Bench<H> {
    /// A fresh migrated store.
    pub async fn new(harness: &H) -> Self {
        let database = harness.database().await;
        let store = Arc::new(harness.connect(&database).await);
        store.migrate().await.expect("migrate a fresh store");
        Bench {
            client: Client::new(store.clone()),
            store,
            log: Arc::new(Log::default()),
            _database: database,
        }
    }

    /// Another, independent migrated handle on the same database (as
    /// another process would open it).
    pub async fn another_handle(&self, harness: &H) -> Arc<H::Store> {
        let store = Arc::new(harness.connect(&self._database).await);
        store.migrate().await.expect("migrate a second handle");
        store
    }

    /// A worker config with quick heartbeats, for the cases.
    pub fn config(&self, queues: &[(&str, usize)]) -> WorkerConfig {
        WorkerConfig {
            queues: queues
                .iter()
                .map(|(q, n)| QueueConfig {
                    name: q.to_string(),
                    concurrency: *n,
                })
                .collect(),
            lease: Duration::from_secs(5),
            heartbeat_every: Duration::from_millis(100),
            poll_interval: Duration::from_millis(200),
            stop_grace: Duration::from_millis(300),
            prefetch: 0,
            ..WorkerConfig::default()
        }
    }

    /// The database this store lives in (for [`Harness`] hooks).
    pub fn database(&self) -> &H::Database {
        &self._database
    }

    /// Starts a host running a worker with every kit job registered.
    pub fn start(&self, config: WorkerConfig, shutdown_timeout: Duration) -> Running {
        let worker = Worker::new(self.store.clone())
            .register::<Record>()
            .register::<Flaky>()
            .register::<Boom>()
            .register::<Nap>()
            .register::<Steps>()
            .register::<Ask>()
            .config(config)
            .state(self.log.clone());
        host(|builder| {
            builder.shutdown_timeout(shutdown_timeout);
            builder
                .service("worker", worker)
                .expect("register the worker");
        })
    }

    /// The job's record.
    pub async fn job(&self, id: JobId) -> JobRecord {
        self.store
            .job(id)
            .await
            .expect("read the job")
            .expect("the job exists")
    }

    /// Waits until the job is in `state`.
    pub async fn wait_state(&self, id: JobId, state: JobState) -> JobRecord {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let job = self.job(id).await;
            if job.state == state {
                return job;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {id} never reached {state}: {job:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A maintenance service over this store.
    pub fn maintenance(&self) -> Maintenance<H::Store> {
        Maintenance::new(self.store.clone())
    }
}

/// A running worker host.
pub struct Running {
    /// Its handle.
    pub handle: HostHandle,
    task: tokio::task::JoinHandle<ExitStatus>,
}

impl Running {
    /// Shuts it down and returns how it ended.
    pub async fn stop(self) -> ExitStatus {
        self.handle.shutdown();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the host stopped in time")
            .expect("the host task ran")
    }
}

/// Starts a host (no signal handling) after `setup` registered its services
/// (and set its shutdown timeout, if the case needs one).
pub fn host(setup: impl FnOnce(&mut HostBuilder)) -> Running {
    let mut builder = Host::builder();
    builder.handle_signals(false);
    setup(&mut builder);
    let host = builder.build().expect("build the host");
    let handle = host.handle();
    Running {
        handle,
        task: tokio::spawn(host.run()),
    }
}

/// How long [`until`] waits.
pub const UNTIL: Duration = Duration::from_secs(20);

/// Polls `check` every 10 ms until it holds; panics naming `what` after
/// [`UNTIL`].
pub async fn until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let started = tokio::time::Instant::now();
    while !check().await {
        assert!(started.elapsed() < UNTIL, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
