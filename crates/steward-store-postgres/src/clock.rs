//! Where the trait's times become the database's times.
//!
//! Every time this store writes comes from PostgreSQL's `now()`: leases,
//! `run_at` of new jobs given a delay (or none), retries and snoozes,
//! retention cutoffs. Callers give *durations*, which the SQL adds to
//! `now()`, so workers with skewed clocks agree on every schedule. The one
//! absolute time stored as given is a [`NewJob::run_at`] the user chose.
//!
//! This module is the one place that reads the trait's time-bearing types
//! ([`NewJob`], [`FinishOutcome`]): the SQL only sees [`When`] (bound as an
//! optional absolute time plus an optional delay in microseconds) and ages
//! in microseconds.
//!
//! Saturation: a delay or age too large for the store is not an error (the
//! contract: `Duration::MAX` never fails). Delays are capped here at
//! [`MAX_DELAY_US`] and the SQL caps `now() + delay` at [`LATEST`]; ages are
//! capped at [`MAX_AGE_US`], which reaches back before any job existed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use steward_core::store::{AttemptError, FinishOutcome, NewJob, StoreError};

use crate::error::invalid;

/// The latest time the store writes for a delay (SQL text): far enough to
/// mean "never", representable by both PostgreSQL and `chrono`, and
/// printable as RFC 3339 with a four-digit year. The SQL spells it out
/// (`concat!` needs a literal); a test checks that the two agree.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const LATEST: &str = "'9999-12-31 23:59:59.999999+00'::timestamptz";

/// Delays above this (10,000 years) are cut to it before they reach SQL, so
/// `now() + delay` never overflows PostgreSQL's timestamps (year 294,276);
/// the SQL then caps the sum at [`LATEST`].
pub(crate) const MAX_DELAY_US: i64 = 10_000 * 366 * 24 * 3_600 * 1_000_000;

/// Ages above this (5,000 years) are cut to it: `now() - age` stays after
/// PostgreSQL's earliest timestamp (4713 BC) and before any job's
/// `finished_at`, so an absurd age keeps every job, as the contract asks.
pub(crate) const MAX_AGE_US: i64 = 5_000 * 366 * 24 * 3_600 * 1_000_000;

/// A time in the future as the SQL resolves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    /// This absolute time.
    At(DateTime<Utc>),
    /// The database's `now()` plus this many microseconds (saturating).
    AfterMicros(i64),
}

impl When {
    /// The absolute time to bind (`NULL` for a delay).
    pub(crate) fn at(self) -> Option<DateTime<Utc>> {
        match self {
            When::At(t) => Some(t),
            When::AfterMicros(_) => None,
        }
    }

    /// The delay in microseconds to bind (`NULL` for an absolute time).
    pub(crate) fn delay_us(self) -> Option<i64> {
        match self {
            When::At(_) => None,
            When::AfterMicros(us) => Some(us),
        }
    }
}

/// A lease length in whole microseconds (PostgreSQL's precision), refused
/// if it does not fit (the contract refuses absurd leases rather than
/// saturating them). A non-zero duration shorter than a microsecond counts
/// as one, so it never becomes "no time at all".
pub(crate) fn micros(what: &str, d: Duration) -> Result<i64, StoreError> {
    let us = i64::try_from(d.as_micros())
        .map_err(|_| invalid(format!("{what} of {d:?} is too long")))?;
    Ok(if us == 0 && !d.is_zero() { 1 } else { us })
}

/// A delay in microseconds, saturating at [`MAX_DELAY_US`].
pub(crate) fn delay_micros(d: Duration) -> i64 {
    let us = i64::try_from(d.as_micros())
        .unwrap_or(i64::MAX)
        .min(MAX_DELAY_US);
    if us == 0 && !d.is_zero() { 1 } else { us }
}

/// A retention age in microseconds, saturating at [`MAX_AGE_US`].
pub(crate) fn age_micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros())
        .unwrap_or(i64::MAX)
        .min(MAX_AGE_US)
}

/// When a new job first runs: its `run_at`, or `delay` after now, or now.
/// Both set is refused.
pub(crate) fn first_run(job: &NewJob) -> Result<When, StoreError> {
    match (job.run_at, job.delay) {
        (Some(_), Some(_)) => Err(invalid(format!(
            "job of kind `{}` has both run_at and delay; give one",
            job.kind
        ))),
        (Some(at), None) => Ok(When::At(at)),
        (None, Some(delay)) => Ok(When::AfterMicros(delay_micros(delay))),
        (None, None) => Ok(When::AfterMicros(0)),
    }
}

/// How an attempt ended, with its times resolved for the SQL.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outcome<'a> {
    Complete,
    Retry { error: &'a AttemptError, when: When },
    Dead { error: &'a AttemptError },
    Snooze { when: When },
    Cancel { reason: &'a str },
}

/// Reads a [`FinishOutcome`].
pub(crate) fn outcome(outcome: &FinishOutcome) -> Outcome<'_> {
    match outcome {
        FinishOutcome::Completed => Outcome::Complete,
        FinishOutcome::Failed {
            error,
            retry_in: Some(delay),
        } => Outcome::Retry {
            error,
            when: When::AfterMicros(delay_micros(*delay)),
        },
        FinishOutcome::Failed {
            error,
            retry_in: None,
        } => Outcome::Dead { error },
        FinishOutcome::Snoozed { delay } => Outcome::Snooze {
            when: When::AfterMicros(delay_micros(*delay)),
        },
        FinishOutcome::Cancelled { reason } => Outcome::Cancel { reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_microsecond_durations_round_up_to_one() {
        assert_eq!(micros("lease", Duration::from_nanos(10)).ok(), Some(1));
        assert_eq!(micros("lease", Duration::ZERO).ok(), Some(0));
        assert_eq!(
            micros("lease", Duration::from_secs(2)).ok(),
            Some(2_000_000)
        );
        assert!(micros("lease", Duration::MAX).is_err());
        assert_eq!(delay_micros(Duration::from_nanos(1)), 1);
    }

    #[test]
    fn absurd_delays_and_ages_saturate() {
        assert_eq!(delay_micros(Duration::MAX), MAX_DELAY_US);
        assert_eq!(age_micros(Duration::MAX), MAX_AGE_US);
        assert_eq!(delay_micros(Duration::from_secs(1)), 1_000_000);
    }

    #[test]
    fn run_at_and_delay_together_are_refused() {
        let both = NewJob::new("k", "{}")
            .run_at(Utc::now())
            .delay(Duration::from_secs(1));
        assert!(matches!(first_run(&both), Err(StoreError::Invalid { .. })));
        let later = NewJob::new("k", "{}").delay(Duration::from_secs(1));
        assert_eq!(first_run(&later).ok(), Some(When::AfterMicros(1_000_000)));
    }
}
