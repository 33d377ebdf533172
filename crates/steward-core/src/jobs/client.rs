//! Enqueueing typed jobs, and the operator's handle on them.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Job;
use crate::store::{
    CancelResult, Enqueued, JobId, JobRecord, NewJob, StateCounts, Store, StoreError, UniqueScope,
};

/// Per-enqueue options; anything left `None` takes the kind's default.
///
/// ```
/// use std::time::Duration;
/// use steward_core::jobs::EnqueueOptions;
/// use steward_core::store::UniqueScope;
/// let opts = EnqueueOptions::default()
///     .after(Duration::from_secs(60))
///     .queue("mail")
///     .priority(-1)
///     .unique("welcome:42", UniqueScope::Active);
/// ```
#[derive(Debug, Clone, Default)]
pub struct EnqueueOptions {
    /// Queue override.
    pub queue: Option<String>,
    /// Priority override (lower runs first).
    pub priority: Option<i16>,
    /// Max attempts override.
    pub max_attempts: Option<u32>,
    /// Run no earlier than this absolute time.
    pub run_at: Option<DateTime<Utc>>,
    /// Run no earlier than this long after the store's now (its clock, not
    /// this process's). Not together with `run_at`: the store refuses a job
    /// with both.
    pub delay: Option<Duration>,
    /// Per-attempt timeout override.
    pub timeout: Option<Duration>,
    /// Uniqueness key and scope.
    pub unique: Option<(String, UniqueScope)>,
}

impl EnqueueOptions {
    /// Sets the queue.
    ///
    /// ```
    /// let o = steward_core::jobs::EnqueueOptions::default().queue("low");
    /// ```
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Sets the priority (lower runs first).
    ///
    /// ```
    /// let o = steward_core::jobs::EnqueueOptions::default().priority(-10);
    /// ```
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Sets the number of attempts allowed.
    ///
    /// ```
    /// let o = steward_core::jobs::EnqueueOptions::default().max_attempts(3);
    /// ```
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n);
        self
    }

    /// Runs no earlier than `at` (not with [`after`](Self::after): the
    /// store refuses a job with both).
    ///
    /// ```
    /// let o = steward_core::jobs::EnqueueOptions::default().at(chrono::Utc::now());
    /// ```
    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }

    /// Runs no earlier than `delay` after the store's now: the store's
    /// clock decides, not this process's (not with [`at`](Self::at): the
    /// store refuses a job with both).
    ///
    /// ```
    /// let o = steward_core::jobs::EnqueueOptions::default().after(std::time::Duration::from_secs(5));
    /// assert_eq!(o.delay, Some(std::time::Duration::from_secs(5)));
    /// ```
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Sets a per-attempt timeout.
    ///
    /// ```
    /// let o = steward_core::jobs::EnqueueOptions::default().timeout(std::time::Duration::from_secs(30));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Makes the job unique by `key` within `scope`: enqueueing a duplicate
    /// returns the existing job's id.
    ///
    /// ```
    /// use steward_core::store::UniqueScope;
    /// let o = steward_core::jobs::EnqueueOptions::default().unique("sync:7", UniqueScope::Queued);
    /// ```
    pub fn unique(mut self, key: impl Into<String>, scope: UniqueScope) -> Self {
        self.unique = Some((key.into(), scope));
        self
    }
}

/// Why an enqueue failed.
///
/// ```
/// let e = steward_core::jobs::EnqueueError::Store(steward_core::store::StoreError::NotMigrated { store: "schema `app`".into() });
/// assert!(e.to_string().contains("schema"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnqueueError {
    /// The job does not serialize to JSON.
    #[error("job of kind `{kind}` does not serialize: {source}")]
    Serialize {
        /// The job's kind.
        kind: &'static str,
        /// serde's error.
        #[source]
        source: serde_json::Error,
    },
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Turns a typed job and its options into the row a store inserts. Stores'
/// transactional enqueue functions take the result.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct Ping;
/// # impl steward_core::jobs::Job for Ping {
/// #     const KIND: &'static str = "ping";
/// #     async fn run(self, _ctx: steward_core::jobs::JobContext) -> Result<(), steward_core::BoxError> { Ok(()) }
/// # }
/// use steward_core::jobs::{new_job, EnqueueOptions};
/// # fn main() -> Result<(), steward_core::jobs::EnqueueError> {
/// let row = new_job(&Ping, &EnqueueOptions::default())?;
/// assert_eq!(row.kind, "ping");
/// // The kind's payload version goes with it, for the worker that decodes it.
/// assert_eq!(row.payload_version, 1);
/// // A delay stays a delay: the store adds it to its own clock.
/// let later = EnqueueOptions::default().after(std::time::Duration::from_secs(60));
/// let row = new_job(&Ping, &later)?;
/// assert_eq!((row.run_at, row.delay), (None, Some(std::time::Duration::from_secs(60))));
/// # Ok(()) }
/// ```
pub fn new_job<J: Job>(job: &J, options: &EnqueueOptions) -> Result<NewJob, EnqueueError> {
    let defaults = J::options();
    let payload = serde_json::to_string(job).map_err(|source| EnqueueError::Serialize {
        kind: J::KIND,
        source,
    })?;
    Ok(NewJob {
        kind: J::KIND.to_string(),
        payload,
        payload_version: J::VERSION,
        queue: options.queue.clone().unwrap_or(defaults.queue),
        priority: options.priority.unwrap_or(defaults.priority),
        max_attempts: options.max_attempts.unwrap_or(defaults.max_attempts),
        run_at: options.run_at,
        delay: options.delay,
        timeout: options.timeout.or(defaults.timeout),
        unique: options.unique.clone(),
    })
}

/// Enqueues jobs and manages them: the handle application code holds.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct Ping;
/// # impl steward_core::jobs::Job for Ping {
/// #     const KIND: &'static str = "ping";
/// #     async fn run(self, _ctx: steward_core::jobs::JobContext) -> Result<(), steward_core::BoxError> { Ok(()) }
/// # }
/// # async fn demo<S: steward_core::store::Store>(store: std::sync::Arc<S>) -> Result<(), steward_core::jobs::EnqueueError> {
/// use steward_core::jobs::{Client, EnqueueOptions};
/// let client = Client::new(store);
/// let id = client.enqueue(Ping).await?.id;
/// let later = client.enqueue_with(Ping, EnqueueOptions::default().after(std::time::Duration::from_secs(60))).await?;
/// let many = client.enqueue_many((0..1000).map(|_| Ping), EnqueueOptions::default()).await?;
/// # Ok(()) }
/// ```
pub struct Client<S> {
    store: Arc<S>,
}

impl<S> Clone for Client<S> {
    fn clone(&self) -> Self {
        Client {
            store: self.store.clone(),
        }
    }
}

impl<S: Store> Client<S> {
    /// A client over `store`.
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(store: std::sync::Arc<S>) {
    /// let client = steward_core::jobs::Client::new(store);
    /// # }
    /// ```
    pub fn new(store: Arc<S>) -> Self {
        Client { store }
    }

    /// The store.
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(client: steward_core::jobs::Client<S>) { let s = client.store(); }
    /// ```
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// Enqueues one job with its kind's defaults. Like
    /// [`enqueue_with`](Self::enqueue_with) and
    /// [`enqueue_many`](Self::enqueue_many), it answers with an
    /// [`Enqueued`]: the job's id, and whether a job holding the same unique
    /// key (from the kind's [`JobOptions`](super::JobOptions)) was there
    /// already.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store, J: steward_core::jobs::Job>(client: steward_core::jobs::Client<S>, job: J) -> Result<(), steward_core::jobs::EnqueueError> {
    /// let id = client.enqueue(job).await?.id;
    /// # Ok(()) }
    /// ```
    pub async fn enqueue<J: Job>(&self, job: J) -> Result<Enqueued, EnqueueError> {
        self.enqueue_with(job, EnqueueOptions::default()).await
    }

    /// Enqueues one job with options; says whether it was a duplicate.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store, J: steward_core::jobs::Job>(client: steward_core::jobs::Client<S>, job: J) {
    /// let e = client.enqueue_with(job, steward_core::jobs::EnqueueOptions::default().priority(-1)).await;
    /// # }
    /// ```
    pub async fn enqueue_with<J: Job>(
        &self,
        job: J,
        options: EnqueueOptions,
    ) -> Result<Enqueued, EnqueueError> {
        let row = new_job(&job, &options)?;
        let mut out = self.store.enqueue(vec![row]).await?;
        out.pop().ok_or_else(|| {
            EnqueueError::Store(StoreError::Invalid {
                message: "the store returned no id for the enqueued job".to_string(),
            })
        })
    }

    /// Enqueues many jobs in one call (one transaction).
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store, J: steward_core::jobs::Job>(client: steward_core::jobs::Client<S>, jobs: Vec<J>) {
    /// let ids = client.enqueue_many(jobs, Default::default()).await;
    /// # }
    /// ```
    pub async fn enqueue_many<J: Job>(
        &self,
        jobs: impl IntoIterator<Item = J>,
        options: EnqueueOptions,
    ) -> Result<Vec<Enqueued>, EnqueueError> {
        let rows = jobs
            .into_iter()
            .map(|job| new_job(&job, &options))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.store.enqueue(rows).await?)
    }

    /// Cancels a job (at once if queued; through its worker if running).
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(client: steward_core::jobs::Client<S>) {
    /// let r = client.cancel(steward_core::store::JobId(1)).await;
    /// # }
    /// ```
    pub async fn cancel(&self, id: JobId) -> Result<CancelResult, StoreError> {
        self.store.cancel(id).await
    }

    /// Retries a dead, cancelled or completed job now.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(client: steward_core::jobs::Client<S>) {
    /// let retried = client.retry(steward_core::store::JobId(1)).await;
    /// # }
    /// ```
    pub async fn retry(&self, id: JobId) -> Result<bool, StoreError> {
        self.store.retry(id).await
    }

    /// One job with its attempts.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(client: steward_core::jobs::Client<S>) {
    /// let job = client.job(steward_core::store::JobId(1)).await;
    /// # }
    /// ```
    pub async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        self.store.job(id).await
    }

    /// Jobs per state.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(client: steward_core::jobs::Client<S>) {
    /// let counts = client.counts().await;
    /// # }
    /// ```
    pub async fn counts(&self) -> Result<StateCounts, StoreError> {
        self.store.counts().await
    }
}
