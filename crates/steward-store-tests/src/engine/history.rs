//! The worker's share of the history: what its attempts did reaches the
//! store in batches, every `history_every` and once more when it stops.

use std::time::Duration;

use steward_core::jobs::{MaintenanceConfig, WorkerConfig};
use steward_core::store::{HistoryCounts, HistoryDelta, HistoryQuery, HistoryRow, JobState, Store};

use super::kit::{Bench, Boom, Flaky, Nap, Record, until};
use crate::Harness;

const HOUR: Duration = Duration::from_secs(3600);
const STOP: Duration = Duration::from_secs(10);

/// Enqueues one job of each outcome and waits until all four ended.
async fn run_four<H: Harness>(b: &Bench<H>) {
    let record = b
        .client
        .enqueue(Record { tag: "r".into() })
        .await
        .expect("enqueue");
    let flaky = b.client.enqueue(Flaky { times: 1 }).await.expect("enqueue");
    let boom = b.client.enqueue(Boom {}).await.expect("enqueue");
    let nap = b
        .client
        .enqueue(Nap {
            ms: 60,
            stubborn: false,
        })
        .await
        .expect("enqueue");
    b.wait_state(record.id, JobState::Completed).await;
    b.wait_state(flaky.id, JobState::Completed).await;
    b.wait_state(boom.id, JobState::Dead).await;
    b.wait_state(nap.id, JobState::Completed).await;
}

async fn by_kind<S: Store>(store: &S) -> Vec<(String, HistoryCounts, u64)> {
    let rows: Vec<HistoryRow> = store
        .history(HistoryQuery::last(HOUR).queue("default"))
        .await
        .expect("read the history");
    let mut kinds: Vec<(String, HistoryCounts, u64)> = Vec::new();
    for r in rows {
        match kinds.iter_mut().find(|(k, ..)| *k == r.kind) {
            Some((_, c, n)) => {
                c.add(&r.counts);
                *n += r.run_times.count();
            }
            None => kinds.push((r.kind.clone(), r.counts, r.run_times.count())),
        }
    }
    kinds.sort_by(|a, b| a.0.cmp(&b.0));
    kinds
}

fn expected() -> Vec<(String, HistoryCounts, u64)> {
    let c = |succeeded, failed, retried| HistoryCounts {
        succeeded,
        failed,
        retried,
        ..Default::default()
    };
    vec![
        ("boom".into(), c(0, 1, 0), 1),
        ("flaky".into(), c(1, 0, 1), 2),
        ("nap".into(), c(1, 0, 0), 1),
        ("record".into(), c(1, 0, 0), 1),
    ]
}

/// A running worker writes its outcomes to the history within
/// `history_every`: per kind, succeeded, failed (dead) and retried, with
/// one run time per attempt.
pub async fn the_worker_writes_what_its_attempts_did_to_the_history<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let w = b.start(
        WorkerConfig {
            history_every: Duration::from_millis(100),
            ..b.config(&[("default", 4)])
        },
        STOP,
    );
    run_four(&b).await;
    until("the history to show every attempt", || async {
        by_kind(&*b.store).await == expected()
    })
    .await;
    assert!(w.stop().await.is_success());
    let rows = b
        .store
        .history(HistoryQuery::last(HOUR).kind("nap"))
        .await
        .expect("read");
    let p50 = rows[0].run_times.percentile(0.5).unwrap_or_default();
    assert!(
        p50 >= Duration::from_millis(50),
        "a 60 ms nap's run time is about 60 ms, got {p50:?}"
    );
}

/// A worker that stops writes what it counted since its last write: with
/// a period far longer than the test, the history is empty while it runs
/// and complete once it stopped.
pub async fn a_stopping_worker_writes_its_last_history<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let w = b.start(
        WorkerConfig {
            history_every: Duration::from_secs(600),
            ..b.config(&[("default", 4)])
        },
        STOP,
    );
    run_four(&b).await;
    assert!(
        by_kind(&*b.store).await.is_empty(),
        "nothing is written before the period ends"
    );
    assert!(w.stop().await.is_success());
    assert_eq!(by_kind(&*b.store).await, expected(), "written at the stop");
}

/// Maintenance prunes history older than `history_retention` and keeps
/// the rest.
pub async fn maintenance_prunes_history_past_its_retention<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let delta = |ago: Duration| HistoryDelta {
        ago,
        queue: "default".into(),
        kind: "record".into(),
        counts: HistoryCounts {
            succeeded: 1,
            ..Default::default()
        },
        run_times: Default::default(),
    };
    b.store
        .record_history(vec![delta(3 * HOUR), delta(Duration::ZERO)])
        .await
        .expect("record");
    let m = b.maintenance().config(MaintenanceConfig {
        history_retention: HOUR,
        ..Default::default()
    });
    let pass = m.run_once().await.expect("a maintenance pass");
    assert_eq!(pass.history_pruned, 1, "the minute 3 h ago is past 1 h");
    let left = b
        .store
        .history(HistoryQuery::last(4 * HOUR))
        .await
        .expect("read");
    assert_eq!(left.len(), 1, "the current minute stays: {left:?}");
}
