//! The reference store's operator actions: `act_on_jobs` and `reschedule`,
//! and the single-job cancel and retry they share with `Store::cancel` and
//! `Store::retry`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use steward_core::store::{
    ActOn, Acted, CancelResult, JobAction, JobId, JobState, Reschedule, Rescheduled, RunAt,
    StoreError, waiting_state,
};

use super::row::later;
use super::{Jobs, MemoryStore};

impl Jobs {
    /// `Store::cancel` of one job, under the caller's lock.
    pub(super) fn cancel(&mut self, id: JobId, now: DateTime<Utc>) -> CancelResult {
        let Some(row) = self.rows.get_mut(&id) else {
            return CancelResult::NotFound;
        };
        match row.record.state {
            JobState::Scheduled | JobState::Available | JobState::Retryable => {
                row.finalize(JobState::Cancelled, now);
                CancelResult::Cancelled
            }
            JobState::Running => {
                row.record.cancel_requested = true;
                CancelResult::Requested
            }
            JobState::Completed | JobState::Dead | JobState::Cancelled => {
                CancelResult::AlreadyFinished
            }
        }
    }

    /// `Store::retry` of one job, under the caller's lock.
    pub(super) fn retry(&mut self, id: JobId, now: DateTime<Utc>) -> bool {
        // The job is queued again, so it takes back a key it let go of,
        // unless another job took the key meanwhile: then it runs without
        // one rather than the retry being refused.
        let take_back = self.rows.get(&id).and_then(|row| match &row.hold {
            None => row
                .given
                .clone()
                .filter(|given| self.holder(given).is_none()),
            Some(_) => None,
        });
        match self.rows.get_mut(&id) {
            Some(row) if row.record.state.is_final() => {
                if take_back.is_some() {
                    row.set_hold(take_back);
                }
                let r = &mut row.record;
                if r.state == JobState::Completed {
                    r.checkpoint = None;
                }
                r.state = JobState::Available;
                r.run_at = now;
                r.attempt = 0;
                r.finished_at = None;
                r.cancel_requested = false;
                r.rescues = 0;
                true
            }
            _ => false,
        }
    }
}

impl MemoryStore {
    /// `Store::act_on_jobs`: the whole chunk under one lock (one
    /// transaction), each job's state checked as it is acted on.
    pub(super) fn act(&self, chunk: ActOn) -> Result<Vec<Acted>, StoreError> {
        chunk.validate()?;
        let now = Utc::now();
        let mut revived = false;
        let acted = {
            let mut guard = self.jobs();
            chunk
                .ids
                .iter()
                .map(|&id| {
                    let Some(state) = guard.rows.get(&id).map(|row| row.record.state) else {
                        return Acted::NotFound;
                    };
                    if !chunk.wants(state) {
                        return Acted::Skipped(state);
                    }
                    match chunk.action {
                        JobAction::Retry => {
                            revived |= guard.retry(id, now);
                            Acted::Done
                        }
                        JobAction::Cancel => match guard.cancel(id, now) {
                            CancelResult::Requested => Acted::Requested,
                            _ => Acted::Done,
                        },
                        JobAction::Delete => {
                            guard.rows.remove(&id);
                            Acted::Done
                        }
                    }
                })
                .collect()
        };
        if revived {
            self.wake();
        }
        Ok(acted)
    }

    /// `Store::reschedule`.
    pub(super) fn change(&self, id: JobId, change: Reschedule) -> Result<Rescheduled, StoreError> {
        change.validate()?;
        let now = Utc::now();
        let (done, run_at) = {
            let mut guard = self.jobs();
            let Some(row) = guard.rows.get_mut(&id) else {
                return Ok(Rescheduled::NotFound);
            };
            let r = &mut row.record;
            if !matches!(
                r.state,
                JobState::Scheduled | JobState::Available | JobState::Retryable
            ) {
                return Ok(Rescheduled::NotWaiting(r.state));
            }
            if let Some(priority) = change.priority {
                r.priority = priority;
            }
            match change.run_at {
                Some(RunAt::Now) => r.run_at = now,
                Some(RunAt::At(at)) => r.run_at = at,
                Some(RunAt::In(delay)) => r.run_at = later(now, delay),
                None => {}
            }
            r.state = waiting_state(r.state, r.run_at, now);
            (Rescheduled::Updated(r.state), r.run_at)
        };
        if run_at <= now {
            self.wake();
        } else {
            self.shared
                .work
                .due_in((run_at - now).to_std().unwrap_or(Duration::ZERO));
        }
        Ok(done)
    }
}
