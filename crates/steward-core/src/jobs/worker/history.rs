//! The worker's share of the per-minute history: attempts' outcomes and run
//! times are counted in memory as their outcomes are written, and a task
//! adds them to the store now and then in one batch (`history_every`), so
//! charts cost one small write per node every few seconds, never one per
//! job. Counts a write fails to deliver are kept for the next one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::store::{
    FinishOutcome, HistoryCounts, HistoryDelta, MAX_HISTORY_BATCH, RunTimes, Store, minute_start_ms,
};
use crate::sync::LockExt;

/// What the history needs of an attempt that ended: its queue, kind and
/// run time (kept with the outcome until the store has applied it).
#[derive(Debug, Clone)]
pub(crate) struct Tag {
    pub(crate) queue: Arc<str>,
    pub(crate) kind: String,
    pub(crate) took: Duration,
}

type Key = (i64, Arc<str>, String);

/// Counts per (minute by this node's clock, queue, kind), not yet written.
#[derive(Clone, Default)]
pub(crate) struct Tally {
    rows: Arc<Mutex<HashMap<Key, (HistoryCounts, RunTimes)>>>,
}

impl Tally {
    /// Counts outcomes the store applied (one lock per batch written).
    pub(crate) fn count<'a>(&self, applied: impl IntoIterator<Item = (&'a FinishOutcome, Tag)>) {
        let minute = minute_start_ms(Utc::now().timestamp_millis());
        let mut rows = self.rows.lock_or_recover();
        for (outcome, tag) in applied {
            let mut counts = HistoryCounts::default();
            match outcome {
                FinishOutcome::Completed => counts.succeeded = 1,
                FinishOutcome::Failed {
                    retry_in: Some(_), ..
                } => counts.retried = 1,
                FinishOutcome::Failed { retry_in: None, .. } => counts.failed = 1,
                FinishOutcome::Cancelled { .. } => counts.cancelled = 1,
                // Not an end: the job runs again later, and its time then.
                FinishOutcome::Snoozed { .. } => continue,
            }
            // The tag's names move into the key: no allocation per job.
            let row = rows.entry((minute, tag.queue, tag.kind)).or_default();
            row.0.add(&counts);
            row.1.record(tag.took);
        }
    }

    /// Takes what is counted, as deltas the store files by its own clock.
    fn take(&self) -> Vec<HistoryDelta> {
        let rows = std::mem::take(&mut *self.rows.lock_or_recover());
        let now = Utc::now().timestamp_millis();
        rows.into_iter()
            .map(
                |((minute, queue, kind), (counts, run_times))| HistoryDelta {
                    // The middle of the minute: a store whose clock differs
                    // from ours by under 30 s files it in the same minute.
                    ago: Duration::from_millis(
                        u64::try_from(now.saturating_sub(minute + 30_000)).unwrap_or(0),
                    ),
                    queue: queue.to_string(),
                    kind,
                    counts,
                    run_times,
                },
            )
            .collect()
    }

    /// Puts back deltas a write did not deliver (the newest first, at most
    /// a batch's worth: an outage longer than that loses the oldest
    /// minutes, with a warning, rather than growing without bound).
    fn put_back(&self, mut deltas: Vec<HistoryDelta>) {
        deltas.sort_by_key(|d| d.ago);
        if deltas.len() > MAX_HISTORY_BATCH {
            tracing::warn!(
                rows = deltas.len() - MAX_HISTORY_BATCH,
                "history not written for too long: its oldest minutes are dropped"
            );
            deltas.truncate(MAX_HISTORY_BATCH);
        }
        let now = Utc::now().timestamp_millis();
        let mut rows = self.rows.lock_or_recover();
        for d in deltas {
            let ago = i64::try_from(d.ago.as_millis()).unwrap_or(i64::MAX);
            let minute = minute_start_ms(now.saturating_sub(ago));
            let row = rows.entry((minute, d.queue.into(), d.kind)).or_default();
            row.0.add(&d.counts);
            row.1.merge(&d.run_times);
        }
    }

    /// Writes what is counted; on failure keeps it for the next write.
    pub(crate) async fn flush<S: Store>(&self, store: &S) {
        let deltas = self.take();
        if deltas.is_empty() {
            return;
        }
        if let Err(err) = store.record_history(deltas.clone()).await {
            tracing::warn!(error = %err, "cannot write the job history; trying again later");
            self.put_back(deltas);
        }
    }
}

/// Flushes `tally` every `every` until `stop`, then once more (the last
/// outcomes), within `until`.
pub(crate) async fn run<S: Store>(
    store: Arc<S>,
    tally: Tally,
    every: Duration,
    stop: CancellationToken,
    until: impl std::future::Future<Output = ()>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticker.tick() => tally.flush(&*store).await,
        }
    }
    tokio::select! {
        _ = tally.flush(&*store) => {}
        _ = until => tracing::warn!("worker stopping: the last minute of job history was not written in time"),
    }
}
