//! The [`Job`] trait and its per-kind defaults.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{JobContext, RetryPolicy};
use crate::BoxError;

/// A durable job: a serializable struct whose `run` the worker calls, at
/// least once per successful attempt, possibly on another machine after a
/// restart.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use steward_core::BoxError;
/// use steward_core::jobs::{Job, JobContext, JobOptions};
///
/// #[derive(Serialize, Deserialize)]
/// struct SendEmail { to: String }
///
/// impl Job for SendEmail {
///     const KIND: &'static str = "send_email";
///     fn options() -> JobOptions {
///         JobOptions { queue: "mail".into(), max_attempts: 5, ..JobOptions::default() }
///     }
///     async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
///         tracing::info!(to = %self.to, attempt = ctx.attempt(), "sending");
///         Ok(())
///     }
/// }
/// ```
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The stable name stored with each job; renaming it orphans queued jobs.
    const KIND: &'static str;

    /// The version of this kind's payload, stored with each job enqueued
    /// (default 1). Raise it when a change to the struct would stop jobs
    /// already queued from deserializing (a renamed or removed field, a new
    /// field without a default), and teach [`upgrade`](Self::upgrade) to
    /// turn older payloads into this version's, so jobs enqueued by the
    /// previous release still run after a deploy.
    ///
    /// A worker meeting a payload of a *newer* version (written by a newer
    /// release during a rolling deploy) fails that attempt as an ordinary
    /// retryable failure, so a worker of the newer release takes it later.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # use steward_core::{BoxError, jobs::{Job, JobContext}};
    /// #[derive(Serialize, Deserialize)]
    /// struct Ping;
    /// impl Job for Ping {
    ///     const KIND: &'static str = "ping";
    ///     async fn run(self, _ctx: JobContext) -> Result<(), BoxError> { Ok(()) }
    /// }
    /// assert_eq!(Ping::VERSION, 1);
    /// ```
    const VERSION: u32 = 1;

    /// Turns a payload stored at version `from` (older than
    /// [`VERSION`](Self::VERSION)) into one of the current version, as JSON;
    /// the worker then deserializes the result into `Self`. It is called
    /// with the stored version, so a kind at version 3 handles payloads of
    /// versions 1 and 2 itself (chaining its steps is the simple way). It
    /// runs only for older payloads: one of the current version is
    /// deserialized directly, at no extra cost.
    ///
    /// An error (the default, for a kind that never changed, is "no upgrade
    /// from payload version {from} to {VERSION}") kills that job at once
    /// with an [`ErrorKind::Payload`](crate::store::ErrorKind::Payload)
    /// error naming the kind, the stored version and the reason: retrying
    /// cannot make an old payload readable. The worker keeps running.
    ///
    /// ```
    /// use serde::{Deserialize, Serialize};
    /// use serde_json::{Value, json};
    /// use steward_core::BoxError;
    /// use steward_core::jobs::{Job, JobContext};
    ///
    /// // Version 1 was `struct Report { name: String }`.
    /// #[derive(Serialize, Deserialize)]
    /// struct Report { title: String, pages: u32 }
    ///
    /// impl Job for Report {
    ///     const KIND: &'static str = "report";
    ///     const VERSION: u32 = 2;
    ///     fn upgrade(from: u32, payload: Value) -> Result<Value, BoxError> {
    ///         match from {
    ///             // `name` was renamed to `title`; `pages` is new.
    ///             1 => Ok(json!({ "title": payload["name"], "pages": 1 })),
    ///             _ => Err(format!("no upgrade from payload version {from}").into()),
    ///         }
    ///     }
    ///     async fn run(self, _ctx: JobContext) -> Result<(), BoxError> { Ok(()) }
    /// }
    ///
    /// # fn main() -> Result<(), BoxError> {
    /// let old = json!({ "name": "Q3 review" });
    /// let report: Report = serde_json::from_value(Report::upgrade(1, old)?)?;
    /// assert_eq!((report.title.as_str(), report.pages), ("Q3 review", 1));
    /// # Ok(()) }
    /// ```
    fn upgrade(from: u32, payload: serde_json::Value) -> Result<serde_json::Value, BoxError> {
        // The payload is not needed to say there is no way to read it.
        let _ = payload;
        Err(format!(
            "no upgrade from payload version {from} to {}",
            Self::VERSION
        )
        .into())
    }

    /// Defaults for jobs of this kind; enqueue options override them.
    fn options() -> JobOptions {
        JobOptions::default()
    }

    /// Does the work. `Ok` completes the job; an error is a failed attempt
    /// retried by the kind's [`RetryPolicy`] until `max_attempts`; a
    /// [`JobControl`](super::JobControl) error snoozes, retries at a chosen
    /// time, or cancels. A panic is caught and recorded as a failed attempt.
    fn run(self, ctx: JobContext) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// Per-kind defaults.
///
/// ```
/// use std::time::Duration;
/// use steward_core::jobs::JobOptions;
/// let o = JobOptions { timeout: Some(Duration::from_secs(30)), ..JobOptions::default() };
/// assert_eq!(o.queue, "default");
/// ```
#[derive(Debug, Clone)]
pub struct JobOptions {
    /// The queue jobs of this kind go to (default `default`).
    pub queue: String,
    /// Lower runs first (default 0).
    pub priority: i16,
    /// Attempts before the job is dead (default 25).
    pub max_attempts: u32,
    /// Per-attempt timeout (default none).
    pub timeout: Option<Duration>,
    /// How long to wait before each retry (default exponential with jitter).
    pub retry: RetryPolicy,
}

impl Default for JobOptions {
    fn default() -> Self {
        JobOptions {
            queue: "default".to_string(),
            priority: 0,
            max_attempts: 25,
            timeout: None,
            retry: RetryPolicy::default(),
        }
    }
}

/// A job's way to say something other than "failed": snooze, retry at a
/// time of its choosing, or cancel itself. Return it as the error.
///
/// ```
/// use std::time::Duration;
/// use steward_core::jobs::JobControl;
/// # async fn run() -> Result<(), steward_core::BoxError> {
/// // the upstream asked us to come back in a minute; not a failure
/// return Err(JobControl::Snooze(Duration::from_secs(60)).into());
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobControl {
    /// Run again after this long without using up an attempt.
    #[error("snoozed for {0:?}")]
    Snooze(Duration),
    /// A failed attempt, retried after this long instead of the policy's delay.
    #[error("{source} (retry in {after:?})")]
    RetryAfter {
        /// How long to wait.
        after: Duration,
        /// Why the attempt failed.
        #[source]
        source: BoxError,
    },
    /// Cancel the job for good, with a reason.
    #[error("cancelled: {0}")]
    Cancel(String),
}
