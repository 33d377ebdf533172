//! Per-minute history rows (see `Store::record_history`).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use steward_core::store::{
    HistoryCounts, HistoryDelta, HistoryQuery, HistoryRow, RunTimes, group_history, minute_start_ms,
};

use super::row::earlier;

/// Rows by (minute start in ms, queue, kind): the order `history` returns.
#[derive(Debug, Default)]
pub(super) struct History {
    rows: BTreeMap<(i64, String, String), (HistoryCounts, RunTimes)>,
}

impl History {
    /// Adds deltas already validated, filed by `now - ago`.
    pub(super) fn record(&mut self, deltas: Vec<HistoryDelta>, now: DateTime<Utc>) {
        for (key, (counts, times)) in group_history(deltas, now.timestamp_millis()) {
            let row = self.rows.entry(key).or_default();
            row.0.add(&counts);
            row.1.merge(&times);
        }
    }

    /// Counts without run times (rescues), in the minute of `now`.
    pub(super) fn count(
        &mut self,
        queue: &str,
        kind: &str,
        counts: HistoryCounts,
        now: DateTime<Utc>,
    ) {
        let minute = minute_start_ms(now.timestamp_millis());
        let row = self
            .rows
            .entry((minute, queue.to_string(), kind.to_string()))
            .or_default();
        row.0.add(&counts);
    }

    /// `Store::history`, on a query already validated.
    pub(super) fn read(&self, query: &HistoryQuery, now: DateTime<Utc>) -> Vec<HistoryRow> {
        let from = minute_start_ms(earlier(now, query.since).timestamp_millis());
        self.rows
            .range((from, String::new(), String::new())..)
            .filter(|((_, q, k), _)| {
                query.queue.as_ref().is_none_or(|want| want == q)
                    && query.kind.as_ref().is_none_or(|want| want == k)
            })
            .map(|((minute, queue, kind), (counts, run_times))| HistoryRow {
                minute: DateTime::from_timestamp_millis(*minute).unwrap_or_default(),
                queue: queue.clone(),
                kind: kind.clone(),
                counts: *counts,
                run_times: run_times.clone(),
            })
            .collect()
    }

    /// `Store::prune_history`: minutes that began before `now - older_than`.
    pub(super) fn prune(&mut self, older_than: Duration, now: DateTime<Utc>) -> u64 {
        let cutoff = earlier(now, older_than).timestamp_millis();
        let before = self.rows.len();
        self.rows.retain(|(minute, _, _), _| *minute >= cutoff);
        (before - self.rows.len()) as u64
    }
}
