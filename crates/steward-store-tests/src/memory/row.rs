//! One stored job, its unique key, and the checks on a new job: the pieces
//! of the reference store that are not the `Store` methods themselves.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use steward_core::store::{
    JobRecord, JobState, Lease, LeaseToken, NewJob, StoreError, UniqueScope,
};

/// One job as the reference store keeps it.
#[derive(Debug)]
pub(super) struct Row {
    /// What `Store::job` returns, kept up to date by every write.
    pub(super) record: JobRecord,
    /// The running attempt's token; `None` when not running.
    pub(super) token: Option<LeaseToken>,
    /// The unique key this job holds, if it still holds one.
    pub(super) hold: Option<Hold>,
    /// The unique key it was enqueued with, kept after it is let go of so
    /// an operator's retry can take it back.
    pub(super) given: Option<Hold>,
}

/// A held unique key. Two jobs conflict when their `key` and `bucket` are
/// equal; `Window` keys carry their time bucket, so a new window is a new key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Hold {
    pub(super) key: String,
    pub(super) bucket: Option<i64>,
    pub(super) scope: HeldScope,
}

/// The scope a key was taken with, which decides when it is let go of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeldScope {
    Queued,
    Active,
    Window,
}

/// The moments a held key may be let go of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Moment {
    Claimed,
    Finished,
}

impl Row {
    pub(super) fn set_hold(&mut self, hold: Option<Hold>) {
        self.record.unique_key = hold.as_ref().map(|h| h.key.clone());
        self.hold = hold;
    }

    /// `Queued` keys go at claim, `Active` ones when the job is final, and
    /// `Window` ones only with the job itself (prune).
    pub(super) fn let_go_of_key(&mut self, moment: Moment) {
        let keep = match (self.hold.as_ref().map(|h| h.scope), moment) {
            (None, _) => return,
            (Some(HeldScope::Window), _) => true,
            (Some(HeldScope::Queued), _) => false,
            (Some(HeldScope::Active), Moment::Claimed) => true,
            (Some(HeldScope::Active), Moment::Finished) => false,
        };
        if !keep {
            self.set_hold(None);
        }
    }

    pub(super) fn clear_lease(&mut self) {
        self.token = None;
        self.record.worker = None;
        self.record.lease_expires_at = None;
    }

    pub(super) fn holds(&self, lease: &Lease) -> bool {
        self.record.state == JobState::Running && self.token == Some(lease.token)
    }

    /// Reaches a final state: finished now, the lease and (unless windowed)
    /// the unique key let go of.
    pub(super) fn finalize(&mut self, state: JobState, now: DateTime<Utc>) {
        self.record.state = state;
        self.record.finished_at = Some(now);
        self.clear_lease();
        self.let_go_of_key(Moment::Finished);
    }

    /// The rule that a requested cancel is never lost: a job just put back
    /// in line (retry, snooze, release, rescue) whose cancel an operator
    /// requested is cancelled instead. Whether it was.
    pub(super) fn settle_cancel(&mut self, now: DateTime<Utc>) -> bool {
        if !self.record.cancel_requested || self.record.state.is_final() {
            return false;
        }
        let attempt = self.record.attempt;
        self.record.errors.push(steward_core::store::AttemptError {
            attempt,
            at: now,
            kind: steward_core::store::ErrorKind::Cancelled,
            message: steward_core::store::CANCELLED_BY_OPERATOR.to_string(),
        });
        self.finalize(JobState::Cancelled, now);
        true
    }
}

pub(super) fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        message: message.into(),
    }
}

/// `now + d` for a delay: saturates at the latest time a `DateTime` holds
/// (an absurd delay means "never, in practice", not an error).
pub(super) fn later(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|delta| now.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `now - d` for a retention age: saturates at the earliest time a
/// `DateTime` holds.
pub(super) fn earlier(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|delta| now.checked_sub_signed(delta))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// `now + d` for a lease, refusing durations no timestamp can hold.
pub(super) fn after(now: DateTime<Utc>, d: Duration) -> Result<DateTime<Utc>, StoreError> {
    TimeDelta::from_std(d)
        .ok()
        .and_then(|delta| now.checked_add_signed(delta))
        .ok_or_else(|| invalid(format!("duration {d:?} is out of range")))
}

pub(super) fn validate(job: &NewJob, now: DateTime<Utc>) -> Result<Option<Hold>, StoreError> {
    steward_core::store::validate_new_jobs(std::slice::from_ref(job))?;
    let Some((key, scope)) = &job.unique else {
        return Ok(None);
    };
    let (bucket, scope) = match scope {
        UniqueScope::Queued => (None, HeldScope::Queued),
        UniqueScope::Active => (None, HeldScope::Active),
        UniqueScope::Window(window) => {
            let window_ms = steward_core::store::millis("unique window", *window)?;
            (
                Some(now.timestamp_millis().div_euclid(window_ms)),
                HeldScope::Window,
            )
        }
    };
    Ok(Some(Hold {
        key: key.clone(),
        bucket,
        scope,
    }))
}
