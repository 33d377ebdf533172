//! Queue settings of the memory store: the pauses, by queue name. Locked
//! before `jobs` when both are (a pause checks that the queue has jobs).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use steward_core::store::{QueueChange, QueueInfo, StateCounts};

/// One setting row per queue ever paused (kept when resumed, as the SQL
/// stores keep theirs).
#[derive(Debug, Default)]
pub(super) struct QueueSettings {
    paused_since: BTreeMap<String, Option<DateTime<Utc>>>,
}

impl QueueSettings {
    /// Pauses (`Some(now)`) or resumes (`None`) `queue`; `has_jobs` says
    /// whether any job names it.
    pub(super) fn set(
        &mut self,
        queue: &str,
        paused: Option<DateTime<Utc>>,
        has_jobs: bool,
    ) -> QueueChange {
        match self.paused_since.get_mut(queue) {
            Some(since) if since.is_some() == paused.is_some() => QueueChange::Unchanged,
            Some(since) => {
                *since = paused;
                QueueChange::Changed
            }
            None if !has_jobs => QueueChange::Unknown,
            None if paused.is_none() => QueueChange::Unchanged,
            None => {
                self.paused_since.insert(queue.to_string(), paused);
                QueueChange::Changed
            }
        }
    }

    pub(super) fn paused(&self) -> Vec<String> {
        self.paused_since
            .iter()
            .filter(|(_, since)| since.is_some())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Every queue with jobs (`counts`) or a setting, by name.
    pub(super) fn list(&self, mut counts: BTreeMap<String, StateCounts>) -> Vec<QueueInfo> {
        for name in self.paused_since.keys() {
            counts.entry(name.clone()).or_default();
        }
        counts
            .into_iter()
            .map(|(name, counts)| QueueInfo {
                paused_since: self.paused_since.get(&name).copied().flatten(),
                name,
                counts,
            })
            .collect()
    }
}
