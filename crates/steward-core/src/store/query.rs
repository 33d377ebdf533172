//! Which jobs [`Store::jobs`](super::Store::jobs) lists: a filter and a
//! keyset cursor. (Issue 14 extends it with time ranges and error text.)

use super::{JobId, JobState, StoreError};

/// The largest page [`Store::jobs`](super::Store::jobs) returns.
pub const MAX_PAGE: u32 = 1000;

/// A filter over jobs, oldest (lowest id) first, and where to start.
///
/// ```
/// use steward_core::store::{JobQuery, JobState};
/// let q = JobQuery::default().kind("report").states([JobState::Available, JobState::Scheduled]).limit(50);
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
    /// Only jobs with an id above this one: the last id of the previous
    /// page (a keyset cursor, never an offset).
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

    /// Only jobs with an id above `id`.
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

    /// Refuses a limit of 0 or above [`MAX_PAGE`].
    ///
    /// ```
    /// assert!(steward_core::store::JobQuery::default().limit(0).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.limit == 0 || self.limit > MAX_PAGE {
            return Err(StoreError::Invalid {
                message: format!("a page of {} jobs: ask for 1 to {MAX_PAGE}", self.limit),
            });
        }
        Ok(())
    }
}
