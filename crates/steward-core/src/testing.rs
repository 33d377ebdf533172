//! Helpers for testing your own jobs and services without sleeping: run a
//! job's `run` with a test context, look at what was enqueued, start and
//! stop a host in one call. With [`Worker::drain`](crate::jobs::Worker::drain)
//! (run a queue's due jobs inline) and
//! [`Store::time_travel`](crate::store::Store::time_travel) (make a delay,
//! a retry's backoff or a schedule's tick pass at once), a test never
//! waits for a clock. `steward::testing` adds temporary stores.
//!
//! ```
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Serialize, Deserialize)] struct Greet { name: String }
//! # impl steward_core::jobs::Job for Greet {
//! #     const KIND: &'static str = "greet";
//! #     async fn run(self, _ctx: steward_core::jobs::JobContext) -> Result<(), steward_core::BoxError> {
//! #         if self.name.is_empty() { return Err("no name".into()); } Ok(())
//! #     }
//! # }
//! # tokio::runtime::Runtime::new().expect("a runtime").block_on(async {
//! use steward_core::testing::TestRun;
//! let outcome = TestRun::new().run(Greet { name: String::new() }).await;
//! assert_eq!(outcome.error().as_deref(), Some("no name"));
//! # });
//! ```

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::jobs::context::{Attempt, CheckpointSink, Extensions};
use crate::jobs::{Job, JobContext, JobControl};
use crate::store::{JobId, JobQuery, JobRecord, JobState, Lease, LeaseToken, Store, StoreError};
use crate::sync::LockExt;
use crate::{BoxError, ConfigError, ExitStatus, HostBuilder, HostHandle};

/// One run of a job's `run`, outside any worker: the context's attempt,
/// checkpoint, state and cancellation are the test's to set.
///
/// ```
/// let run = steward_core::testing::TestRun::new().attempt(3).max_attempts(3).state(42_u32);
/// ```
pub struct TestRun {
    attempt: u32,
    max_attempts: u32,
    checkpoint: Option<String>,
    extensions: Extensions,
    cancelled: bool,
    shutting_down: bool,
}

impl Default for TestRun {
    fn default() -> Self {
        TestRun {
            attempt: 1,
            max_attempts: 25,
            checkpoint: None,
            extensions: Extensions::default(),
            cancelled: false,
            shutting_down: false,
        }
    }
}

impl TestRun {
    /// The first of 25 attempts, no checkpoint, no state, not cancelled.
    ///
    /// ```
    /// let run = steward_core::testing::TestRun::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Which attempt this is (from 1).
    ///
    /// ```
    /// let run = steward_core::testing::TestRun::new().attempt(2);
    /// ```
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }

    /// How many attempts the job has.
    ///
    /// ```
    /// let run = steward_core::testing::TestRun::new().max_attempts(5);
    /// ```
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// The checkpoint an earlier attempt saved.
    ///
    /// ```
    /// let run = steward_core::testing::TestRun::new().checkpoint(&7_u32);
    /// ```
    pub fn checkpoint<T: Serialize>(mut self, state: &T) -> Self {
        // A value that does not serialize is the test's own mistake.
        self.checkpoint = Some(serde_json::to_string(state).unwrap_or_else(|err| {
            panic!("TestRun::checkpoint: the state does not serialize: {err}")
        }));
        self
    }

    /// Shared state, as `Worker::state` gives it.
    ///
    /// ```
    /// let run = steward_core::testing::TestRun::new().state(String::from("https://example.com"));
    /// ```
    pub fn state<T: Send + Sync + 'static>(mut self, value: T) -> Self {
        self.extensions.insert(value);
        self
    }

    /// The job is cancelled before it starts (by an operator or a
    /// timeout): its `ctx.token()` has fired.
    ///
    /// ```
    /// let run = steward_core::testing::TestRun::new().cancelled();
    /// ```
    pub fn cancelled(mut self) -> Self {
        self.cancelled = true;
        self
    }

    /// The worker is stopping: `ctx.is_shutting_down()` is true.
    ///
    /// ```
    /// let run = steward_core::testing::TestRun::new().shutting_down();
    /// ```
    pub fn shutting_down(mut self) -> Self {
        self.shutting_down = true;
        self
    }

    /// Runs `job` once. It goes through JSON first, as a stored job does,
    /// so a payload that does not round-trip fails here (with a panic that
    /// says so), not in production.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Noop;
    /// # impl steward_core::jobs::Job for Noop {
    /// #     const KIND: &'static str = "noop";
    /// #     async fn run(self, _ctx: steward_core::jobs::JobContext) -> Result<(), steward_core::BoxError> { Ok(()) }
    /// # }
    /// # async fn demo() {
    /// let outcome = steward_core::testing::TestRun::new().run(Noop).await;
    /// assert!(outcome.is_ok());
    /// # }
    /// ```
    pub async fn run<J: Job>(self, job: J) -> TestOutcome {
        let json = serde_json::to_string(&job)
            .unwrap_or_else(|err| panic!("a `{}` job does not serialize: {err}", J::KIND));
        let job: J = serde_json::from_str(&json).unwrap_or_else(|err| {
            panic!(
                "a `{}` job does not read back what it wrote ({json}): {err}",
                J::KIND
            )
        });
        let sink = Arc::new(Saved::default());
        let token = CancellationToken::new();
        let shutting_down = CancellationToken::new();
        if self.cancelled {
            token.cancel();
        }
        if self.shutting_down {
            shutting_down.cancel();
        }
        let ctx = JobContext::new(
            Attempt {
                lease: Lease {
                    id: JobId(0),
                    token: LeaseToken(0),
                },
                kind: J::KIND.to_string(),
                attempt: self.attempt,
                max_attempts: self.max_attempts,
                checkpoint: self.checkpoint,
            },
            token,
            shutting_down,
            tracing::Span::current(),
            sink.clone(),
            Arc::new(self.extensions),
        );
        let result = job.run(ctx).await;
        let checkpoints = sink.0.lock_or_recover().clone();
        TestOutcome {
            result,
            checkpoints,
        }
    }
}

/// Checkpoints saved during a [`TestRun`], in order.
#[derive(Default)]
struct Saved(Mutex<Vec<String>>);

impl CheckpointSink for Saved {
    fn save(&self, _lease: Lease, state: String) -> BoxFuture<'_, Result<(), StoreError>> {
        self.0.lock_or_recover().push(state);
        Box::pin(async { Ok(()) })
    }
}

/// How a [`TestRun`] ended.
///
/// ```
/// fn passed(o: &steward_core::testing::TestOutcome) -> bool { o.is_ok() }
/// ```
pub struct TestOutcome {
    /// What `run` returned.
    pub result: Result<(), BoxError>,
    /// Every checkpoint it saved, as JSON, in order.
    pub checkpoints: Vec<String>,
}

impl TestOutcome {
    /// True if `run` returned `Ok`.
    ///
    /// ```
    /// fn passed(o: &steward_core::testing::TestOutcome) -> bool { o.is_ok() }
    /// ```
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }

    /// The error `run` returned, as text (its whole chain), if any.
    ///
    /// ```
    /// fn why(o: &steward_core::testing::TestOutcome) -> Option<String> { o.error() }
    /// ```
    pub fn error(&self) -> Option<String> {
        self.result
            .as_ref()
            .err()
            .map(|e| crate::error::error_chain(e.as_ref()))
    }

    /// The control `run` returned (snooze, retry after, cancel), if any.
    ///
    /// ```
    /// use steward_core::jobs::JobControl;
    /// fn snoozed(o: &steward_core::testing::TestOutcome) -> bool {
    ///     matches!(o.control(), Some(JobControl::Snooze(_)))
    /// }
    /// ```
    pub fn control(&self) -> Option<&JobControl> {
        self.result.as_ref().err()?.downcast_ref::<JobControl>()
    }

    /// The last checkpoint saved, read as `T`.
    ///
    /// ```
    /// fn step(o: &steward_core::testing::TestOutcome) -> Option<u32> { o.last_checkpoint() }
    /// ```
    pub fn last_checkpoint<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_str(self.checkpoints.last()?).ok()
    }
}

/// A job waiting in a store (scheduled, available or retryable), read back
/// as its type.
///
/// ```
/// fn queue<J>(e: &steward_core::testing::EnqueuedJob<J>) -> &str { &e.record.queue }
/// ```
#[derive(Debug, Clone)]
pub struct EnqueuedJob<J> {
    /// The job as stored.
    pub record: JobRecord,
    /// Its payload as the job type.
    pub job: J,
}

/// Every waiting job of kind `J` (scheduled, available or retryable),
/// oldest first, read as `J`. A payload that does not read as `J` is an
/// error naming the job.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct Email { to: String }
/// # impl steward_core::jobs::Job for Email {
/// #     const KIND: &'static str = "email";
/// #     async fn run(self, _ctx: steward_core::jobs::JobContext) -> Result<(), steward_core::BoxError> { Ok(()) }
/// # }
/// # async fn demo<S: steward_core::store::Store>(store: &S) -> Result<(), steward_core::store::StoreError> {
/// let emails = steward_core::testing::enqueued::<Email, _>(store).await?;
/// assert!(emails.iter().any(|e| e.job.to == "a@example.com"));
/// # Ok(()) }
/// ```
pub async fn enqueued<J: Job, S: Store>(store: &S) -> Result<Vec<EnqueuedJob<J>>, StoreError> {
    let mut query = JobQuery::default()
        .kind(J::KIND)
        .states([
            JobState::Scheduled,
            JobState::Available,
            JobState::Retryable,
        ])
        .limit(crate::store::MAX_PAGE);
    let mut out = Vec::new();
    loop {
        let page = store.jobs(query.clone()).await?;
        let Some(last) = page.last().map(|r| r.id) else {
            return Ok(out);
        };
        for record in page {
            let job = serde_json::from_str(&record.payload).map_err(|err| StoreError::Invalid {
                message: format!(
                    "job {} of kind `{}` does not read as its type: {err}",
                    record.id,
                    J::KIND
                ),
            })?;
            out.push(EnqueuedJob { record, job });
        }
        query = query.after(last);
    }
}

/// The first waiting job of kind `J` for which `matches` is true; panics,
/// listing what is waiting, if there is none. The filter sees the job and
/// its record (queue, priority, `run_at`, attempts).
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Serialize, Deserialize)] struct Email { to: String }
/// # impl steward_core::jobs::Job for Email {
/// #     const KIND: &'static str = "email";
/// #     async fn run(self, _ctx: steward_core::jobs::JobContext) -> Result<(), steward_core::BoxError> { Ok(()) }
/// # }
/// # async fn demo<S: steward_core::store::Store>(store: &S) {
/// use steward_core::testing::assert_enqueued;
/// assert_enqueued::<Email, _>(store, |e| e.job.to == "a@example.com" && e.record.queue == "mail").await;
/// # }
/// ```
pub async fn assert_enqueued<J, S>(
    store: &S,
    matches: impl Fn(&EnqueuedJob<J>) -> bool,
) -> EnqueuedJob<J>
where
    J: Job + std::fmt::Debug,
    S: Store,
{
    let waiting = waiting::<J, S>(store).await;
    let listing: Vec<String> = waiting
        .iter()
        .map(|e| format!("  job {} in `{}`: {:?}", e.record.id, e.record.queue, e.job))
        .collect();
    waiting.into_iter().find(|e| matches(e)).unwrap_or_else(|| {
        panic!(
            "no waiting `{}` job matches; waiting:\n{}",
            J::KIND,
            if listing.is_empty() {
                "  (none)".to_string()
            } else {
                listing.join("\n")
            }
        )
    })
}

/// [`enqueued`], for the assertions: a store that cannot answer fails the
/// test.
async fn waiting<J: Job, S: Store>(store: &S) -> Vec<EnqueuedJob<J>> {
    enqueued::<J, S>(store)
        .await
        .unwrap_or_else(|err| panic!("cannot list the `{}` jobs: {err}", J::KIND))
}

/// Panics if a waiting job of kind `J` matches `matches`, naming it.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Serialize, Deserialize)] struct Email { to: String }
/// # impl steward_core::jobs::Job for Email {
/// #     const KIND: &'static str = "email";
/// #     async fn run(self, _ctx: steward_core::jobs::JobContext) -> Result<(), steward_core::BoxError> { Ok(()) }
/// # }
/// # async fn demo<S: steward_core::store::Store>(store: &S) {
/// steward_core::testing::assert_not_enqueued::<Email, _>(store, |_| true).await;
/// # }
/// ```
pub async fn assert_not_enqueued<J, S>(store: &S, matches: impl Fn(&EnqueuedJob<J>) -> bool)
where
    J: Job + std::fmt::Debug,
    S: Store,
{
    let waiting = waiting::<J, S>(store).await;
    if let Some(e) = waiting.iter().find(|e| matches(e)) {
        panic!(
            "a waiting `{}` job matches: job {} in `{}`: {:?}",
            J::KIND,
            e.record.id,
            e.record.queue,
            e.job
        );
    }
}

/// Builds the host, starts it, runs `test` with its handle, then stops it
/// and returns what `test` returned and how the host exited. A host that
/// does not build is an error naming every mistake.
///
/// ```
/// # async fn demo() -> Result<(), steward_core::ConfigError> {
/// let mut builder = steward_core::Host::builder();
/// builder.handle_signals(false);
/// let (services, exit) = steward_core::testing::with_host(builder, async |handle| {
///     handle.status().services.len()
/// }).await?;
/// assert_eq!(exit, steward_core::ExitStatus::Clean);
/// # Ok(()) }
/// ```
pub async fn with_host<T>(
    builder: HostBuilder,
    test: impl AsyncFnOnce(HostHandle) -> T,
) -> Result<(T, ExitStatus), ConfigError> {
    let host = builder.build()?;
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    let out = test(handle.clone()).await;
    handle.shutdown();
    let exit = run
        .await
        .unwrap_or_else(|err| panic!("the host's task failed: {err}"));
    Ok((out, exit))
}
