//! `record_history`, `history`, `prune_history`: per-minute counts and run
//! times per queue and kind, filed on the store's clock, added up across
//! writers, and the rescues `rescue_expired` adds itself.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use steward_core::store::{
    HistoryCounts, HistoryDelta, HistoryQuery, HistoryRow, MAX_HISTORY_BATCH, MAX_HISTORY_SPAN,
    RunTimes, Store, StoreError,
};

use crate::Harness;
use crate::support::{
    Fixture, HOUR, SHORT_LEASE, claim_one, enqueue_one, fresh_queue, job_in, joined, now,
    rescue_until, transient,
};

const MINUTE: Duration = Duration::from_secs(60);

fn delta(ago: Duration, queue: &str, kind: &str, succeeded: u64, took_ms: &[u64]) -> HistoryDelta {
    let mut run_times = RunTimes::default();
    for &ms in took_ms {
        run_times.record(Duration::from_millis(ms));
    }
    HistoryDelta {
        ago,
        queue: queue.into(),
        kind: kind.into(),
        counts: HistoryCounts {
            succeeded,
            ..Default::default()
        },
        run_times,
    }
}

async fn record<S: Store>(store: &S, deltas: Vec<HistoryDelta>) {
    transient(|| store.record_history(deltas.clone()))
        .await
        .unwrap_or_else(|e| panic!("record_history failed: {e}"));
}

async fn rows<S: Store>(store: &S, query: HistoryQuery) -> Vec<HistoryRow> {
    transient(|| store.history(query.clone()))
        .await
        .unwrap_or_else(|e| panic!("history({query:?}) failed: {e}"))
}

fn minute_of(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0)
        .and_then(|t| t.with_second(0))
        .unwrap_or(t)
}

/// Two deltas for one queue, kind and minute make one row: counts summed,
/// run times merged. Another kind has its own row; rows come by minute,
/// then queue, then kind, and a minute is its start on the store's clock.
pub async fn record_history_adds_up_one_minute_of_one_queue_and_kind<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("history");
    let before = now();
    record(s, vec![delta(Duration::ZERO, &q, "b", 2, &[10, 20])]).await;
    record(
        s,
        vec![
            delta(Duration::ZERO, &q, "b", 3, &[30]),
            delta(Duration::ZERO, &q, "a", 1, &[]),
        ],
    )
    .await;
    let after = now();

    let got = rows(s, HistoryQuery::last(HOUR).queue(&q)).await;
    let kinds: Vec<&str> = got.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["a", "b"], "one row per kind, by kind");
    let b = &got[1];
    assert_eq!(b.counts.succeeded, 5, "counts of one minute add up");
    assert_eq!(b.run_times.count(), 3, "run times of one minute merge");
    assert!(
        b.minute == minute_of(before) || b.minute == minute_of(after),
        "the minute {} is the start of the store's current minute ({before} .. {after})",
        b.minute
    );
}

/// Deltas of different minutes stay apart, and `since` leaves out minutes
/// that began before it.
pub async fn history_keeps_minutes_apart_and_reads_only_the_span_asked<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("history");
    record(
        s,
        vec![
            delta(10 * MINUTE, &q, "k", 1, &[]),
            delta(Duration::ZERO, &q, "k", 2, &[]),
        ],
    )
    .await;
    let all = rows(s, HistoryQuery::last(HOUR).queue(&q)).await;
    assert_eq!(all.len(), 2, "two minutes, two rows: {all:?}");
    assert!(all[0].minute < all[1].minute, "oldest minute first");
    assert_eq!(
        all[1].minute - all[0].minute,
        TimeDelta::minutes(10),
        "filed ten minutes apart"
    );
    let recent = rows(s, HistoryQuery::last(5 * MINUTE).queue(&q)).await;
    assert_eq!(recent.len(), 1, "only the recent minute: {recent:?}");
    assert_eq!(recent[0].counts.succeeded, 2);
}

/// Filters by queue and by kind match exact values only; text that looks
/// like SQL or a wildcard is just a name.
pub async fn history_filters_by_queue_and_kind<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("history");
    let hostile = format!("{q}'); DELETE FROM steward_history; --%");
    record(
        s,
        vec![
            delta(Duration::ZERO, &q, "k1", 1, &[]),
            delta(Duration::ZERO, &q, "k2", 2, &[]),
            delta(Duration::ZERO, &hostile, "k1", 4, &[]),
        ],
    )
    .await;
    let k1 = rows(s, HistoryQuery::last(HOUR).kind("k1")).await;
    let sum: u64 = k1.iter().map(|r| r.counts.succeeded).sum();
    assert_eq!(sum, 5, "kind k1 in both queues: {k1:?}");
    let hostile_rows = rows(s, HistoryQuery::last(HOUR).queue(&hostile)).await;
    assert_eq!(hostile_rows.len(), 1, "a hostile name is a name");
    assert_eq!(hostile_rows[0].queue, hostile);
    let both = rows(s, HistoryQuery::last(HOUR).queue(&q).kind("k2")).await;
    assert_eq!(both.len(), 1);
    assert_eq!(both[0].counts.succeeded, 2);
    let none = rows(s, HistoryQuery::last(HOUR).queue(format!("{q}%"))).await;
    assert!(none.is_empty(), "`%` is not a wildcard: {none:?}");
}

/// Writers racing on one row add up: no update is lost.
pub async fn record_history_from_concurrent_writers_loses_nothing<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let q = fresh_queue("history");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = f.another_handle(h).await;
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..5 {
                record(&*store, vec![delta(Duration::ZERO, &q, "k", 1, &[5])]).await;
            }
        }));
    }
    for t in tasks {
        joined(t).await;
    }
    let got = rows(&*f.store, HistoryQuery::last(HOUR).queue(&q)).await;
    let (n, times): (u64, u64) = got.iter().fold((0, 0), |(n, t), r| {
        (n + r.counts.succeeded, t + r.run_times.count())
    });
    assert_eq!((n, times), (40, 40), "8 writers x 5 batches: {got:?}");
}

/// One invalid delta refuses the whole batch and writes nothing; so do a
/// batch over the limit and an `ago` beyond the longest span.
pub async fn record_history_refuses_an_invalid_batch_and_writes_nothing<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("history");
    let good = delta(Duration::ZERO, &q, "k", 1, &[]);
    let bad_batches = [
        vec![good.clone(), delta(Duration::ZERO, "", "k", 1, &[])],
        vec![good.clone(), delta(Duration::ZERO, &q, "", 1, &[])],
        vec![
            good.clone(),
            delta(MAX_HISTORY_SPAN + MINUTE, &q, "k", 1, &[]),
        ],
        vec![good.clone(); MAX_HISTORY_BATCH + 1],
    ];
    for batch in bad_batches {
        let n = batch.len();
        match s.record_history(batch).await {
            Err(StoreError::Invalid { .. }) => {}
            other => panic!("a bad batch of {n} must be refused as invalid, got {other:?}"),
        }
    }
    let got = rows(s, HistoryQuery::last(HOUR).queue(&q)).await;
    assert!(
        got.is_empty(),
        "nothing of a refused batch is written: {got:?}"
    );
}

/// A span of zero or beyond the longest is refused.
pub async fn history_refuses_a_zero_or_too_long_span<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    for since in [Duration::ZERO, MAX_HISTORY_SPAN + MINUTE, Duration::MAX] {
        match f.store.history(HistoryQuery::last(since)).await {
            Err(StoreError::Invalid { .. }) => {}
            other => panic!("history of the last {since:?} must be refused, got {other:?}"),
        }
    }
}

/// `prune_history` deletes minutes older than the age given, by the
/// store's clock, and keeps the rest.
pub async fn prune_history_deletes_minutes_older_than_the_age<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("history");
    record(
        s,
        vec![
            delta(3 * HOUR, &q, "k", 1, &[]),
            delta(Duration::ZERO, &q, "k", 2, &[]),
        ],
    )
    .await;
    let pruned = transient(|| s.prune_history(HOUR))
        .await
        .unwrap_or_else(|e| panic!("prune_history failed: {e}"));
    assert_eq!(pruned, 1, "the minute three hours ago goes");
    let left = rows(s, HistoryQuery::last(4 * HOUR).queue(&q)).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].counts.succeeded, 2, "the recent minute stays");
}

/// A rescue adds to the history of the job's queue and kind: rescued jobs
/// as rescued, jobs it makes dead as failed.
pub async fn rescue_expired_adds_rescued_and_dead_jobs_to_the_history<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let q = fresh_queue("history");
    let id = enqueue_one(s, job_in(&q)).await;
    claim_one(s, &q, id, SHORT_LEASE).await;
    let report = rescue_until(s, 2, 1).await;
    assert_eq!(report.rescued, 1);
    claim_one(s, &q, id, SHORT_LEASE).await;
    let report = rescue_until(s, 2, 1).await;
    assert_eq!(report.dead, 1, "the second rescue in a row is the last");

    let got = rows(s, HistoryQuery::last(HOUR).queue(&q)).await;
    let mut total = HistoryCounts::default();
    for r in &got {
        total.add(&r.counts);
        assert_eq!(r.kind, job_in(&q).kind, "filed under the job's kind");
    }
    assert_eq!(
        (total.rescued, total.failed, total.succeeded),
        (1, 1, 0),
        "one rescue, one death: {got:?}"
    );
}
