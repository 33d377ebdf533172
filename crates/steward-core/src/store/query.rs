//! Which jobs [`Store::jobs`](super::Store::jobs) lists: a filter, an
//! order and a keyset cursor.

use super::query_range::{JobOrder, JobTime, TimeBound, TimeRange};
use super::{JobId, JobState, StoreError};

/// The largest page [`Store::jobs`](super::Store::jobs) returns.
pub const MAX_PAGE: u32 = 1000;

/// The longest text [`JobQuery::error`] may search for, in bytes: longer
/// text is certainly pasted by mistake (and would only slow the scan).
pub const MAX_ERROR_MATCH: usize = 1000;

/// A filter over jobs, in an order by id, and where to start.
///
/// Every filter given must match (AND). Time ranges include their `from`
/// and exclude their `to`; the id range includes both ends.
///
/// ```
/// use std::time::Duration;
/// use steward_core::store::{JobOrder, JobQuery, JobState, JobTime, TimeBound};
/// let q = JobQuery::default()
///     .kind("report")
///     .states([JobState::Dead])
///     .since(JobTime::Finished, TimeBound::Ago(Duration::from_secs(3600)))
///     .error("timeout")
///     .order(JobOrder::NewestFirst)
///     .limit(50);
/// assert!(q.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobQuery {
    /// Only jobs in one of these states; empty means every state.
    pub states: Vec<JobState>,
    /// Only jobs of this queue.
    pub queue: Option<String>,
    /// Only jobs of this kind.
    pub kind: Option<String>,
    /// Only jobs created in this range.
    pub created: TimeRange,
    /// Only jobs whose `run_at` is in this range.
    pub run_at: TimeRange,
    /// Only finished jobs whose `finished_at` is in this range.
    pub finished: TimeRange,
    /// Only jobs with at least this id.
    pub min_id: Option<JobId>,
    /// Only jobs with at most this id.
    pub max_id: Option<JobId>,
    /// Only jobs whose last attempt error's message contains this text,
    /// ignoring the case of ASCII letters (`%`, `_` and `\` are plain
    /// characters). Jobs that never failed have no such message.
    pub error: Option<String>,
    /// Oldest (lowest id) or newest first.
    pub order: JobOrder,
    /// Only jobs past this one in [`order`](Self::order) (above it oldest
    /// first, below it newest first): the last id of the previous page, a
    /// keyset cursor, never an offset. [`JobQuery::resume`] sets it from
    /// a page token.
    pub after: Option<JobId>,
    /// At most this many (1 to [`MAX_PAGE`], default 100).
    pub limit: u32,
}

impl Default for JobQuery {
    fn default() -> Self {
        JobQuery {
            states: Vec::new(),
            queue: None,
            kind: None,
            created: TimeRange::default(),
            run_at: TimeRange::default(),
            finished: TimeRange::default(),
            min_id: None,
            max_id: None,
            error: None,
            order: JobOrder::OldestFirst,
            after: None,
            limit: 100,
        }
    }
}

impl JobQuery {
    /// Only jobs in these states.
    ///
    /// ```
    /// let q = steward_core::store::JobQuery::default().states([steward_core::store::JobState::Dead]);
    /// ```
    pub fn states(mut self, states: impl IntoIterator<Item = JobState>) -> Self {
        self.states = states.into_iter().collect();
        self
    }

    /// Only jobs of `queue`.
    ///
    /// ```
    /// let q = steward_core::store::JobQuery::default().queue("mail");
    /// ```
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Only jobs of `kind`.
    ///
    /// ```
    /// let q = steward_core::store::JobQuery::default().kind("report");
    /// ```
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// The range on `time` (a mutable reference, to set both ends).
    ///
    /// ```
    /// use steward_core::store::{JobQuery, JobTime, TimeBound};
    /// let mut q = JobQuery::default();
    /// q.range_mut(JobTime::RunAt).to = Some(TimeBound::At(chrono::Utc::now()));
    /// ```
    pub fn range_mut(&mut self, time: JobTime) -> &mut TimeRange {
        match time {
            JobTime::Created => &mut self.created,
            JobTime::RunAt => &mut self.run_at,
            JobTime::Finished => &mut self.finished,
        }
    }

    /// Only jobs whose `time` is at or after `from`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use steward_core::store::{JobQuery, JobTime, TimeBound};
    /// let q = JobQuery::default().since(JobTime::Created, TimeBound::Ago(Duration::from_secs(900)));
    /// ```
    pub fn since(mut self, time: JobTime, from: TimeBound) -> Self {
        self.range_mut(time).from = Some(from);
        self
    }

    /// Only jobs whose `time` is before `to`.
    ///
    /// ```
    /// use steward_core::store::{JobQuery, JobTime, TimeBound};
    /// let q = JobQuery::default().until(JobTime::Finished, TimeBound::At(chrono::Utc::now()));
    /// ```
    pub fn until(mut self, time: JobTime, to: TimeBound) -> Self {
        self.range_mut(time).to = Some(to);
        self
    }

    /// Only jobs with ids from `min` to `max`, both included.
    ///
    /// ```
    /// use steward_core::store::{JobId, JobQuery};
    /// let q = JobQuery::default().ids(JobId(10), JobId(20));
    /// ```
    pub fn ids(mut self, min: JobId, max: JobId) -> Self {
        self.min_id = Some(min);
        self.max_id = Some(max);
        self
    }

    /// Only jobs whose last error's message contains `text` (ASCII case
    /// ignored, wildcards literal).
    ///
    /// ```
    /// let q = steward_core::store::JobQuery::default().error("connection refused");
    /// ```
    pub fn error(mut self, text: impl Into<String>) -> Self {
        self.error = Some(text.into());
        self
    }

    /// Oldest or newest first.
    ///
    /// ```
    /// use steward_core::store::{JobOrder, JobQuery};
    /// let q = JobQuery::default().order(JobOrder::NewestFirst);
    /// ```
    pub fn order(mut self, order: JobOrder) -> Self {
        self.order = order;
        self
    }

    /// Only jobs past `id` in the query's order. Prefer
    /// [`resume`](Self::resume) with a page token, which also checks that
    /// the token came from this query.
    ///
    /// ```
    /// let q = steward_core::store::JobQuery::default().after(steward_core::store::JobId(100));
    /// ```
    pub fn after(mut self, id: JobId) -> Self {
        self.after = Some(id);
        self
    }

    /// At most `limit` jobs.
    ///
    /// ```
    /// let q = steward_core::store::JobQuery::default().limit(10);
    /// ```
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = limit;
        self
    }

    /// Refuses a limit of 0 or above [`MAX_PAGE`], a time range whose
    /// `from` is after its `to` or out of range, an id range whose `min` is
    /// above its `max`, and an empty or over-long ([`MAX_ERROR_MATCH`])
    /// error text; each with [`StoreError::Invalid`] saying which.
    ///
    /// ```
    /// use steward_core::store::{JobId, JobQuery};
    /// assert!(JobQuery::default().limit(0).validate().is_err());
    /// assert!(JobQuery::default().ids(JobId(5), JobId(4)).validate().is_err());
    /// assert!(JobQuery::default().error("").validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |message: String| Err(StoreError::Invalid { message });
        if self.limit == 0 || self.limit > MAX_PAGE {
            return invalid(format!(
                "a page of {} jobs: ask for 1 to {MAX_PAGE}",
                self.limit
            ));
        }
        self.created.check(JobTime::Created)?;
        self.run_at.check(JobTime::RunAt)?;
        self.finished.check(JobTime::Finished)?;
        if let (Some(min), Some(max)) = (self.min_id, self.max_id) {
            if min > max {
                return invalid(format!(
                    "ids from {min} to {max}: the minimum is above the maximum"
                ));
            }
        }
        if let Some(text) = &self.error {
            if text.is_empty() {
                return invalid(
                    "an empty error text matches every failed job: give some text".into(),
                );
            }
            if text.len() > MAX_ERROR_MATCH {
                return invalid(format!(
                    "an error text of {} bytes: at most {MAX_ERROR_MATCH}",
                    text.len()
                ));
            }
        }
        Ok(())
    }
}
