//! An operator's actions on jobs already stored: retry, cancel or delete a
//! chunk of jobs ([`Store::act_on_jobs`](super::Store::act_on_jobs)), and
//! run a waiting job now or change its priority or run time
//! ([`Store::reschedule`](super::Store::reschedule)). The rules live here,
//! so every store applies the same ones.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{EARLIEST_TIME, JobId, JobState, LATEST_TIME, StoreError};

/// The most ids one [`ActOn`] may carry: one chunk is one transaction, and a
/// bounded chunk keeps its locks short while workers run.
pub const MAX_ACT_CHUNK: usize = 1000;

/// What to do to each job of a chunk.
///
/// ```
/// use steward_core::store::{JobAction, JobState};
/// assert!(JobAction::Delete.accepts(JobState::Dead));
/// assert!(!JobAction::Delete.accepts(JobState::Running));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobAction {
    /// As [`Store::retry`](super::Store::retry): a completed, dead or
    /// cancelled job is available again now, unique-key rules included.
    Retry,
    /// As [`Store::cancel`](super::Store::cancel): a queued job is cancelled
    /// at once, a running one flagged for its worker ([`Acted::Requested`]).
    Cancel,
    /// Deletes the job with its errors and checkpoint. A running job is
    /// refused (its worker still holds it: cancel it first).
    Delete,
}

impl JobAction {
    /// Whether the action applies to a job in `state`.
    ///
    /// ```
    /// use steward_core::store::{JobAction, JobState};
    /// assert!(JobAction::Cancel.accepts(JobState::Running));
    /// assert!(!JobAction::Retry.accepts(JobState::Available));
    /// ```
    pub fn accepts(self, state: JobState) -> bool {
        match self {
            JobAction::Retry => state.is_final(),
            JobAction::Cancel => !state.is_final(),
            JobAction::Delete => state != JobState::Running,
        }
    }

    /// The action's name, as the CLI spells it (`retry`, `cancel`, `delete`).
    ///
    /// ```
    /// assert_eq!(steward_core::store::JobAction::Delete.as_str(), "delete");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            JobAction::Retry => "retry",
            JobAction::Cancel => "cancel",
            JobAction::Delete => "delete",
        }
    }
}

/// One chunk of an operator's action: the same action on each of `ids`, in
/// one transaction, each job's state checked again under that transaction.
///
/// ```
/// use steward_core::store::{ActOn, JobAction, JobId, JobState};
/// let chunk = ActOn::new(JobAction::Retry, [JobId(1), JobId(2)]).states([JobState::Dead]);
/// assert!(chunk.validate().is_ok());
/// assert!(chunk.wants(JobState::Dead));
/// assert!(!chunk.wants(JobState::Cancelled)); // not in the filter's states
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActOn {
    /// What to do.
    pub action: JobAction,
    /// The jobs, each at most once (at most [`MAX_ACT_CHUNK`]).
    pub ids: Vec<JobId>,
    /// Only jobs still in one of these states (the filter that chose the
    /// ids); empty means any state the action accepts. A job that moved out
    /// of them since it was chosen is skipped, not clobbered.
    pub states: Vec<JobState>,
}

impl ActOn {
    /// `action` on `ids`, whatever their state (as the action accepts).
    ///
    /// ```
    /// let chunk = steward_core::store::ActOn::new(steward_core::store::JobAction::Delete, [steward_core::store::JobId(7)]);
    /// ```
    pub fn new(action: JobAction, ids: impl IntoIterator<Item = JobId>) -> Self {
        ActOn {
            action,
            ids: ids.into_iter().collect(),
            states: Vec::new(),
        }
    }

    /// Only jobs still in one of `states`.
    ///
    /// ```
    /// use steward_core::store::{ActOn, JobAction, JobId, JobState};
    /// let chunk = ActOn::new(JobAction::Cancel, [JobId(7)]).states([JobState::Scheduled]);
    /// ```
    pub fn states(mut self, states: impl IntoIterator<Item = JobState>) -> Self {
        self.states = states.into_iter().collect();
        self
    }

    /// Whether a job now in `state` is acted on: the action accepts the
    /// state, and the filter's states (if any) include it.
    ///
    /// ```
    /// use steward_core::store::{ActOn, JobAction, JobId, JobState};
    /// assert!(!ActOn::new(JobAction::Delete, [JobId(1)]).wants(JobState::Running));
    /// ```
    pub fn wants(&self, state: JobState) -> bool {
        self.action.accepts(state) && (self.states.is_empty() || self.states.contains(&state))
    }

    /// Refuses more than [`MAX_ACT_CHUNK`] ids, an id below 1, or an id
    /// given twice ([`StoreError::Invalid`]).
    ///
    /// ```
    /// use steward_core::store::{ActOn, JobAction, JobId};
    /// assert!(ActOn::new(JobAction::Delete, [JobId(0)]).validate().is_err());
    /// assert!(ActOn::new(JobAction::Delete, [JobId(3), JobId(3)]).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |message: String| Err(StoreError::Invalid { message });
        if self.ids.len() > MAX_ACT_CHUNK {
            return invalid(format!(
                "a chunk of {} jobs: act on 1 to {MAX_ACT_CHUNK} at a time",
                self.ids.len()
            ));
        }
        if let Some(id) = self.ids.iter().find(|id| id.0 < 1) {
            return validate_job_id(*id);
        }
        let mut sorted: Vec<i64> = self.ids.iter().map(|id| id.0).collect();
        sorted.sort_unstable();
        if let Some(pair) = sorted.windows(2).find(|pair| pair[0] == pair[1]) {
            return invalid(format!("job id {} is given twice", pair[0]));
        }
        Ok(())
    }
}

/// Refuses an id below 1: stores hand out ids from 1, so such an id is a
/// typing mistake, not a job that might exist.
///
/// ```
/// use steward_core::store::{JobId, validate_job_id};
/// assert!(validate_job_id(JobId(1)).is_ok());
/// assert!(validate_job_id(JobId(0)).is_err());
/// ```
pub fn validate_job_id(id: JobId) -> Result<(), StoreError> {
    if id.0 < 1 {
        return Err(StoreError::Invalid {
            message: format!("{} is not a job id (ids start at 1)", id.0),
        });
    }
    Ok(())
}

/// What [`Store::act_on_jobs`](super::Store::act_on_jobs) did to one job.
///
/// ```
/// use steward_core::store::{Acted, JobState};
/// assert!(Acted::Done.touched());
/// assert!(!Acted::Skipped(JobState::Running).touched());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acted {
    /// Retried, cancelled or deleted.
    Done,
    /// Running: its worker was asked to cancel it (a cancel only).
    Requested,
    /// Left alone: its state (given) is not one the action and the filter accept.
    Skipped(JobState),
    /// No such job (deleted or pruned meanwhile).
    NotFound,
}

impl Acted {
    /// Whether the job was acted on (done, or its cancel requested).
    ///
    /// ```
    /// assert!(steward_core::store::Acted::Requested.touched());
    /// ```
    pub fn touched(self) -> bool {
        matches!(self, Acted::Done | Acted::Requested)
    }
}

/// When a rescheduled job should run.
///
/// ```
/// use std::time::Duration;
/// let later = steward_core::store::RunAt::In(Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAt {
    /// Now, by the store's clock.
    Now,
    /// At this time (years 1 to 9999).
    At(DateTime<Utc>),
    /// This long after the store's now (an absurd delay saturates, as an
    /// enqueue's does).
    In(Duration),
}

/// A change to a waiting job: its priority, its run time, or both.
///
/// ```
/// use steward_core::store::{Reschedule, RunAt};
/// let change = Reschedule::default().priority(-5).run_at(RunAt::Now);
/// assert!(change.validate().is_ok());
/// assert!(Reschedule::default().validate().is_err()); // nothing to change
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reschedule {
    /// The new priority (lower runs first), if it changes.
    pub priority: Option<i16>,
    /// The new run time, if it changes.
    pub run_at: Option<RunAt>,
}

impl Reschedule {
    /// Sets the new priority.
    ///
    /// ```
    /// let change = steward_core::store::Reschedule::default().priority(3);
    /// ```
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Sets the new run time.
    ///
    /// ```
    /// let change = steward_core::store::Reschedule::default().run_at(steward_core::store::RunAt::Now);
    /// ```
    pub fn run_at(mut self, run_at: RunAt) -> Self {
        self.run_at = Some(run_at);
        self
    }

    /// Refuses a change of nothing, or a run time outside the years 1 to
    /// 9999 (as [`validate_new_jobs`](super::validate_new_jobs) does).
    ///
    /// ```
    /// use steward_core::store::{Reschedule, RunAt};
    /// let too_late = chrono::DateTime::<chrono::Utc>::MAX_UTC;
    /// assert!(Reschedule::default().run_at(RunAt::At(too_late)).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.priority.is_none() && self.run_at.is_none() {
            return Err(StoreError::Invalid {
                message: "nothing to change: give a priority or a run time".into(),
            });
        }
        if let Some(RunAt::At(at)) = self.run_at {
            if !(EARLIEST_TIME..=LATEST_TIME).contains(&at) {
                return Err(StoreError::Invalid {
                    message: format!(
                        "run_at {at} is outside the years 1 to 9999 that every store and client can read"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// What [`Store::reschedule`](super::Store::reschedule) did.
///
/// ```
/// use steward_core::store::{JobState, Rescheduled};
/// let r = Rescheduled::NotWaiting(JobState::Running);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rescheduled {
    /// Changed; the job is now in this state (`available` if due now,
    /// `scheduled` if ahead, `retryable` stays `retryable`).
    Updated(JobState),
    /// Refused: the job is running or finished (its state given).
    NotWaiting(JobState),
    /// No such job.
    NotFound,
}

/// The state a waiting job takes when its run time becomes `run_at` at
/// `now`: a retryable job stays retryable (its errors say why it waits),
/// others are scheduled if ahead, else available (as at enqueue).
///
/// ```
/// use steward_core::store::{JobState, waiting_state};
/// let now = chrono::Utc::now();
/// assert_eq!(waiting_state(JobState::Scheduled, now, now), JobState::Available);
/// ```
pub fn waiting_state(state: JobState, run_at: DateTime<Utc>, now: DateTime<Utc>) -> JobState {
    match state {
        JobState::Retryable => JobState::Retryable,
        _ if run_at > now => JobState::Scheduled,
        _ => JobState::Available,
    }
}
