//! A quick pass over every `Store` method against a real SQLite file,
//! checking the rules of docs/store-contract.md that are cheap to check
//! here. (The shared contract suite in steward-store-tests checks them all.)

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{claim, open, request};
use steward_core::store::{
    AttemptError, CancelResult, ClaimRequest, ErrorKind, Finish, FinishOutcome, HeartbeatResult,
    JobId, JobState, Lease, LeaseToken, NewJob, QueueClaim, Store, StoreError, UniqueScope,
};

fn failed(attempt: u32, message: &str, retry_in: Option<Duration>) -> FinishOutcome {
    FinishOutcome::Failed {
        error: AttemptError {
            attempt,
            at: Utc::now(),
            kind: ErrorKind::Error,
            message: message.into(),
        },
        retry_in,
    }
}

/// Lets the clock pass the jobs a test just finished, so a prune with an
/// age of zero (a strict cutoff at now) sees them as older.
async fn let_time_pass() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[tokio::test]
async fn enqueue_returns_increasing_ids_in_order_with_initial_states() {
    let t = open().await;
    let later = Utc::now() + chrono::Duration::hours(1);
    let ids = t
        .store
        .enqueue(vec![
            NewJob::new("a", "{}"),
            NewJob::new("b", "[1]").run_at(later),
            NewJob::new("c", "null")
                .queue("other")
                .priority(-3)
                .max_attempts(2),
        ])
        .await
        .unwrap();
    assert_eq!(ids.len(), 3);
    assert!(ids[0].id < ids[1].id && ids[1].id < ids[2].id);
    assert!(ids.iter().all(|e| !e.duplicate));

    let a = t.store.job(ids[0].id).await.unwrap().unwrap();
    assert_eq!(a.state, JobState::Available);
    assert_eq!((a.attempt, a.max_attempts, a.priority), (0, 25, 0));
    assert_eq!(a.payload, "{}");
    let b = t.store.job(ids[1].id).await.unwrap().unwrap();
    assert_eq!(b.state, JobState::Scheduled);
    assert_eq!(b.run_at.timestamp_millis(), later.timestamp_millis());
    let c = t.store.job(ids[2].id).await.unwrap().unwrap();
    assert_eq!(
        (c.queue.as_str(), c.priority, c.max_attempts),
        ("other", -3, 2)
    );
    assert!(t.store.job(JobId(999_999)).await.unwrap().is_none());
    assert_eq!(t.store.counts().await.unwrap().total(), 3);
}

#[tokio::test]
async fn an_invalid_job_refuses_the_whole_batch() {
    let t = open().await;
    for bad in [
        NewJob::new("k", "{not json"),
        NewJob::new("", "{}"),
        NewJob::new("k", "{}").queue(""),
        NewJob::new("k", "{}").max_attempts(0),
    ] {
        let err = t
            .store
            .enqueue(vec![NewJob::new("fine", "{}"), bad])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{err}");
    }
    assert_eq!(t.store.counts().await.unwrap().total(), 0);
}

#[tokio::test]
async fn claim_takes_due_jobs_by_priority_run_at_then_id_queues_in_order() {
    let t = open().await;
    let past = Utc::now() - chrono::Duration::seconds(10);
    let ids = t
        .store
        .enqueue(vec![
            NewJob::new("low", "{}").priority(5),
            NewJob::new("high-late", "{}").priority(-1),
            NewJob::new("high-early", "{}").priority(-1).run_at(past),
            NewJob::new("future", "{}")
                .priority(-9)
                .run_at(Utc::now() + chrono::Duration::hours(1)),
            NewJob::new("other-q", "{}").queue("q2"),
        ])
        .await
        .unwrap();
    let jobs = t
        .store
        .claim(ClaimRequest {
            worker: "w1".into(),
            queues: vec![
                QueueClaim {
                    queue: "q2".into(),
                    limit: 5,
                },
                QueueClaim {
                    queue: "default".into(),
                    limit: 2,
                },
            ],
            lease: Duration::from_secs(60),
            max_suspects: u32::MAX,
            kinds: None,
        })
        .await
        .unwrap();
    let kinds: Vec<&str> = jobs.iter().map(|j| j.kind.as_str()).collect();
    assert_eq!(kinds, ["other-q", "high-early", "high-late"]);
    let job = &jobs[1];
    assert_eq!(job.lease.id, ids[2].id);
    assert_eq!(job.attempt, 1);
    let record = t.store.job(job.lease.id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Running);
    assert_eq!(record.worker.as_deref(), Some("w1"));
    assert!(record.attempted_at.is_some());
    let expires = record.lease_expires_at.unwrap() - record.attempted_at.unwrap();
    assert_eq!(expires.num_seconds(), 60);
    // Lease tokens are fresh per job.
    assert_ne!(jobs[0].lease.token, jobs[1].lease.token);
    // The low-priority job is still there; the future one is not due.
    let rest = claim(&t.store, "default", 10).await;
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].kind, "low");
}

#[tokio::test]
async fn heartbeat_extends_reports_cancel_requests_and_fences() {
    let t = open().await;
    t.store
        .enqueue(vec![NewJob::new("a", "{}"), NewJob::new("b", "{}")])
        .await
        .unwrap();
    let jobs = claim(&t.store, "default", 2).await;
    let (a, b) = (jobs[0].lease, jobs[1].lease);
    assert_eq!(t.store.cancel(b.id).await.unwrap(), CancelResult::Requested);
    let stale = Lease {
        id: a.id,
        token: LeaseToken(a.token.0 ^ 1),
    };
    let results = t
        .store
        .heartbeat(vec![a, b, stale], Duration::from_secs(120))
        .await
        .unwrap();
    assert_eq!(
        results,
        [
            HeartbeatResult::Extended,
            HeartbeatResult::CancelRequested,
            HeartbeatResult::Lost
        ]
    );
    let record = t.store.job(a.id).await.unwrap().unwrap();
    let left = record.lease_expires_at.unwrap() - Utc::now();
    assert!(left.num_seconds() > 100, "extended to ~120 s, got {left}");
}

#[tokio::test]
async fn finish_applies_each_outcome_and_refuses_lost_leases() {
    let t = open().await;
    let ids = t
        .store
        .enqueue((0..5).map(|i| NewJob::new(format!("k{i}"), "{}")).collect())
        .await
        .unwrap();
    let jobs = claim(&t.store, "default", 5).await;
    let lease = |i: usize| jobs[i].lease;
    let results = t
        .store
        .finish(vec![
            Finish {
                lease: lease(0),
                outcome: FinishOutcome::Completed,
            },
            Finish {
                lease: lease(1),
                outcome: failed(1, "boom", Some(Duration::from_secs(300))),
            },
            Finish {
                lease: lease(2),
                outcome: failed(1, "fatal", None),
            },
            Finish {
                lease: lease(3),
                outcome: FinishOutcome::Snoozed {
                    delay: Duration::from_secs(60),
                },
            },
            Finish {
                lease: lease(4),
                outcome: FinishOutcome::Cancelled {
                    reason: "no longer needed".into(),
                },
            },
            // The same attempt finished twice in one batch: the second is refused.
            Finish {
                lease: lease(0),
                outcome: FinishOutcome::Completed,
            },
            // A lease that never existed.
            Finish {
                lease: Lease {
                    id: ids[0].id,
                    token: LeaseToken(12345),
                },
                outcome: FinishOutcome::Completed,
            },
        ])
        .await
        .unwrap();
    assert_eq!(results, [true, true, true, true, true, false, false]);

    let rec = |i: usize| {
        let store = t.store.clone();
        let id = ids[i].id;
        async move { store.job(id).await.unwrap().unwrap() }
    };
    let done = rec(0).await;
    assert_eq!(done.state, JobState::Completed);
    assert!(done.worker.is_none() && done.lease_expires_at.is_none());
    // One batch, one transaction, one reading of the store's clock: delays
    // count from exactly the `finished_at` it wrote.
    let now = done.finished_at.expect("a completed job has finished_at");
    let retrying = rec(1).await;
    assert_eq!(retrying.state, JobState::Retryable);
    assert_eq!(retrying.run_at, now + chrono::Duration::minutes(5));
    assert_eq!(retrying.errors.len(), 1);
    assert_eq!(retrying.errors[0].message, "boom");
    assert!(retrying.finished_at.is_none());
    let dead = rec(2).await;
    assert_eq!(dead.state, JobState::Dead);
    assert!(dead.finished_at.is_some());
    assert_eq!(dead.errors[0].message, "fatal");
    let snoozed = rec(3).await;
    assert_eq!(snoozed.state, JobState::Scheduled);
    assert_eq!(snoozed.attempt, 0, "a snooze does not use up an attempt");
    assert_eq!(snoozed.run_at, now + chrono::Duration::minutes(1));
    let cancelled = rec(4).await;
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert_eq!(cancelled.errors.len(), 1);
    assert_eq!(cancelled.errors[0].kind, ErrorKind::Cancelled);
    assert_eq!(cancelled.errors[0].message, "no longer needed");
    assert_eq!(cancelled.errors[0].attempt, 1);
}

#[tokio::test]
async fn a_zero_snooze_makes_the_job_available() {
    let t = open().await;
    t.store.enqueue(vec![NewJob::new("a", "{}")]).await.unwrap();
    let job = claim(&t.store, "default", 1).await.remove(0);
    t.store
        .finish(vec![Finish {
            lease: job.lease,
            outcome: FinishOutcome::Snoozed {
                delay: Duration::ZERO,
            },
        }])
        .await
        .unwrap();
    let record = t.store.job(job.lease.id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Available);
}

#[tokio::test]
async fn checkpoint_is_fenced_and_survives_release() {
    let t = open().await;
    t.store.enqueue(vec![NewJob::new("a", "{}")]).await.unwrap();
    let job = claim(&t.store, "default", 1).await.remove(0);
    assert_eq!(job.checkpoint, None);
    t.store
        .checkpoint(job.lease, r#"{"page":3}"#.into())
        .await
        .unwrap();
    let stale = Lease {
        id: job.lease.id,
        token: LeaseToken(job.lease.token.0 ^ 1),
    };
    let err = t.store.checkpoint(stale, "{}".into()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::LeaseLost { id } if id == job.lease.id),
        "{err}"
    );

    assert_eq!(
        t.store
            .release(vec![job.lease, job.lease, stale])
            .await
            .unwrap(),
        1
    );
    let record = t.store.job(job.lease.id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Available);
    assert_eq!((record.attempt, record.interrupted), (0, 1));
    assert!(record.worker.is_none() && record.lease_expires_at.is_none());

    let again = claim(&t.store, "default", 1).await.remove(0);
    assert_eq!(again.attempt, 1, "an interrupted attempt is not counted");
    assert_eq!(again.checkpoint.as_deref(), Some(r#"{"page":3}"#));
    assert_ne!(again.lease.token, job.lease.token);
    // The old attempt can no longer write anything.
    let old = t
        .store
        .finish(vec![Finish {
            lease: job.lease,
            outcome: FinishOutcome::Completed,
        }])
        .await
        .unwrap();
    assert_eq!(old, [false]);
}

#[tokio::test]
async fn cancel_answers_for_every_state() {
    let t = open().await;
    let ids = t
        .store
        .enqueue(vec![
            NewJob::new("queued", "{}"),
            NewJob::new("running", "{}"),
        ])
        .await
        .unwrap();
    assert_eq!(
        t.store.cancel(ids[0].id).await.unwrap(),
        CancelResult::Cancelled
    );
    let job = claim(&t.store, "default", 1).await.remove(0);
    assert_eq!(job.lease.id, ids[1].id);
    assert_eq!(
        t.store.cancel(ids[1].id).await.unwrap(),
        CancelResult::Requested
    );
    assert!(
        t.store
            .job(ids[1].id)
            .await
            .unwrap()
            .unwrap()
            .cancel_requested
    );
    assert_eq!(
        t.store.cancel(ids[0].id).await.unwrap(),
        CancelResult::AlreadyFinished
    );
    assert_eq!(
        t.store.cancel(JobId(424_242)).await.unwrap(),
        CancelResult::NotFound
    );
    let record = t.store.job(ids[0].id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Cancelled);
    assert!(record.finished_at.is_some());
}

#[tokio::test]
async fn retry_revives_finished_jobs_only() {
    let t = open().await;
    let ids = t
        .store
        .enqueue(vec![
            NewJob::new("a", "{}").max_attempts(1),
            NewJob::new("b", "{}"),
        ])
        .await
        .unwrap();
    let jobs = claim(&t.store, "default", 1).await;
    t.store
        .finish(vec![Finish {
            lease: jobs[0].lease,
            outcome: failed(1, "nope", None),
        }])
        .await
        .unwrap();
    assert!(
        !t.store.retry(ids[1].id).await.unwrap(),
        "a queued job is left alone"
    );
    assert!(t.store.retry(ids[0].id).await.unwrap());
    let record = t.store.job(ids[0].id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Available);
    assert_eq!(record.attempt, 0);
    assert!(record.finished_at.is_none());
    assert_eq!(record.errors.len(), 1, "errors are kept");
    assert!(!t.store.retry(JobId(777_777)).await.unwrap());
}

#[tokio::test]
async fn rescue_returns_expired_jobs_and_kills_after_max_rescues() {
    let t = open().await;
    let id = t.store.enqueue(vec![NewJob::new("a", "{}")]).await.unwrap()[0].id;
    let short = |store: &steward_store_sqlite::SqliteStore| {
        let store = store.clone();
        async move {
            let mut req = request("default", 1);
            req.lease = Duration::from_millis(1);
            store.claim(req).await.unwrap().remove(0)
        }
    };
    let first = short(&t.store).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = t.store.rescue_expired(2).await.unwrap();
    assert_eq!((report.rescued, report.dead), (1, 0));
    let record = t.store.job(id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Available);
    assert_eq!((record.attempt, record.rescues), (0, 1));
    assert_eq!(record.errors[0].kind, ErrorKind::WorkerLost);
    assert_eq!(record.errors[0].message, "worker lost: lease expired");
    // The stale worker is fenced out everywhere.
    assert_eq!(
        t.store
            .heartbeat(vec![first.lease], Duration::from_secs(1))
            .await
            .unwrap(),
        [HeartbeatResult::Lost]
    );
    assert!(matches!(
        t.store.checkpoint(first.lease, "{}".into()).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert_eq!(t.store.release(vec![first.lease]).await.unwrap(), 0);

    short(&t.store).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = t.store.rescue_expired(2).await.unwrap();
    assert_eq!((report.rescued, report.dead), (0, 1));
    let record = t.store.job(id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Dead);
    assert!(record.finished_at.is_some());
    assert_eq!(record.errors.last().unwrap().message, "worker lost 2 times");
    // Nothing else has expired.
    assert_eq!(t.store.rescue_expired(2).await.unwrap().rescued, 0);
}

#[tokio::test]
async fn a_normal_finish_resets_the_rescue_count() {
    let t = open().await;
    let id = t.store.enqueue(vec![NewJob::new("a", "{}")]).await.unwrap()[0].id;
    let mut req = request("default", 1);
    req.lease = Duration::from_millis(1);
    t.store.claim(req).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    t.store.rescue_expired(5).await.unwrap();
    let job = claim(&t.store, "default", 1).await.remove(0);
    t.store
        .finish(vec![Finish {
            lease: job.lease,
            outcome: failed(1, "x", Some(Duration::ZERO)),
        }])
        .await
        .unwrap();
    assert_eq!(t.store.job(id).await.unwrap().unwrap().rescues, 0);
}

#[tokio::test]
async fn prune_deletes_old_finished_jobs_only() {
    let t = open().await;
    let ids = t
        .store
        .enqueue((0..4).map(|i| NewJob::new(format!("k{i}"), "{}")).collect())
        .await
        .unwrap();
    let jobs = claim(&t.store, "default", 3).await;
    t.store
        .finish(vec![
            Finish {
                lease: jobs[0].lease,
                outcome: FinishOutcome::Completed,
            },
            Finish {
                lease: jobs[1].lease,
                outcome: failed(1, "x", None),
            },
            Finish {
                lease: jobs[2].lease,
                outcome: FinishOutcome::Cancelled { reason: "r".into() },
            },
        ])
        .await
        .unwrap();
    let_time_pass().await;
    let hour = Duration::from_secs(3600);
    assert_eq!(t.store.prune(hour, hour).await.unwrap(), 0);
    assert_eq!(t.store.prune(Duration::ZERO, hour).await.unwrap(), 1);
    assert!(t.store.job(ids[0].id).await.unwrap().is_none());
    assert_eq!(
        t.store.prune(Duration::ZERO, Duration::ZERO).await.unwrap(),
        2
    );
    let counts = t.store.counts().await.unwrap();
    assert_eq!((counts.available, counts.total()), (1, 1));
}

#[tokio::test]
async fn prune_of_many_rows_runs_in_steps_and_counts_them_all() {
    let t = open().await;
    let n = 12_345;
    t.store
        .enqueue((0..n).map(|_| NewJob::new("k", "{}")).collect())
        .await
        .unwrap();
    loop {
        let jobs = claim(&t.store, "default", 1000).await;
        if jobs.is_empty() {
            break;
        }
        let batch = jobs
            .iter()
            .map(|j| Finish {
                lease: j.lease,
                outcome: FinishOutcome::Completed,
            })
            .collect();
        t.store.finish(batch).await.unwrap();
    }
    let_time_pass().await;
    assert_eq!(
        t.store.prune(Duration::ZERO, Duration::ZERO).await.unwrap(),
        n
    );
    assert_eq!(t.store.counts().await.unwrap().total(), 0);
}

#[tokio::test]
async fn counts_count_every_state() {
    let t = open().await;
    t.store
        .enqueue(vec![
            NewJob::new("a", "{}"),
            NewJob::new("b", "{}"),
            NewJob::new("c", "{}").run_at(Utc::now() + chrono::Duration::hours(1)),
        ])
        .await
        .unwrap();
    let job = claim(&t.store, "default", 1).await.remove(0);
    t.store
        .finish(vec![Finish {
            lease: job.lease,
            outcome: FinishOutcome::Completed,
        }])
        .await
        .unwrap();
    let c = t.store.counts().await.unwrap();
    assert_eq!(
        (c.scheduled, c.available, c.running, c.completed),
        (1, 1, 0, 1)
    );
}

#[tokio::test]
async fn unique_queued_key_is_held_until_the_job_is_claimed() {
    let t = open().await;
    let job = || NewJob::new("report", "{}").unique("r:1", UniqueScope::Queued);
    let first = t.store.enqueue(vec![job(), job()]).await.unwrap();
    assert!(!first[0].duplicate);
    assert!(
        first[1].duplicate,
        "second of one batch is a duplicate of the first"
    );
    assert_eq!(first[1].id, first[0].id);
    let again = t.store.enqueue(vec![job()]).await.unwrap();
    assert_eq!((again[0].id, again[0].duplicate), (first[0].id, true));
    assert_eq!(
        t.store
            .job(first[0].id)
            .await
            .unwrap()
            .unwrap()
            .unique_key
            .as_deref(),
        Some("r:1")
    );

    claim(&t.store, "default", 1).await;
    let after = t.store.enqueue(vec![job()]).await.unwrap();
    assert!(
        !after[0].duplicate,
        "a claimed job no longer holds a queued key"
    );
    assert_eq!(
        t.store.job(first[0].id).await.unwrap().unwrap().unique_key,
        None
    );
}

#[tokio::test]
async fn unique_active_key_is_held_while_running_and_released_when_done() {
    let t = open().await;
    let job = || NewJob::new("sync", "{}").unique("s", UniqueScope::Active);
    let first = t.store.enqueue(vec![job()]).await.unwrap()[0];
    let running = claim(&t.store, "default", 1).await.remove(0);
    assert!(t.store.enqueue(vec![job()]).await.unwrap()[0].duplicate);
    t.store
        .finish(vec![Finish {
            lease: running.lease,
            outcome: FinishOutcome::Completed,
        }])
        .await
        .unwrap();
    let next = t.store.enqueue(vec![job()]).await.unwrap()[0];
    assert!(!next.duplicate);
    assert_ne!(next.id, first.id);
    // Cancelling a queued job releases its key too.
    assert_eq!(
        t.store.cancel(next.id).await.unwrap(),
        CancelResult::Cancelled
    );
    assert!(!t.store.enqueue(vec![job()]).await.unwrap()[0].duplicate);
}

#[tokio::test]
async fn unique_window_key_is_held_whatever_the_state_until_pruned() {
    let t = open().await;
    let job =
        || NewJob::new("digest", "{}").unique("d", UniqueScope::Window(Duration::from_secs(3600)));
    let first = t.store.enqueue(vec![job()]).await.unwrap()[0];
    let running = claim(&t.store, "default", 1).await.remove(0);
    t.store
        .finish(vec![Finish {
            lease: running.lease,
            outcome: FinishOutcome::Completed,
        }])
        .await
        .unwrap();
    let dup = t.store.enqueue(vec![job()]).await.unwrap()[0];
    assert_eq!((dup.id, dup.duplicate), (first.id, true));
    let_time_pass().await;
    t.store.prune(Duration::ZERO, Duration::ZERO).await.unwrap();
    assert!(!t.store.enqueue(vec![job()]).await.unwrap()[0].duplicate);
}

#[tokio::test]
async fn wait_for_work_wakes_on_enqueue_and_times_out_otherwise() {
    let t = open().await;
    // The first wait starts the watch on the WAL and wakes once (a commit
    // before the watch began was not heard): a spurious wake-up, allowed.
    t.store.wait_for_work(Duration::from_millis(1)).await;
    let started = std::time::Instant::now();
    t.store.wait_for_work(Duration::from_millis(50)).await;
    assert!(started.elapsed() >= Duration::from_millis(45));

    let store = t.store.clone();
    let waiter = tokio::spawn(async move {
        let started = std::time::Instant::now();
        store.wait_for_work(Duration::from_secs(30)).await;
        started.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    t.store.enqueue(vec![NewJob::new("a", "{}")]).await.unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("woken well before max_wait")
        .unwrap();
    assert!(waited < Duration::from_secs(10));
}

#[tokio::test]
async fn a_wake_up_just_before_waiting_is_not_missed() {
    let t = open().await;
    // The worker claimed (nothing), then an enqueue committed, then it waits:
    // the wake-up left for it returns the wait at once.
    t.store.enqueue(vec![NewJob::new("a", "{}")]).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        t.store.wait_for_work(Duration::from_secs(30)),
    )
    .await
    .expect("the stored wake-up returns the wait");
}

#[tokio::test]
async fn release_and_retry_wake_waiting_workers() {
    let t = open().await;
    let id = t
        .store
        .enqueue(vec![NewJob::new("a", "{}").max_attempts(1)])
        .await
        .unwrap()[0]
        .id;
    let job = claim(&t.store, "default", 1).await.remove(0);
    // Use up the permit the enqueue left.
    t.store.wait_for_work(Duration::from_millis(1)).await;

    let store = t.store.clone();
    let waiter = tokio::spawn(async move { store.wait_for_work(Duration::from_secs(30)).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    t.store.release(vec![job.lease]).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("release wakes")
        .unwrap();

    let job = claim(&t.store, "default", 1).await.remove(0);
    t.store
        .finish(vec![Finish {
            lease: job.lease,
            outcome: failed(1, "x", None),
        }])
        .await
        .unwrap();
    t.store.wait_for_work(Duration::from_millis(1)).await;
    let store = t.store.clone();
    let waiter = tokio::spawn(async move { store.wait_for_work(Duration::from_secs(30)).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(t.store.retry(id).await.unwrap());
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("retry wakes")
        .unwrap();
}

#[tokio::test]
async fn operations_after_close_fail_as_unavailable() {
    let t = open().await;
    t.store.close().await;
    t.store.close().await; // idempotent
    let err = t
        .store
        .enqueue(vec![NewJob::new("a", "{}")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    assert!(err.is_transient());
}
