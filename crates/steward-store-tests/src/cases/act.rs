//! `act_on_jobs` (an operator's retry, cancel or delete of a chunk of jobs)
//! and `reschedule` (run a waiting job now, change its priority or run time).

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use steward_core::store::{
    ActOn, Acted, JobAction, JobId, JobState, MAX_ACT_CHUNK, NewJob, Reschedule, Rescheduled,
    RunAt, Store, StoreError, UniqueScope,
};

use crate::Harness;
use crate::support::{
    Fixture, HOUR, LONG_LEASE, assert_between, claim_from, counts, enqueue, enqueue_one, failed,
    finish_ok, fresh_queue, job_in, job_in_state, now, record, transient,
};

/// The store's answer to one chunk, which must succeed.
pub(crate) async fn act<S: Store>(store: &S, chunk: ActOn) -> Vec<Acted> {
    transient(|| store.act_on_jobs(chunk.clone()))
        .await
        .unwrap_or_else(|e| panic!("act_on_jobs({chunk:?}) failed: {e}"))
}

async fn change<S: Store>(store: &S, id: JobId, change: Reschedule) -> Rescheduled {
    transient(|| store.reschedule(id, change))
        .await
        .unwrap_or_else(|e| panic!("reschedule({id}, {change:?}) failed: {e}"))
}

/// One job in each state, in state order.
async fn one_of_each<S: Store>(store: &S) -> Vec<(JobState, JobId)> {
    let mut jobs = Vec::new();
    for state in JobState::ALL {
        jobs.push((state, job_in_state(store, state).await));
    }
    jobs
}

/// Each action touches exactly the states it accepts, answers per id in
/// order, and leaves the others as they were: retry revives finished jobs,
/// cancel cancels queued ones and asks running ones' workers, delete removes
/// everything but running jobs.
pub async fn act_on_jobs_applies_each_action_only_to_the_states_it_accepts<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    for action in [JobAction::Retry, JobAction::Cancel, JobAction::Delete] {
        let jobs = one_of_each(s).await;
        let ids: Vec<JobId> = jobs.iter().map(|(_, id)| *id).collect();
        let acted = act(s, ActOn::new(action, ids)).await;
        assert_eq!(acted.len(), jobs.len(), "{action:?}: one answer per id");
        for ((before, id), acted) in jobs.iter().zip(acted) {
            let after = transient(|| s.job(*id)).await.expect("job(id)");
            let what = format!("{action:?} of a {before} job");
            match (action, before.is_final(), *before) {
                (JobAction::Retry, true, _) => {
                    assert_eq!(acted, Acted::Done, "{what}");
                    let r = after.expect("a retried job stays");
                    assert_eq!((r.state, r.attempt), (JobState::Available, 0), "{what}");
                }
                (JobAction::Cancel, _, JobState::Running) => {
                    assert_eq!(acted, Acted::Requested, "{what}");
                    let r = after.expect("a running job stays");
                    assert!(r.state == JobState::Running && r.cancel_requested, "{what}");
                }
                (JobAction::Cancel, false, _) => {
                    assert_eq!(acted, Acted::Done, "{what}");
                    assert_eq!(after.map(|r| r.state), Some(JobState::Cancelled), "{what}");
                }
                (JobAction::Delete, _, JobState::Running) => {
                    assert_eq!(acted, Acted::Skipped(JobState::Running), "{what}");
                    assert_eq!(after.map(|r| r.state), Some(JobState::Running), "{what}");
                }
                (JobAction::Delete, _, _) => {
                    assert_eq!(acted, Acted::Done, "{what}");
                    assert!(after.is_none(), "{what}: the job is gone");
                }
                _ => {
                    assert_eq!(acted, Acted::Skipped(*before), "{what}");
                    assert_eq!(after.map(|r| r.state), Some(*before), "{what}: left alone");
                }
            }
        }
    }
}

/// A job no longer in the filter's states (it moved since it was chosen)
/// is skipped, not clobbered; unknown ids are reported, not errors, and do
/// not stop the rest of the chunk.
pub async fn act_on_jobs_skips_jobs_outside_the_filter_states_and_reports_unknown_ids<
    H: Harness,
>(
    h: &H,
) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let dead = job_in_state(s, JobState::Dead).await;
    let cancelled = job_in_state(s, JobState::Cancelled).await;
    let unknown = JobId(dead.0.max(cancelled.0) + 1_000_000);
    let acted = act(
        s,
        ActOn::new(JobAction::Retry, [unknown, cancelled, dead]).states([JobState::Dead]),
    )
    .await;
    assert_eq!(
        acted,
        vec![
            Acted::NotFound,
            Acted::Skipped(JobState::Cancelled),
            Acted::Done
        ],
        "a retry of dead jobs: the unknown one not found, the cancelled one skipped"
    );
    assert_eq!(record(s, cancelled).await.state, JobState::Cancelled);
    assert_eq!(record(s, dead).await.state, JobState::Available);
    assert!(act(s, ActOn::new(JobAction::Delete, [])).await.is_empty());
}

/// A chunk with an id below 1, an id twice, or more than `MAX_ACT_CHUNK`
/// ids is refused with `Invalid`, and nothing of it is written.
pub async fn act_on_jobs_refuses_an_invalid_chunk_and_writes_nothing<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let id = job_in_state(s, JobState::Dead).await;
    let too_many = (1..=MAX_ACT_CHUNK as i64 + 1).map(JobId);
    for (what, chunk) in [
        ("an id of 0", ActOn::new(JobAction::Delete, [id, JobId(0)])),
        (
            "a negative id",
            ActOn::new(JobAction::Delete, [id, JobId(-4)]),
        ),
        ("an id twice", ActOn::new(JobAction::Delete, [id, id])),
        ("too many ids", ActOn::new(JobAction::Delete, too_many)),
    ] {
        match s.act_on_jobs(chunk).await {
            Err(StoreError::Invalid { .. }) => {}
            other => panic!("a chunk with {what} should be refused as invalid, got {other:?}"),
        }
        assert_eq!(
            record(s, id).await.state,
            JobState::Dead,
            "a refused chunk ({what}) writes nothing"
        );
    }
}

/// A bulk retry keeps `retry`'s unique-key rules: a job takes back its key
/// if nobody holds it, runs without it if another job does. A deleted job's
/// key is free at once.
pub async fn act_on_jobs_keeps_the_unique_key_rules<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let queue = fresh_queue("act-unique");
    let keyed = |key: &str| job_in(&queue).unique(key, UniqueScope::Active);
    // Two dead jobs: one whose key is free, one whose key another job took.
    let mut dead = Vec::new();
    for key in ["free", "taken"] {
        let id = enqueue_one(s, keyed(key)).await;
        let claimed = claim_from(s, &[(&queue, 1)], LONG_LEASE).await;
        finish_ok(s, claimed[0].lease, failed(1, "boom", None)).await;
        dead.push(id);
    }
    let holder = enqueue_one(s, keyed("taken").delay(HOUR)).await;
    let acted = act(s, ActOn::new(JobAction::Retry, dead.clone())).await;
    assert_eq!(acted, vec![Acted::Done, Acted::Done]);
    assert_eq!(record(s, dead[0]).await.unique_key.as_deref(), Some("free"));
    assert_eq!(
        record(s, dead[1]).await.unique_key,
        None,
        "a retried job whose key another job holds runs without it"
    );
    assert_eq!(record(s, holder).await.unique_key.as_deref(), Some("taken"));
    // The revived key keeps duplicates out again.
    assert!(enqueue(s, vec![keyed("free")]).await[0].duplicate);
    // Deleting the holder frees its key at once.
    let acted = act(s, ActOn::new(JobAction::Delete, [holder])).await;
    assert_eq!(acted, vec![Acted::Done]);
    assert!(!enqueue(s, vec![keyed("taken")]).await[0].duplicate);
}

/// A deleted job is gone with its errors; nothing else changes.
pub async fn deleted_jobs_are_gone_and_other_jobs_untouched<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let dead = job_in_state(s, JobState::Dead).await;
    assert_eq!(record(s, dead).await.errors.len(), 1);
    let other = job_in_state(s, JobState::Dead).await;
    let before = counts(s).await;
    assert_eq!(
        act(s, ActOn::new(JobAction::Delete, [dead])).await,
        vec![Acted::Done]
    );
    assert!(transient(|| s.job(dead)).await.expect("job(id)").is_none());
    assert_eq!(counts(s).await.dead, before.dead - 1);
    assert_eq!(record(s, other).await.state, JobState::Dead);
    assert_eq!(
        act(s, ActOn::new(JobAction::Delete, [dead])).await,
        vec![Acted::NotFound],
        "deleting it again: not found"
    );
}

/// Run now: a scheduled job with a run time ahead is available at once and
/// claimable; a retryable one stays retryable but is due now.
pub async fn reschedule_now_makes_a_waiting_job_due_at_once<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    for (waiting, after) in [
        (JobState::Scheduled, JobState::Available),
        (JobState::Retryable, JobState::Retryable),
        (JobState::Available, JobState::Available),
    ] {
        let id = job_in_state(s, waiting).await;
        let queue = record(s, id).await.queue;
        let before = now();
        let done = change(s, id, Reschedule::default().run_at(RunAt::Now)).await;
        assert_eq!(
            done,
            Rescheduled::Updated(after),
            "run now of a {waiting} job"
        );
        let r = record(s, id).await;
        assert_eq!(r.state, after);
        assert_between(
            r.run_at,
            before - TimeDelta::seconds(1),
            now(),
            "run_at of run now",
        );
        let claimed = claim_from(s, &[(&queue, 5)], LONG_LEASE).await;
        assert_eq!(
            claimed.len(),
            1,
            "a {waiting} job run now is claimable at once"
        );
    }
}

/// Priority and run time change together or alone; a run time ahead makes
/// an available job scheduled, on the store's clock for a delay.
pub async fn reschedule_changes_priority_and_run_time<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let queue = fresh_queue("reschedule");
    let id = enqueue_one(s, NewJob::new("k", "{}").queue(&queue).priority(3)).await;
    let done = change(s, id, Reschedule::default().priority(-7)).await;
    assert_eq!(done, Rescheduled::Updated(JobState::Available));
    let r = record(s, id).await;
    assert_eq!(
        (r.priority, r.state),
        (-7, JobState::Available),
        "priority only"
    );

    let before = now();
    let done = change(
        s,
        id,
        Reschedule::default().run_at(RunAt::In(HOUR)).priority(2),
    )
    .await;
    let after = now();
    assert_eq!(done, Rescheduled::Updated(JobState::Scheduled));
    let r = record(s, id).await;
    assert_eq!(r.priority, 2);
    let hour = TimeDelta::hours(1);
    let slack = TimeDelta::seconds(1);
    assert_between(
        r.run_at,
        before + hour - slack,
        after + hour + slack,
        "run_at of a delay",
    );
    assert!(claim_from(s, &[(&queue, 5)], LONG_LEASE).await.is_empty());

    let at = now() + TimeDelta::days(2);
    let done = change(s, id, Reschedule::default().run_at(RunAt::At(at))).await;
    assert_eq!(done, Rescheduled::Updated(JobState::Scheduled));
    let kept = record(s, id).await.run_at;
    assert!(
        (kept - at).abs() < TimeDelta::milliseconds(2),
        "run_at as given"
    );
    let past = now() - TimeDelta::days(2);
    let done = change(s, id, Reschedule::default().run_at(RunAt::At(past))).await;
    assert_eq!(
        done,
        Rescheduled::Updated(JobState::Available),
        "a past time: due"
    );
}

/// Running and finished jobs are refused with their state and unchanged;
/// unknown ids are not found; an empty change or a time outside years 1 to
/// 9999 is invalid and writes nothing.
pub async fn reschedule_refuses_running_finished_unknown_and_invalid<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    for state in [
        JobState::Running,
        JobState::Completed,
        JobState::Dead,
        JobState::Cancelled,
    ] {
        let id = job_in_state(s, state).await;
        let before = record(s, id).await;
        let done = change(s, id, Reschedule::default().priority(1).run_at(RunAt::Now)).await;
        assert_eq!(
            done,
            Rescheduled::NotWaiting(state),
            "reschedule of a {state} job"
        );
        assert_eq!(
            record(s, id).await,
            before,
            "a refused reschedule writes nothing"
        );
    }
    let id = job_in_state(s, JobState::Scheduled).await;
    let done = change(
        s,
        JobId(id.0 + 1_000_000),
        Reschedule::default().priority(1),
    )
    .await;
    assert_eq!(done, Rescheduled::NotFound);
    let before = record(s, id).await;
    let too_late = chrono::DateTime::<chrono::Utc>::MAX_UTC;
    for bad in [
        Reschedule::default(),
        Reschedule::default().run_at(RunAt::At(too_late)),
    ] {
        match s.reschedule(id, bad).await {
            Err(StoreError::Invalid { .. }) => {}
            other => panic!("{bad:?} should be refused as invalid, got {other:?}"),
        }
    }
    assert_eq!(
        record(s, id).await,
        before,
        "an invalid change writes nothing"
    );
    // An absurd delay saturates, as an enqueue's does.
    let done = change(
        s,
        id,
        Reschedule::default().run_at(RunAt::In(Duration::MAX)),
    )
    .await;
    assert_eq!(done, Rescheduled::Updated(JobState::Scheduled));
}

/// A waiting worker wakes when a job is run now, as after an enqueue.
pub async fn reschedule_now_wakes_a_waiting_worker<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let id = job_in_state(s, JobState::Scheduled).await;
    // Wake-ups left from setting up are spurious; use them up.
    s.wait_for_work(Duration::from_millis(100)).await;
    let long = Duration::from_secs(10);
    let started = Instant::now();
    let ((), ()) = tokio::join!(s.wait_for_work(long), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        change(s, id, Reschedule::default().run_at(RunAt::Now)).await;
    });
    assert!(
        started.elapsed() < long / 2,
        "wait_for_work should return soon after a job is run now, took {:?}",
        started.elapsed()
    );
}
