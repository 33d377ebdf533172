//! Racing claimers: across tasks and across handles (connections, as
//! processes would hold), every job is claimed exactly once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use steward_core::store::{
    ClaimRequest, ClaimedJob, HeartbeatResult, JobId, NewJob, QueueClaim, Store,
};
use tokio::sync::Barrier;

use crate::Harness;
use crate::support::{Fixture, LONG_LEASE, claim_from, counts, enqueue, joined, transient};

const QUEUE: &str = "race";

fn request(worker: usize, limit: u32) -> ClaimRequest {
    ClaimRequest {
        worker: format!("racer-{worker}"),
        queues: vec![QueueClaim {
            queue: QUEUE.to_string(),
            limit,
        }],
        lease: LONG_LEASE,
        max_suspects: u32::MAX,
        kinds: None,
    }
}

/// Enqueues `n` jobs in batches; returns their ids.
async fn enqueue_many<S: Store>(store: &S, n: usize) -> Vec<JobId> {
    let mut ids = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let batch = left.min(50);
        let jobs = (0..batch)
            .map(|_| NewJob::new("race", "{}").queue(QUEUE))
            .collect();
        ids.extend(enqueue(store, jobs).await.iter().map(|e| e.id));
        left -= batch;
    }
    ids
}

/// Checks that racing claims plus a final sweep took each of `expected`
/// exactly once, and that every returned token is the attempt's real one.
async fn assert_each_claimed_once<S: Store>(
    store: &S,
    racing: Vec<(usize, Vec<ClaimedJob>)>,
    expected: &[JobId],
) {
    let mut owner: HashMap<JobId, usize> = HashMap::new();
    let mut all = Vec::new();
    for (worker, claimed) in racing {
        for job in claimed {
            if let Some(first) = owner.insert(job.lease.id, worker) {
                panic!(
                    "job {} was claimed twice: by racer {first} and by racer {worker}",
                    job.lease.id
                );
            }
            all.push(job);
        }
    }
    // A store that skips rows another claimer has locked may end a racer
    // early on an empty answer; whatever is left must still be claimable.
    for job in claim_from(store, &[(QUEUE, 100_000)], LONG_LEASE).await {
        if let Some(first) = owner.insert(job.lease.id, usize::MAX) {
            panic!(
                "job {} was claimed by racer {first}, yet claimed again",
                job.lease.id
            );
        }
        all.push(job);
    }
    assert_eq!(
        owner.len(),
        expected.len(),
        "every enqueued job should be claimed once"
    );
    for id in expected {
        assert!(owner.contains_key(id), "job {id} was never claimed");
    }
    let leases: Vec<_> = all.iter().map(|c| c.lease).collect();
    let beats = transient(|| store.heartbeat(leases.clone(), LONG_LEASE))
        .await
        .expect("heartbeat of every claimed lease");
    for (job, beat) in all.iter().zip(beats) {
        assert_eq!(
            beat,
            HeartbeatResult::Extended,
            "job {}: the token a racing claim returned is not the one the store kept (a \
             claim overwritten by another)",
            job.lease.id
        );
    }
    let c = counts(store).await;
    assert_eq!(
        c.running,
        expected.len() as u64,
        "all claimed jobs are running"
    );
    assert_eq!(c.total(), expected.len() as u64);
}

/// Starts `racers` claimers together, alternating between two handles; each
/// claims `limit` at a time until a claim comes back empty.
async fn race<H: Harness>(h: &H, racers: usize, jobs: usize, limit: u32) {
    let f = Fixture::new(h).await;
    let other = f.another_handle(h).await;
    let ids = enqueue_many(&*f.store, jobs).await;
    let barrier = Arc::new(Barrier::new(racers));
    let mut tasks = Vec::new();
    for worker in 0..racers {
        let store = if worker % 2 == 0 {
            f.store.clone()
        } else {
            other.clone()
        };
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let request = request(worker, limit);
            let mut mine = Vec::new();
            loop {
                let claimed = transient(|| store.claim(request.clone()))
                    .await
                    .unwrap_or_else(|e| panic!("racer {worker}: claim failed: {e}"));
                if claimed.is_empty() {
                    return (worker, mine);
                }
                mine.extend(claimed);
            }
        }));
    }
    let mut racing = Vec::new();
    for task in tasks {
        racing.push(joined(task).await);
    }
    assert_each_claimed_once(&*f.store, racing, &ids).await;
}

/// Two workers on two handles claim from one queue at once: each job goes
/// to exactly one of them.
pub async fn claim_returns_each_job_to_exactly_one_of_two_racing_workers<H: Harness>(h: &H) {
    race(h, 2, 300, 7).await;
}

/// Eight workers, four per handle, with small batches: still no job twice.
pub async fn many_racing_workers_on_two_handles_never_share_a_job<H: Harness>(h: &H) {
    race(h, 8, 400, 3).await;
}

/// Claims racing with enqueues of new jobs take each job exactly once.
pub async fn claims_racing_with_enqueues_take_each_job_exactly_once<H: Harness>(h: &H) {
    const RACERS: usize = 3;
    let f = Fixture::new(h).await;
    let other = f.another_handle(h).await;
    let done = Arc::new(AtomicBool::new(false));
    let producer = {
        let store = f.store.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..15 {
                ids.extend(enqueue_many(&*store, 20).await);
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            done.store(true, Ordering::SeqCst);
            ids
        })
    };
    let mut tasks = Vec::new();
    for worker in 0..RACERS {
        let store = if worker % 2 == 0 {
            other.clone()
        } else {
            f.store.clone()
        };
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let request = request(worker, 4);
            let mut mine = Vec::new();
            loop {
                // Read before claiming: if the producer had finished then,
                // an empty claim means there is nothing left to take.
                let finished = done.load(Ordering::SeqCst);
                let claimed = transient(|| store.claim(request.clone()))
                    .await
                    .unwrap_or_else(|e| panic!("racer {worker}: claim failed: {e}"));
                if claimed.is_empty() {
                    if finished {
                        return (worker, mine);
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                mine.extend(claimed);
            }
        }));
    }
    let ids = joined(producer).await;
    let mut racing = Vec::new();
    for task in tasks {
        racing.push(joined(task).await);
    }
    assert_each_claimed_once(&*f.store, racing, &ids).await;
}
