//! The ranges and the order a [`JobQuery`](super::JobQuery) may add to its
//! filter: which of a job's times a range bounds, a bound as a time or as an
//! age on the store's clock, and oldest or newest first.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::StoreError;
use super::validate::{EARLIEST_TIME, LATEST_TIME};

/// The oldest age a [`TimeBound::Ago`] may reach back: 100 years. Older
/// bounds are certainly mistakes, and every store can subtract this from its
/// now without leaving the times it can hold.
///
/// ```
/// assert_eq!(steward_core::store::MAX_AGO.as_secs(), 100 * 365 * 24 * 3600 + 25 * 24 * 3600);
/// ```
pub const MAX_AGO: Duration = Duration::from_secs((100 * 365 + 25) * 24 * 3600);

/// One end of a time range: a time, or an age the store turns into a time
/// on its own clock when it runs the query. So "the last hour" means the
/// database's last hour, whatever the caller's clock says, and a page
/// token made with an age is taken back by the same age on the next page
/// (the window moves on with the clock between pages; the cursor keeps
/// the pages from overlapping).
///
/// ```
/// use std::time::Duration;
/// use steward_core::store::TimeBound;
/// let hour_ago = TimeBound::Ago(Duration::from_secs(3600));
/// let at = TimeBound::At(chrono::Utc::now());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeBound {
    /// This time.
    At(DateTime<Utc>),
    /// This long before the store's now (at most [`MAX_AGO`]).
    Ago(Duration),
}

impl TimeBound {
    /// The time this bound stands for when the store's clock reads `now`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use steward_core::store::TimeBound;
    /// let now = chrono::Utc::now();
    /// assert_eq!(TimeBound::Ago(Duration::from_secs(60)).resolve(now), now - chrono::TimeDelta::seconds(60));
    /// ```
    pub fn resolve(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            TimeBound::At(at) => at,
            TimeBound::Ago(age) => chrono::TimeDelta::from_std(age)
                .ok()
                .and_then(|age| now.checked_sub_signed(age))
                .unwrap_or(EARLIEST_TIME)
                .max(EARLIEST_TIME),
        }
    }

    /// Refuses a time outside [`EARLIEST_TIME`]..=[`LATEST_TIME`] or an age
    /// above [`MAX_AGO`].
    fn check(self, what: &str) -> Result<(), StoreError> {
        let message = match self {
            TimeBound::At(at) if !(EARLIEST_TIME..=LATEST_TIME).contains(&at) => {
                format!("{what} {at} is outside the years 1 to 9999")
            }
            TimeBound::Ago(age) if age > MAX_AGO => {
                format!("{what} of {age:?} ago reaches back more than 100 years")
            }
            _ => return Ok(()),
        };
        Err(StoreError::Invalid { message })
    }
}

/// Which of a job's times a [`TimeRange`] bounds.
///
/// ```
/// use steward_core::store::JobTime;
/// assert_eq!(JobTime::Finished.as_str(), "finished_at");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobTime {
    /// When the job was enqueued (never changes).
    Created,
    /// When the job runs, or ran last (moves with retries and snoozes).
    RunAt,
    /// When the job completed, died or was cancelled; jobs not finished
    /// have none and are never in a range on it.
    Finished,
}

impl JobTime {
    /// The column's name, as the stores and error messages spell it.
    ///
    /// ```
    /// assert_eq!(steward_core::store::JobTime::Created.as_str(), "created_at");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            JobTime::Created => "created_at",
            JobTime::RunAt => "run_at",
            JobTime::Finished => "finished_at",
        }
    }
}

/// A range of times: `from` inclusive, `to` exclusive (so that adjacent
/// ranges never share a job); either end may be open.
///
/// ```
/// use std::time::Duration;
/// use steward_core::store::{TimeBound, TimeRange};
/// let last_hour = TimeRange { from: Some(TimeBound::Ago(Duration::from_secs(3600))), to: None };
/// assert!(last_hour.contains(chrono::Utc::now(), chrono::Utc::now()));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TimeRange {
    /// The earliest time in the range.
    pub from: Option<TimeBound>,
    /// The first time after the range.
    pub to: Option<TimeBound>,
}

impl TimeRange {
    /// Whether `at` is in the range when the store's clock reads `now`.
    ///
    /// ```
    /// use steward_core::store::{TimeBound, TimeRange};
    /// let now = chrono::Utc::now();
    /// let until_now = TimeRange { from: None, to: Some(TimeBound::At(now)) };
    /// assert!(!until_now.contains(now, now));
    /// ```
    pub fn contains(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        self.from.is_none_or(|from| at >= from.resolve(now))
            && self.to.is_none_or(|to| at < to.resolve(now))
    }

    /// Refuses bounds out of range, and a `from` after its `to` when both
    /// are times or both ages (a time and an age compare only on the
    /// store's clock: such a range may simply be empty).
    pub(super) fn check(&self, time: JobTime) -> Result<(), StoreError> {
        let what = time.as_str();
        if let Some(from) = self.from {
            from.check(&format!("{what} from"))?;
        }
        if let Some(to) = self.to {
            to.check(&format!("{what} to"))?;
        }
        let reversed = match (self.from, self.to) {
            (Some(TimeBound::At(from)), Some(TimeBound::At(to))) => from > to,
            (Some(TimeBound::Ago(from)), Some(TimeBound::Ago(to))) => from < to,
            _ => false,
        };
        if reversed {
            return Err(StoreError::Invalid {
                message: format!(
                    "{what} from {:?} is after to {:?}: the range holds nothing",
                    self.from, self.to
                ),
            });
        }
        Ok(())
    }
}

/// The order of a page: by id, which is the order jobs were enqueued in.
///
/// ```
/// use steward_core::store::JobOrder;
/// assert_eq!(JobOrder::default(), JobOrder::OldestFirst);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum JobOrder {
    /// Lowest id first.
    #[default]
    OldestFirst,
    /// Highest id first.
    NewestFirst,
}
