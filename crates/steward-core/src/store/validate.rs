//! The rules every store applies to new jobs and lease lengths, in one
//! place so that no store (nor the memory model the contract suite checks
//! them against) can drift from the others.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::IgnoredAny;

use super::{NewJob, StoreError, UniqueScope};

/// The earliest `run_at` a job may have: 0001-01-01 00:00:00 UTC.
///
/// Every store and client can hold, sort and print (RFC 3339, four-digit
/// year) the times from this to [`LATEST_TIME`]; outside them PostgreSQL
/// has `±infinity` and years up to 294276 that `chrono` cannot read, and a
/// worker meeting one could not even say which job it was. A time before
/// this is simply "now"; one after [`LATEST_TIME`] "never".
///
/// ```
/// use chrono::Datelike;
/// assert_eq!(steward_core::store::EARLIEST_TIME.year(), 1);
/// ```
pub const EARLIEST_TIME: DateTime<Utc> = match NaiveDate::from_ymd_opt(1, 1, 1) {
    Some(day) => day.and_time(chrono::NaiveTime::MIN).and_utc(),
    None => DateTime::<Utc>::MIN_UTC,
};

/// The latest `run_at` a job may have: 9999-12-31 23:59:59.999999 UTC, also
/// where a store saturates an absurd delay (see [`EARLIEST_TIME`]).
///
/// ```
/// use chrono::Datelike;
/// assert_eq!(steward_core::store::LATEST_TIME.year(), 9999);
/// ```
pub const LATEST_TIME: DateTime<Utc> = match NaiveDate::from_ymd_opt(9999, 12, 31) {
    Some(day) => match day.and_hms_micro_opt(23, 59, 59, 999_999) {
        Some(t) => t.and_utc(),
        None => DateTime::<Utc>::MAX_UTC,
    },
    None => DateTime::<Utc>::MAX_UTC,
};

/// Checks a whole batch before anything is written: the first invalid job
/// refuses the batch with [`StoreError::Invalid`], naming its position and
/// kind. Stores call this first and add only what their own types need.
///
/// ```
/// use steward_core::store::{NewJob, validate_new_jobs};
/// assert!(validate_new_jobs(&[NewJob::new("email", "{}")]).is_ok());
/// assert!(validate_new_jobs(&[NewJob::new("email", "not json")]).is_err());
/// assert!(validate_new_jobs(&[NewJob::new("email", "{}").payload_version(0)]).is_err());
/// ```
pub fn validate_new_jobs(jobs: &[NewJob]) -> Result<(), StoreError> {
    for (i, job) in jobs.iter().enumerate() {
        check(job).map_err(|reason| {
            let which = if job.kind.is_empty() {
                format!("job {i}")
            } else {
                format!("job {i} (kind `{}`)", job.kind)
            };
            StoreError::Invalid {
                message: format!("{which}: {reason}"),
            }
        })?;
    }
    Ok(())
}

fn check(job: &NewJob) -> Result<(), String> {
    if job.kind.is_empty() {
        return Err("empty kind".into());
    }
    if let Some(reason) = super::queues::queue_name_problem(&job.queue) {
        return Err(reason);
    }
    if job.max_attempts == 0 {
        return Err("max_attempts is 0".into());
    }
    // Versions count from 1: a 0 is a payload version never set, which no
    // worker could upgrade from.
    if job.payload_version == 0 {
        return Err("payload_version is 0 (versions start at 1)".into());
    }
    if i32::try_from(job.payload_version).is_err() {
        // Stores keep it in a 4-byte signed integer.
        return Err(format!(
            "payload_version {} is above {}",
            job.payload_version,
            i32::MAX
        ));
    }
    if i32::try_from(job.max_attempts).is_err() {
        return Err(format!(
            "max_attempts {} is above {}",
            job.max_attempts,
            i32::MAX
        ));
    }
    if let Err(e) = serde_json::from_str::<IgnoredAny>(&job.payload) {
        return Err(format!("payload is not JSON: {e}"));
    }
    if job.run_at.is_some() && job.delay.is_some() {
        return Err("both run_at and delay are set (choose one)".into());
    }
    if let Some(at) = job.run_at {
        if !(EARLIEST_TIME..=LATEST_TIME).contains(&at) {
            return Err(format!(
                "run_at {at} is outside the years 1 to 9999 that every store and client can read"
            ));
        }
    }
    if let Some(timeout) = job.timeout {
        whole_millis("timeout", timeout)?;
    }
    if let Some((_, UniqueScope::Window(window))) = &job.unique {
        if window.is_zero() {
            return Err("unique window is zero".into());
        }
        whole_millis("unique window", *window)?;
    }
    Ok(())
}

/// A duration in whole milliseconds, as stores keep timeouts and windows;
/// a non-zero duration below one millisecond counts as one, so it never
/// becomes "no time at all".
///
/// ```
/// use std::time::Duration;
/// use steward_core::store::millis;
/// assert_eq!(millis("timeout", Duration::from_micros(10)).ok(), Some(1));
/// assert!(millis("timeout", Duration::MAX).is_err());
/// ```
pub fn millis(what: &str, d: Duration) -> Result<i64, StoreError> {
    whole_millis(what, d).map_err(|message| StoreError::Invalid { message })
}

fn whole_millis(what: &str, d: Duration) -> Result<i64, String> {
    // Microseconds must fit too: PostgreSQL adds durations as intervals.
    i64::try_from(d.as_micros()).map_err(|_| format!("{what} of {d:?} is too long"))?;
    let ms = i64::try_from(d.as_millis()).map_err(|_| format!("{what} of {d:?} is too long"))?;
    Ok(if ms == 0 && !d.is_zero() { 1 } else { ms })
}

/// Checks a leadership request ([`Store::try_lead`](super::Store::try_lead)):
/// a role and a holder, and a lease that is not zero. Stores then refuse a
/// lease too long for their clocks.
///
/// ```
/// use std::time::Duration;
/// use steward_core::store::validate_leadership;
/// assert!(validate_leadership("maintenance", "node-a", Duration::from_secs(10)).is_ok());
/// assert!(validate_leadership("", "node-a", Duration::from_secs(10)).is_err());
/// ```
pub fn validate_leadership(role: &str, holder: &str, ttl: Duration) -> Result<(), StoreError> {
    if role.is_empty() || holder.is_empty() {
        return Err(StoreError::Invalid {
            message: "leadership: empty role or holder".to_string(),
        });
    }
    if ttl.is_zero() {
        return Err(StoreError::Invalid {
            message: format!("leadership of `{role}`: zero ttl"),
        });
    }
    Ok(())
}

/// The error message of a rescue that puts a job back in line.
///
/// ```
/// assert!(steward_core::store::WORKER_LOST.starts_with("worker lost"));
/// ```
pub const WORKER_LOST: &str = "worker lost: lease expired";

/// The error message of the rescue that makes a job dead, its `n`-th in a
/// row: `worker lost N times`. The stores build it in SQL from
/// [`WORKER_LOST_TIMES`], around the count.
///
/// ```
/// assert_eq!(steward_core::store::worker_lost_times(3), "worker lost 3 times");
/// ```
pub fn worker_lost_times(n: u32) -> String {
    format!("{}{n}{}", WORKER_LOST_TIMES.0, WORKER_LOST_TIMES.1)
}

/// The text before and after the count in [`worker_lost_times`].
///
/// ```
/// assert_eq!(steward_core::store::WORKER_LOST_TIMES, ("worker lost ", " times"));
/// ```
pub const WORKER_LOST_TIMES: (&str, &str) = ("worker lost ", " times");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_bounds_are_the_first_and_last_instants_of_years_1_and_9999() {
        assert_eq!(EARLIEST_TIME.to_rfc3339(), "0001-01-01T00:00:00+00:00");
        assert_eq!(LATEST_TIME.to_rfc3339(), "9999-12-31T23:59:59.999999+00:00");
    }

    #[test]
    fn the_first_invalid_job_names_its_position_and_kind() {
        let jobs = [
            NewJob::new("ok", "{}"),
            NewJob::new("bad", "{}").max_attempts(0),
        ];
        let err = validate_new_jobs(&jobs).expect_err("refused");
        assert!(
            err.to_string()
                .contains("job 1 (kind `bad`): max_attempts is 0"),
            "{err}"
        );
    }
}
