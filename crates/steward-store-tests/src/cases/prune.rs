//! `prune`: completed jobs by one cutoff, dead and cancelled by another,
//! live jobs never.

use chrono::{DateTime, TimeDelta, Utc};
use steward_core::store::{JobId, JobState, Store};

use crate::Harness;
use crate::support::{Fixture, counts, job_in_state, now, prune, record, transient};

fn finished_at(r: &steward_core::store::JobRecord) -> DateTime<Utc> {
    r.finished_at.expect("a finished job has finished_at")
}

async fn exists<S: Store>(store: &S, id: JobId) -> bool {
    transient(|| store.job(id))
        .await
        .unwrap_or_else(|e| panic!("job({id}) failed: {e}"))
        .is_some()
}

/// Completed jobs finished strictly before `completed_before` are deleted;
/// dead and cancelled ones are judged by their own cutoff.
pub async fn prune_deletes_completed_jobs_finished_before_their_cutoff<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let completed = job_in_state(s, JobState::Completed).await;
    let dead = job_in_state(s, JobState::Dead).await;
    let cancelled = job_in_state(s, JobState::Cancelled).await;
    let done_at = finished_at(&record(s, completed).await);
    let long_ago = now() - TimeDelta::days(365);

    assert_eq!(
        prune(s, done_at, long_ago).await,
        0,
        "finished_at == completed_before is not before it"
    );
    assert!(exists(s, completed).await);
    assert_eq!(
        prune(s, done_at + TimeDelta::milliseconds(1), long_ago).await,
        1,
        "a completed job finished before the cutoff"
    );
    assert!(!exists(s, completed).await, "the pruned job is gone");
    assert!(exists(s, dead).await, "a dead job is judged by dead_before");
    assert!(
        exists(s, cancelled).await,
        "a cancelled job is judged by dead_before"
    );
}

/// Dead and cancelled jobs finished strictly before `dead_before` are
/// deleted; completed ones are judged by their own cutoff.
pub async fn prune_deletes_dead_and_cancelled_jobs_finished_before_their_cutoff<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let dead = job_in_state(s, JobState::Dead).await;
    let cancelled = job_in_state(s, JobState::Cancelled).await;
    let completed = job_in_state(s, JobState::Completed).await;
    let dead_at = finished_at(&record(s, dead).await);
    let cancelled_at = finished_at(&record(s, cancelled).await);
    let long_ago = now() - TimeDelta::days(365);

    assert_eq!(
        prune(s, long_ago, dead_at).await,
        0,
        "finished_at == dead_before is not before it"
    );
    let cutoff = dead_at.max(cancelled_at) + TimeDelta::milliseconds(1);
    assert_eq!(
        prune(s, long_ago, cutoff).await,
        2,
        "the dead and the cancelled job"
    );
    assert!(!exists(s, dead).await);
    assert!(!exists(s, cancelled).await);
    assert!(
        exists(s, completed).await,
        "a completed job is judged by completed_before"
    );
}

/// Jobs that are not finished are never pruned, whatever the cutoffs.
pub async fn prune_never_deletes_queued_running_or_retryable_jobs<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    for state in JobState::ALL {
        job_in_state(s, state).await;
    }
    let far_future = now() + TimeDelta::days(3650);
    assert_eq!(
        prune(s, far_future, far_future).await,
        3,
        "only the three finished jobs"
    );
    let c = counts(s).await;
    assert_eq!(
        (c.scheduled, c.available, c.running, c.retryable),
        (1, 1, 1, 1),
        "every live job is kept"
    );
    assert_eq!((c.completed, c.dead, c.cancelled), (0, 0, 0));
}
