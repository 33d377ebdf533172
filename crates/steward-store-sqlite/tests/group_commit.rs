//! Many concurrent callers through the one writer: every caller gets its
//! own, correct answer.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use steward_core::store::{Finish, FinishOutcome, HeartbeatResult, JobId, NewJob, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_single_enqueues_get_distinct_ids() {
    let t = common::open().await;
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let store = t.store.clone();
        tasks.push(tokio::spawn(async move {
            let payload = format!(r#"{{"n":{i}}}"#);
            let ids = store
                .enqueue(vec![NewJob::new("n", payload)])
                .await
                .unwrap();
            (i, ids[0].id)
        }));
    }
    let mut seen = HashSet::new();
    for task in tasks {
        let (i, id) = task.await.unwrap();
        assert!(seen.insert(id), "id {id} given twice");
        // Each caller's id is the job it enqueued.
        let job = t.store.job(id).await.unwrap().unwrap();
        assert_eq!(job.payload, format!(r#"{{"n":{i}}}"#));
    }
    assert_eq!(seen.len(), 1000);
    assert_eq!(t.store.counts().await.unwrap().available, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_keep_their_own_order() {
    let t = common::open().await;
    let mut tasks = Vec::new();
    for caller in 0..40 {
        let store = t.store.clone();
        tasks.push(tokio::spawn(async move {
            let jobs = (0..25)
                .map(|j| NewJob::new(format!("c{caller}"), format!("{j}")))
                .collect();
            (caller, store.enqueue(jobs).await.unwrap())
        }));
    }
    for task in tasks {
        let (caller, ids) = task.await.unwrap();
        assert_eq!(ids.len(), 25);
        assert!(
            ids.windows(2).all(|w| w[0].id < w[1].id),
            "ids increase in input order"
        );
        for (j, e) in ids.iter().enumerate() {
            let job = t.store.job(e.id).await.unwrap().unwrap();
            assert_eq!(
                (job.kind, job.payload),
                (format!("c{caller}"), j.to_string())
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_never_return_the_same_job() {
    let t = common::open().await;
    let total = 2000;
    t.store
        .enqueue((0..total).map(|_| NewJob::new("k", "{}")).collect())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = t.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let jobs = common::claim(&store, "default", 7).await;
                if jobs.is_empty() {
                    return mine;
                }
                mine.extend(jobs.into_iter().map(|j| j.lease));
            }
        }));
    }
    let mut seen: HashSet<JobId> = HashSet::new();
    let mut leases = Vec::new();
    for task in tasks {
        for lease in task.await.unwrap() {
            assert!(seen.insert(lease.id), "job {} claimed twice", lease.id);
            leases.push(lease);
        }
    }
    assert_eq!(seen.len(), total);

    // Concurrent heartbeats and finishes, one caller per job, all applied.
    let mut tasks = Vec::new();
    for lease in leases {
        let store = t.store.clone();
        tasks.push(tokio::spawn(async move {
            let beat = store
                .heartbeat(vec![lease], Duration::from_secs(30))
                .await
                .unwrap();
            let done = store
                .finish(vec![Finish {
                    lease,
                    outcome: FinishOutcome::Completed,
                }])
                .await
                .unwrap();
            (beat, done)
        }));
    }
    for task in tasks {
        let (beat, done) = task.await.unwrap();
        assert_eq!(beat, [HeartbeatResult::Extended]);
        assert_eq!(done, [true]);
    }
    assert_eq!(t.store.counts().await.unwrap().completed, total as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_finishes_of_one_attempt_apply_once() {
    let t = common::open().await;
    t.store.enqueue(vec![NewJob::new("k", "{}")]).await.unwrap();
    let job = common::claim(&t.store, "default", 1).await.remove(0);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = t.store.clone();
        let lease = job.lease;
        tasks.push(tokio::spawn(async move {
            store
                .finish(vec![Finish {
                    lease,
                    outcome: FinishOutcome::Completed,
                }])
                .await
                .unwrap()[0]
        }));
    }
    let mut applied = 0;
    for task in tasks {
        applied += usize::from(task.await.unwrap());
    }
    assert_eq!(applied, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueues_of_one_unique_key_insert_once() {
    let t = common::open().await;
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let store = t.store.clone();
        tasks.push(tokio::spawn(async move {
            let job =
                NewJob::new("k", "{}").unique("only-one", steward_core::store::UniqueScope::Active);
            store.enqueue(vec![job]).await.unwrap()[0]
        }));
    }
    let mut inserted = Vec::new();
    let mut ids = HashSet::new();
    for task in tasks {
        let e = task.await.unwrap();
        ids.insert(e.id);
        if !e.duplicate {
            inserted.push(e.id);
        }
    }
    assert_eq!(inserted.len(), 1);
    assert_eq!(ids.len(), 1, "every duplicate names the holder");
}
