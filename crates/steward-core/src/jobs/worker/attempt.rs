//! One attempt of one job: decode, run under its timeout and token, catch
//! panics, and decide the outcome. This is where a job's life is decided.
//!
//! ```text
//! run returned Ok ............................. Completed (or nothing, if the
//!                                               job completed in its own transaction)
//! returned JobControl::Snooze(d) .............. Snoozed { delay: d }
//! returned JobControl::Cancel(reason) ......... Cancelled { reason }
//! returned JobControl::RetryAfter{after, e} ... Failed, retry_in: after (dead if out of attempts)
//! returned Err / panicked / unknown kind ...... Failed, retry by the kind's policy (dead if out of attempts)
//! payload of a newer version .................. the same: a worker of the newer release takes it
//! payload unreadable (upgrade refused it,
//!   or it does not decode) .................... Failed, dead at once: no retry can read it
//! stopped by its timeout ...................... Failed (timeout), same retry rule
//! stopped by an operator's cancel ............. Cancelled { "cancelled by an operator" }
//! stopped by shutdown ......................... released: available again, attempt not counted
//! returned Cancelled while the worker stops .... released, the same
//! lease lost (rescued elsewhere) .............. nothing is written: the newer attempt owns the job
//! ```
//!
//! Later times are passed as delays, never as `Utc::now() + d`: the store
//! adds them to its own clock, so a worker whose clock is off cannot make a
//! job due early (or late) for everyone else.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use super::super::context::{Attempt, CheckpointSink, Extensions, MissingState};
use super::super::registry::{Registry, Undecodable};
use super::super::{JobContext, JobControl, RetryPolicy};
use crate::BoxError;
use crate::error::{error_chain, panic_message};
use crate::store::{AttemptError, ClaimedJob, ErrorKind, Finish, FinishOutcome, Lease};
use crate::sync::LockExt;

/// Why a running attempt was told to stop, set before its token fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    Timeout,
    Operator,
    Shutdown,
    LeaseLost,
}

/// The shared handle on a running attempt: its token and why it was stopped.
#[derive(Clone)]
pub(crate) struct Stopper {
    pub(crate) token: CancellationToken,
    reason: Arc<Mutex<Option<StopReason>>>,
}

impl Stopper {
    pub(crate) fn new() -> Self {
        Stopper {
            token: CancellationToken::new(),
            reason: Arc::new(Mutex::new(None)),
        }
    }

    /// Records the first reason only: a job timed out stays timed out even if
    /// shutdown comes next.
    pub(crate) fn stop(&self, reason: StopReason) {
        let mut slot = self.reason.lock_or_recover();
        if slot.is_none() {
            *slot = Some(reason);
        }
        drop(slot);
        self.token.cancel();
    }

    fn reason(&self) -> Option<StopReason> {
        *self.reason.lock_or_recover()
    }
}

/// What the worker does with an attempt that ended.
pub(crate) enum AttemptEnd {
    /// Write this outcome (batched, fenced).
    Finish(Finish),
    /// Put it back as interrupted (shutdown).
    Release(Lease),
    /// Write nothing.
    Nothing,
}

pub(crate) struct AttemptDeps {
    pub(crate) registry: Arc<Registry>,
    pub(crate) sink: Arc<dyn CheckpointSink>,
    pub(crate) extensions: Arc<Extensions>,
    /// How long a stopped job gets to return before it is dropped.
    pub(crate) grace: Duration,
    /// Cancelled when the worker begins to stop (`JobContext::shutting_down`).
    pub(crate) shutting_down: CancellationToken,
    /// The worker service's span, the parent of every attempt's.
    pub(crate) span: tracing::Span,
}

/// Runs one attempt to its end, whatever user code does: a panic outside
/// the job's own future (decoding the payload, an error's `Display`, a
/// custom retry policy) fails the attempt with the panic message, retried
/// on the default policy, instead of unwinding the task and leaving the
/// job running with its slot taken.
pub(crate) async fn run_guarded(
    job: ClaimedJob,
    stopper: Stopper,
    deps: Arc<AttemptDeps>,
) -> AttemptEnd {
    let (lease, attempt, max_attempts) = (job.lease, job.attempt, job.max_attempts);
    match AssertUnwindSafe(run_attempt(job, stopper, deps))
        .catch_unwind()
        .await
    {
        Ok(end) => end,
        Err(payload) => {
            let message = format!(
                "panicked in code run for the job outside its future (payload decoding, \
                 error display or retry policy): {}",
                panic_message(payload.as_ref())
            );
            let retry_in = (attempt < max_attempts).then(|| RetryPolicy::default().delay(attempt));
            tracing::error!(id = %lease.id, error = %message, retry_in = ?retry_in, "job attempt failed");
            finish(
                lease,
                FinishOutcome::Failed {
                    error: AttemptError {
                        attempt,
                        at: Utc::now(),
                        kind: ErrorKind::Panic,
                        message: storable(message),
                    },
                    retry_in,
                },
            )
        }
    }
}

/// Runs one attempt to its end.
async fn run_attempt(job: ClaimedJob, stopper: Stopper, deps: Arc<AttemptDeps>) -> AttemptEnd {
    let lease = job.lease;
    let entry = deps.registry.get(&job.kind);
    let retry = entry.map_or_else(RetryPolicy::default, |e| e.options.retry.clone());
    let timeout = job
        .timeout
        .or_else(|| entry.and_then(|e| e.options.timeout));
    let span = tracing::info_span!("job", id = %lease.id, kind = %job.kind, attempt = job.attempt);
    let ctx = JobContext::new(
        Attempt {
            lease,
            kind: job.kind.clone(),
            attempt: job.attempt,
            max_attempts: job.max_attempts,
            checkpoint: job.checkpoint.clone(),
        },
        stopper.token.clone(),
        deps.shutting_down.clone(),
        span.clone(),
        deps.sink.clone(),
        deps.extensions.clone(),
    );

    let Some(entry) = entry else {
        let message = format!("unknown job kind `{}`: no worker registered it", job.kind);
        return failed(&job, &retry, ErrorKind::Payload, message, None);
    };
    let future = match entry.start(&job.payload, job.payload_version, ctx.clone()) {
        Ok(future) => future,
        // A newer release wrote it (a rolling deploy): an ordinary failed
        // attempt, so that a worker of that release takes it on a retry.
        Err(Undecodable::Newer { stored, current }) => {
            let message = format!(
                "payload version {stored} is newer than this worker's ({current}): written by \
                 a newer release; retried until a worker of that release takes it"
            );
            return failed(&job, &retry, ErrorKind::Payload, message, None);
        }
        // Every attempt would fail the same way: dead now, not after all of
        // its retries; the worker goes on with other jobs.
        Err(Undecodable::Unreadable(problem)) => {
            let message = format!(
                "{problem}; the job is dead rather than retried, as every attempt would fail \
                 the same way"
            );
            tracing::error!(parent: &span, error = %message, "job failed for good: its payload cannot be read");
            return dead(&job, ErrorKind::Payload, message);
        }
    };

    let mut future = Box::pin(tracing::Instrument::instrument(
        AssertUnwindSafe(future).catch_unwind(),
        span.clone(),
    ));
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    // A job stopped while it waited in the prefetch buffer never starts.
    let already_stopped = stopper.token.is_cancelled();
    let outcome = tokio::select! {
        biased;
        _ = std::future::ready(()), if already_stopped => None,
        result = &mut future => Some(result),
        _ = stopper.token.cancelled() => None,
        _ = sleep_until(deadline) => {
            stopper.stop(StopReason::Timeout);
            None
        }
    };
    // Stopped: give the job a moment to return on its own, then drop it.
    let outcome = match outcome {
        Some(result) => Some(result),
        None if already_stopped => None,
        None => tokio::time::timeout(deps.grace, &mut future).await.ok(),
    };
    drop(future);

    let reason = stopper.reason();
    let _entered = span.enter();
    match (outcome, reason) {
        (_, Some(StopReason::LeaseLost)) => {
            tracing::warn!("lease lost (the job was rescued); this attempt's outcome is discarded");
            AttemptEnd::Nothing
        }
        (Some(Ok(Ok(()))), _) => {
            if ctx.completed_externally() {
                AttemptEnd::Nothing
            } else {
                finish(lease, FinishOutcome::Completed)
            }
        }
        (_, Some(StopReason::Shutdown)) => AttemptEnd::Release(lease),
        (_, Some(StopReason::Operator)) => finish(
            lease,
            FinishOutcome::Cancelled {
                reason: crate::store::CANCELLED_BY_OPERATOR.to_string(),
            },
        ),
        (_, Some(StopReason::Timeout)) => {
            let after = timeout.unwrap_or_default();
            failed(
                &job,
                &retry,
                ErrorKind::Timeout,
                format!("timed out after {after:?}"),
                None,
            )
        }
        // The job stopped early because the worker is stopping (what
        // `ctx.sleep(..).await?` returns then): released like a job the
        // drain stopped, not a failure that uses up an attempt.
        (Some(Ok(Err(err))), None)
            if deps.shutting_down.is_cancelled() && err.is::<crate::Cancelled>() =>
        {
            AttemptEnd::Release(lease)
        }
        (Some(Ok(Err(err))), None) => from_error(&job, &retry, err),
        (Some(Err(payload)), None) => {
            let message = format!("panicked: {}", panic_message(payload.as_ref()));
            failed(&job, &retry, ErrorKind::Panic, message, None)
        }
        (None, None) => {
            // Cannot happen: a stop always records its reason first.
            failed(
                &job,
                &retry,
                ErrorKind::Error,
                "stopped for no recorded reason".into(),
                None,
            )
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn finish(lease: Lease, outcome: FinishOutcome) -> AttemptEnd {
    AttemptEnd::Finish(Finish { lease, outcome })
}

fn from_error(job: &ClaimedJob, retry: &RetryPolicy, err: BoxError) -> AttemptEnd {
    match err.downcast::<JobControl>() {
        Ok(control) => match *control {
            JobControl::Snooze(after) => {
                tracing::info!(after = ?after, "job snoozed");
                finish(job.lease, FinishOutcome::Snoozed { delay: after })
            }
            JobControl::Cancel(reason) => {
                tracing::info!(%reason, "job cancelled itself");
                finish(
                    job.lease,
                    FinishOutcome::Cancelled {
                        reason: storable(reason),
                    },
                )
            }
            JobControl::RetryAfter { after, source } => failed(
                job,
                retry,
                ErrorKind::Error,
                error_chain(source.as_ref()),
                Some(after),
            ),
        },
        // No retry can give the worker state it was not configured with.
        Err(err) if err.is::<MissingState>() => {
            let message = error_chain(err.as_ref());
            tracing::error!(error = %message, "job failed for good: it needs state its worker does not have");
            dead(job, ErrorKind::Error, message)
        }
        Err(err) => failed(
            job,
            retry,
            ErrorKind::Error,
            error_chain(err.as_ref()),
            None,
        ),
    }
}

/// A failed attempt that is not retried, whatever attempts are left: for
/// failures no retry can fix. The caller logs why.
fn dead(job: &ClaimedJob, kind: ErrorKind, message: String) -> AttemptEnd {
    failure(job, kind, message, None)
}

/// A failed attempt: retried after the policy's (or the job's) delay, or dead
/// when it was the last allowed attempt.
fn failed(
    job: &ClaimedJob,
    retry: &RetryPolicy,
    kind: ErrorKind,
    message: String,
    after: Option<Duration>,
) -> AttemptEnd {
    let retry_in = if job.attempt >= job.max_attempts {
        tracing::error!(error = %message, attempts = job.attempt, "job failed on its last attempt: it is dead");
        None
    } else {
        let delay = after.unwrap_or_else(|| retry.delay(job.attempt));
        tracing::warn!(error = %message, retry_in = ?delay, "job attempt failed; it will be retried");
        Some(delay)
    };
    failure(job, kind, message, retry_in)
}

/// The outcome of a failed attempt, run again after `retry_in` if any.
fn failure(
    job: &ClaimedJob,
    kind: ErrorKind,
    message: String,
    retry_in: Option<Duration>,
) -> AttemptEnd {
    finish(
        job.lease,
        FinishOutcome::Failed {
            error: AttemptError {
                attempt: job.attempt,
                // When the worker saw the failure: a record for operators,
                // never used to schedule anything.
                at: Utc::now(),
                kind,
                message: storable(message),
            },
            retry_in,
        },
    )
}

/// The longest error text kept: a runaway message (a `Display` that prints
/// a whole response body) would bloat every read of the job, and past the
/// store's limits make the outcome unwritable.
const MAX_ERROR_TEXT: usize = 64 * 1024;

/// Error text as every store can keep it: PostgreSQL's jsonb cannot hold a
/// NUL character, and an outcome the store refuses would leave the job
/// running until its lease expires; at most [`MAX_ERROR_TEXT`] bytes.
fn storable(text: String) -> String {
    let mut text = if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    };
    if text.len() > MAX_ERROR_TEXT {
        let total = text.len();
        let mut cut = MAX_ERROR_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(&format!("… (cut: {total} bytes in all)"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_is_cut_at_a_char_boundary_and_says_how_long_it_was() {
        let long = "é".repeat(MAX_ERROR_TEXT); // two bytes each
        let kept = storable(long);
        assert!(kept.len() < MAX_ERROR_TEXT + 64, "{}", kept.len());
        assert!(kept.ends_with(&format!("(cut: {} bytes in all)", 2 * MAX_ERROR_TEXT)));
        assert_eq!(storable("a\0b".into()), "a\u{FFFD}b");
    }
}
