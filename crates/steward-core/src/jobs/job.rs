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
