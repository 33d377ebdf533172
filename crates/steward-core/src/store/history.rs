//! Per-minute history of what the workers did, for charts: how many
//! attempts succeeded, failed, were retried or cancelled, how many jobs were
//! rescued, and how long attempts ran, per queue and kind.
//!
//! Nodes count in memory and write a batch now and then
//! ([`Store::record_history`](super::Store::record_history)), never one
//! write per job; maintenance prunes rows past the retention period.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{RunTimes, StoreError};

/// How long history is kept unless configured otherwise: 7 days.
pub const DEFAULT_HISTORY_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The longest span [`Store::history`](super::Store::history) reads: 31 days.
pub const MAX_HISTORY_SPAN: Duration = Duration::from_secs(31 * 24 * 3600);

/// The most rows one [`Store::record_history`](super::Store::record_history)
/// call writes.
pub const MAX_HISTORY_BATCH: usize = 10_000;

/// How many attempts ended which way, and how many jobs were rescued.
///
/// ```
/// let mut c = steward_core::store::HistoryCounts::default();
/// c.succeeded += 2;
/// c.add(&c.clone());
/// assert_eq!(c.succeeded, 4);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoryCounts {
    /// Attempts that completed.
    pub succeeded: u64,
    /// Jobs that died: out of attempts, failed for good, or rescued too
    /// many times.
    pub failed: u64,
    /// Attempts that failed and will be retried.
    pub retried: u64,
    /// Attempts that ended cancelled.
    pub cancelled: u64,
    /// Jobs put back after their worker was lost (lease expired).
    pub rescued: u64,
}

impl HistoryCounts {
    /// Adds `other`'s counts to these (saturating).
    ///
    /// ```
    /// let mut a = steward_core::store::HistoryCounts { failed: 1, ..Default::default() };
    /// a.add(&a.clone());
    /// assert_eq!(a.failed, 2);
    /// ```
    pub fn add(&mut self, other: &HistoryCounts) {
        self.succeeded = self.succeeded.saturating_add(other.succeeded);
        self.failed = self.failed.saturating_add(other.failed);
        self.retried = self.retried.saturating_add(other.retried);
        self.cancelled = self.cancelled.saturating_add(other.cancelled);
        self.rescued = self.rescued.saturating_add(other.rescued);
    }

    /// Whether every count is zero.
    ///
    /// ```
    /// assert!(steward_core::store::HistoryCounts::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        *self == HistoryCounts::default()
    }
}

/// What one node saw in one minute for one queue and kind, to add to the
/// store's history.
///
/// The minute is given as how long ago it was (`ago`, by the node's clock),
/// not as a time: the store files it under the minute of its own now minus
/// `ago`, so nodes with skewed clocks agree on minutes (the node passes the
/// middle of its minute, so any skew under 30 s files it in the same minute).
///
/// ```
/// use std::time::Duration;
/// use steward_core::store::{HistoryCounts, HistoryDelta, RunTimes};
/// let d = HistoryDelta {
///     ago: Duration::from_secs(30),
///     queue: "default".into(),
///     kind: "email".into(),
///     counts: HistoryCounts { succeeded: 3, ..Default::default() },
///     run_times: RunTimes::default(),
/// };
/// assert!(d.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryDelta {
    /// How long before the store's now the counted minute was.
    pub ago: Duration,
    /// The jobs' queue.
    pub queue: String,
    /// The jobs' kind.
    pub kind: String,
    /// What ended how.
    pub counts: HistoryCounts,
    /// How long the attempts ran.
    pub run_times: RunTimes,
}

impl HistoryDelta {
    /// Refuses an empty queue or kind, and an `ago` beyond
    /// [`MAX_HISTORY_SPAN`] (it would be pruned at once).
    ///
    /// ```
    /// use steward_core::store::HistoryDelta;
    /// let d = HistoryDelta { ago: Default::default(), queue: String::new(), kind: "k".into(),
    ///     counts: Default::default(), run_times: Default::default() };
    /// assert!(d.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.queue.is_empty() || self.kind.is_empty() {
            return Err(StoreError::Invalid {
                message: "history: empty queue or kind".into(),
            });
        }
        let c = &self.counts;
        let largest = [c.succeeded, c.failed, c.retried, c.cancelled, c.rescued]
            .into_iter()
            .chain([self.run_times.count()])
            .max()
            .unwrap_or(0);
        if largest > MAX_HISTORY_COUNT {
            return Err(StoreError::Invalid {
                message: format!("history count {largest}: at most {MAX_HISTORY_COUNT}"),
            });
        }
        if self.ago > MAX_HISTORY_SPAN {
            return Err(StoreError::Invalid {
                message: format!(
                    "history from {} s ago: at most {} s",
                    self.ago.as_secs(),
                    MAX_HISTORY_SPAN.as_secs()
                ),
            });
        }
        Ok(())
    }
}

/// The largest count one delta may carry (2^48): far beyond any minute's
/// work, and low enough that stores adding deltas up never overflow a
/// signed 64-bit column.
pub const MAX_HISTORY_COUNT: u64 = 1 << 48;

/// Checks a batch for [`Store::record_history`](super::Store::record_history):
/// every delta valid, at most [`MAX_HISTORY_BATCH`].
///
/// ```
/// assert!(steward_core::store::validate_history(&[]).is_ok());
/// ```
pub fn validate_history(deltas: &[HistoryDelta]) -> Result<(), StoreError> {
    if deltas.len() > MAX_HISTORY_BATCH {
        return Err(StoreError::Invalid {
            message: format!(
                "{} history rows in one batch: at most {MAX_HISTORY_BATCH}",
                deltas.len()
            ),
        });
    }
    deltas.iter().try_for_each(HistoryDelta::validate)
}

/// Which history to read: the last `since`, optionally one queue or kind.
///
/// ```
/// use std::time::Duration;
/// use steward_core::store::HistoryQuery;
/// let q = HistoryQuery::last(Duration::from_secs(3600)).queue("mail");
/// assert!(q.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// The minutes overlapping the last `since` by the store's clock: from
    /// the one holding its now minus `since` to the current one.
    pub since: Duration,
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
}

impl HistoryQuery {
    /// The last `since`, every queue and kind.
    ///
    /// ```
    /// let q = steward_core::store::HistoryQuery::last(std::time::Duration::from_secs(600));
    /// ```
    pub fn last(since: Duration) -> Self {
        HistoryQuery {
            since,
            queue: None,
            kind: None,
        }
    }

    /// Only `queue`.
    ///
    /// ```
    /// let q = steward_core::store::HistoryQuery::last(std::time::Duration::from_secs(60)).queue("q");
    /// ```
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Only `kind`.
    ///
    /// ```
    /// let q = steward_core::store::HistoryQuery::last(std::time::Duration::from_secs(60)).kind("k");
    /// ```
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Refuses a span of zero or beyond [`MAX_HISTORY_SPAN`].
    ///
    /// ```
    /// use steward_core::store::HistoryQuery;
    /// assert!(HistoryQuery::last(std::time::Duration::ZERO).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.since.is_zero() || self.since > MAX_HISTORY_SPAN {
            return Err(StoreError::Invalid {
                message: format!(
                    "history of the last {} s: ask for 1 s to {} s",
                    self.since.as_secs(),
                    MAX_HISTORY_SPAN.as_secs()
                ),
            });
        }
        Ok(())
    }
}

/// One minute of one queue and kind, as the store keeps it.
///
/// ```
/// use steward_core::store::HistoryRow;
/// fn ok(row: &HistoryRow) -> u64 { row.counts.succeeded }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// The minute's start, UTC, by the store's clock.
    pub minute: DateTime<Utc>,
    /// The queue.
    pub queue: String,
    /// The kind.
    pub kind: String,
    /// What ended how.
    pub counts: HistoryCounts,
    /// How long attempts ran.
    pub run_times: RunTimes,
}

/// The start of the minute holding `ms` (milliseconds since the epoch).
///
/// ```
/// assert_eq!(steward_core::store::minute_start_ms(61_500), 60_000);
/// assert_eq!(steward_core::store::minute_start_ms(-1), -60_000);
/// ```
pub fn minute_start_ms(ms: i64) -> i64 {
    ms.div_euclid(60_000).saturating_mul(60_000)
}

/// A history row's key: the minute's start (ms since the epoch), queue, kind.
pub type HistoryKey = (i64, String, String);

/// Adds up a batch by row, each delta filed under the minute holding
/// `now_ms - ago` (the store's now, in ms): what a store writes, one entry
/// per row, keys in order (so concurrent writers lock rows in one order).
///
/// ```
/// use std::time::Duration;
/// use steward_core::store::{group_history, HistoryDelta};
/// let d = HistoryDelta { ago: Duration::from_secs(30), queue: "q".into(), kind: "k".into(),
///     counts: Default::default(), run_times: Default::default() };
/// let rows = group_history(vec![d.clone(), d], 120_000);
/// assert_eq!(rows.keys().next(), Some(&(60_000, "q".to_string(), "k".to_string())));
/// ```
pub fn group_history(
    deltas: Vec<HistoryDelta>,
    now_ms: i64,
) -> BTreeMap<HistoryKey, (HistoryCounts, RunTimes)> {
    let mut rows: BTreeMap<HistoryKey, (HistoryCounts, RunTimes)> = BTreeMap::new();
    for d in deltas {
        let ago = i64::try_from(d.ago.as_millis()).unwrap_or(i64::MAX);
        let minute = minute_start_ms(now_ms.saturating_sub(ago));
        let row = rows.entry((minute, d.queue, d.kind)).or_default();
        row.0.add(&d.counts);
        row.1.merge(&d.run_times);
    }
    rows
}

/// What a rescue adds to the history, per queue and kind: each job it put
/// back counts as rescued, each it made dead (rescued too often) as failed.
/// Takes `(queue, kind, made_dead)` per rescued job.
///
/// ```
/// use steward_core::store::rescue_tallies;
/// let t = rescue_tallies([("q", "k", false), ("q", "k", true)]);
/// let c = t[&("q".to_string(), "k".to_string())];
/// assert_eq!((c.rescued, c.failed), (1, 1));
/// ```
pub fn rescue_tallies<Q: AsRef<str>, K: AsRef<str>>(
    jobs: impl IntoIterator<Item = (Q, K, bool)>,
) -> BTreeMap<(String, String), HistoryCounts> {
    let mut tallies: BTreeMap<(String, String), HistoryCounts> = BTreeMap::new();
    for (queue, kind, dead) in jobs {
        let key = (queue.as_ref().to_string(), kind.as_ref().to_string());
        let c = tallies.entry(key).or_default();
        if dead {
            c.failed += 1;
        } else {
            c.rescued += 1;
        }
    }
    tallies
}
