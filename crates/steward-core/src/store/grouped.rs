//! Counts per queue and per kind: what
//! [`Store::grouped_counts`](super::Store::grouped_counts) answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{JobState, StateCounts};

/// How many jobs each queue and each kind has in each state.
///
/// Only queues and kinds with at least one job appear (a queue whose last
/// job was pruned is gone from `by_queue`). Exact: a store counts the rows
/// in one read, so the two maps describe the same moment and sum to the
/// same totals.
///
/// ```
/// use steward_core::store::{GroupedCounts, JobState};
/// let mut c = GroupedCounts::default();
/// c.add("mail", "welcome", JobState::Dead, 2);
/// c.add("mail", "digest", JobState::Completed, 5);
/// assert_eq!(c.queue("mail").dead, 2);
/// assert_eq!(c.kind("digest").completed, 5);
/// assert_eq!(c.totals().total(), 7);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupedCounts {
    /// Each queue's counts per state, by queue name.
    pub by_queue: BTreeMap<String, StateCounts>,
    /// Each kind's counts per state, by kind.
    pub by_kind: BTreeMap<String, StateCounts>,
}

impl GroupedCounts {
    /// Adds `n` jobs of `kind` in `queue` and `state` to both maps (a
    /// store folds its `GROUP BY queue, kind, state` rows with this, so
    /// both groupings come from one scan). A zero `n` adds no entry.
    ///
    /// ```
    /// let mut c = steward_core::store::GroupedCounts::default();
    /// c.add("mail", "welcome", steward_core::store::JobState::Running, 1);
    /// assert_eq!(c.by_queue.len(), 1);
    /// ```
    pub fn add(&mut self, queue: &str, kind: &str, state: JobState, n: u64) {
        if n == 0 {
            return;
        }
        for (map, key) in [(&mut self.by_queue, queue), (&mut self.by_kind, kind)] {
            let counts = map.entry(key.to_string()).or_default();
            counts.set(state, counts.get(state).saturating_add(n));
        }
    }

    /// One queue's counts (all zero for a queue without jobs).
    ///
    /// ```
    /// let c = steward_core::store::GroupedCounts::default();
    /// assert_eq!(c.queue("nowhere").total(), 0);
    /// ```
    pub fn queue(&self, queue: &str) -> StateCounts {
        self.by_queue.get(queue).cloned().unwrap_or_default()
    }

    /// One kind's counts (all zero for a kind without jobs).
    ///
    /// ```
    /// let c = steward_core::store::GroupedCounts::default();
    /// assert_eq!(c.kind("nothing").total(), 0);
    /// ```
    pub fn kind(&self, kind: &str) -> StateCounts {
        self.by_kind.get(kind).cloned().unwrap_or_default()
    }

    /// Every job's counts per state: the sum over queues (the same as over
    /// kinds), equal to [`Store::counts`](super::Store::counts) read at the
    /// same moment.
    ///
    /// ```
    /// let c = steward_core::store::GroupedCounts::default();
    /// assert_eq!(c.totals(), steward_core::store::StateCounts::default());
    /// ```
    pub fn totals(&self) -> StateCounts {
        let mut sum = StateCounts::default();
        for counts in self.by_queue.values() {
            for state in JobState::ALL {
                sum.set(state, sum.get(state).saturating_add(counts.get(state)));
            }
        }
        sum
    }
}
