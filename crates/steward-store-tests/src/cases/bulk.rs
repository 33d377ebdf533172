//! The library's bulk actions (`steward_core::jobs::act_on_matching`) on a
//! real store: chunks, a stop half-way and its resume, dry runs, bad input,
//! and a bulk action racing a worker on the same jobs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use steward_core::jobs::{Bulk, BulkProgress, Flow, act_on_matching};
use steward_core::store::{
    FinishOutcome, JobAction, JobId, JobQuery, JobState, MAX_ACT_CHUNK, NewJob, Store, StoreError,
};

use crate::Harness;
use crate::support::{
    Fixture, LONG_LEASE, claim_from, counts, enqueue, failed, finish_ok, fresh_queue, record,
};

/// `n` available jobs of `kind` in `queue`, oldest first.
async fn jobs<S: Store>(store: &S, queue: &str, kind: &str, n: usize) -> Vec<JobId> {
    let batch = (0..n).map(|i| NewJob::new(kind, format!(r#"{{"i":{i}}}"#)).queue(queue));
    enqueue(store, batch.collect())
        .await
        .iter()
        .map(|e| e.id)
        .collect()
}

async fn run<S: Store>(
    store: &S,
    bulk: &Bulk,
    progress: impl FnMut(&BulkProgress) -> Flow,
) -> BulkProgress {
    act_on_matching(store, bulk, progress)
        .await
        .unwrap_or_else(|e| panic!("act_on_matching({bulk:?}) failed: {e}"))
}

/// Every matching job is acted on once, a chunk at a time, and jobs the
/// filter does not match are left alone; progress is reported per chunk.
pub async fn bulk_action_pages_through_every_match_in_chunks<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let queue = fresh_queue("bulk");
    let wanted = jobs(s, &queue, "wanted", 23).await;
    let other = jobs(s, &queue, "other", 5).await;
    let filter = JobQuery::default().queue(&queue).kind("wanted");
    let mut seen = Vec::new();
    let done = run(s, &Bulk::new(JobAction::Cancel, filter).chunk(5), |p| {
        seen.push(*p);
        Flow::Continue
    })
    .await;
    assert_eq!((done.touched, done.skipped, done.chunks), (23, 0, 5));
    assert!(done.finished);
    assert_eq!(done.last_id, wanted.last().copied());
    assert_eq!(seen.len(), 5, "one progress report per chunk");
    assert_eq!(seen[1].touched, 10);
    for id in wanted {
        assert_eq!(record(s, id).await.state, JobState::Cancelled);
    }
    for id in other {
        assert_eq!(
            record(s, id).await.state,
            JobState::Available,
            "not matched"
        );
    }
}

/// Stopped after two chunks, exactly those chunks are done (a chunk is all
/// or nothing); resuming after the reported last id does the rest, and
/// running the whole action again touches nothing twice.
pub async fn bulk_action_stopped_half_way_resumes_from_its_last_id<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let queue = fresh_queue("bulk-resume");
    let ids = jobs(s, &queue, "k", 20).await;
    let filter = JobQuery::default().queue(&queue);
    let bulk = Bulk::new(JobAction::Delete, filter.clone()).chunk(4);
    let stopped = run(s, &bulk, |p| {
        if p.chunks == 2 {
            Flow::Stop
        } else {
            Flow::Continue
        }
    })
    .await;
    assert_eq!((stopped.touched, stopped.finished), (8, false));
    assert_eq!(stopped.last_id, Some(ids[7]));
    for (i, id) in ids.iter().enumerate() {
        let there = s.job(*id).await.expect("job(id)").is_some();
        assert_eq!(
            there,
            i >= 8,
            "job {i}: deleted only by the two chunks done"
        );
    }
    let mut resumed_filter = filter.clone();
    resumed_filter.after = stopped.last_id;
    let resumed = run(
        s,
        &Bulk::new(JobAction::Delete, resumed_filter).chunk(4),
        |_| Flow::Continue,
    )
    .await;
    assert_eq!((resumed.touched, resumed.finished), (12, true));
    let again = run(s, &bulk, |_| Flow::Continue).await;
    assert_eq!(again.touched, 0, "nothing left to delete");
    assert_eq!(counts(s).await.available, 0);
}

/// A dry run counts what would be touched (and what would be skipped)
/// without writing.
pub async fn bulk_dry_run_counts_without_writing<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let queue = fresh_queue("bulk-dry");
    let ids = jobs(s, &queue, "k", 7).await;
    let claimed = claim_from(s, &[(&queue, 2)], LONG_LEASE).await;
    finish_ok(s, claimed[0].lease, failed(1, "boom", None)).await;
    let bulk = Bulk::new(JobAction::Retry, JobQuery::default().queue(&queue))
        .chunk(3)
        .dry_run(true);
    let done = run(s, &bulk, |_| Flow::Continue).await;
    assert_eq!(
        (done.touched, done.skipped),
        (1, 6),
        "only the dead job would be retried"
    );
    assert_eq!(
        record(s, ids[0]).await.state,
        JobState::Dead,
        "nothing written"
    );
    assert_eq!(counts(s).await.available, 5);
}

/// A chunk of 0 or above `MAX_ACT_CHUNK` is refused and writes nothing; a
/// filter matching nothing (even one that looks like SQL) touches nothing
/// and is no error.
pub async fn bulk_refuses_bad_chunks_and_a_filter_matching_nothing_is_zero<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let queue = fresh_queue("bulk-bad");
    let ids = jobs(s, &queue, "k", 3).await;
    let filter = JobQuery::default().queue(&queue);
    for chunk in [0, MAX_ACT_CHUNK as u32 + 1, u32::MAX] {
        let bulk = Bulk::new(JobAction::Delete, filter.clone()).chunk(chunk);
        match act_on_matching(s, &bulk, |_| Flow::Continue).await {
            Err(StoreError::Invalid { .. }) => {}
            other => panic!("a chunk of {chunk} should be invalid, got {other:?}"),
        }
    }
    for sql in ["k' OR '1'='1", "'; DELETE FROM steward_jobs; --", "%", "*"] {
        let by_kind = JobQuery::default().queue(&queue).kind(sql);
        let by_queue = JobQuery::default().queue(sql);
        for filter in [by_kind, by_queue] {
            let done = run(s, &Bulk::new(JobAction::Delete, filter), |_| Flow::Continue).await;
            assert_eq!(
                (done.touched, done.skipped),
                (0, 0),
                "{sql:?} matches nothing"
            );
            assert!(done.finished);
        }
    }
    for id in ids {
        assert_eq!(
            record(s, id).await.state,
            JobState::Available,
            "nothing written"
        );
    }
}

/// A worker claims and finishes jobs of a queue while a bulk cancel, then a
/// bulk retry, run over the same queue: no job is clobbered (a job the
/// worker took meanwhile is skipped or asked to cancel, never cancelled
/// under its worker), the totals add up, and every job ends final.
pub async fn bulk_cancel_and_retry_race_a_worker_on_the_same_jobs<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = Arc::clone(&f.store);
    let queue = fresh_queue("bulk-race");
    let total = 300;
    jobs(&*s, &queue, "k", total).await;
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let (s, queue, stop) = (Arc::clone(&s), queue.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                let claimed = claim_from(&*s, &[(&queue, 7)], LONG_LEASE).await;
                if claimed.is_empty() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                for job in claimed {
                    n += 1;
                    let outcome = if n % 3 == 0 {
                        failed(1, "boom", None)
                    } else {
                        FinishOutcome::Completed
                    };
                    finish_ok(&*s, job.lease, outcome).await;
                }
            }
        })
    };
    let filter = JobQuery::default().queue(&queue);
    let cancel = Bulk::new(
        JobAction::Cancel,
        filter.clone().states([JobState::Available]),
    )
    .chunk(20);
    let cancelled = run(&*s, &cancel, |_| Flow::Continue).await;
    let retry = Bulk::new(
        JobAction::Retry,
        filter.clone().states([JobState::Cancelled]),
    )
    .chunk(20);
    let retried = run(&*s, &retry, |_| Flow::Continue).await;
    stop.store(true, Ordering::SeqCst);
    worker.await.expect("the worker task");
    let c = counts(&*s).await;
    assert_eq!(
        retried.touched, cancelled.touched,
        "every job the bulk cancel cancelled (and only those) is retried"
    );
    assert_eq!(
        c.cancelled, 0,
        "every cancelled job was retried and then run"
    );
    assert_eq!(
        c.completed + c.dead,
        total as u64,
        "every job ends final: {c:?}"
    );
    assert_eq!(c.running + c.available + c.scheduled + c.retryable, 0);
}
