//! `prune`: completed jobs by one age, dead and cancelled by another, live
//! jobs never; ages count back from the store's clock.

use std::time::Duration;

use steward_core::store::{JobId, JobState, Store};

use crate::Harness;
use crate::support::{
    Fixture, HOUR, counts, job_in_state, prune, prune_all_finished, record, transient,
};

/// How long the cases let their finished jobs age, and an age they are
/// surely older than by then: generous both ways, so a slow machine
/// cannot make a job look younger or older than it is.
const AGED: Duration = Duration::from_millis(300);
const YOUNGER_THAN_AGED: Duration = Duration::from_millis(100);

async fn exists<S: Store>(store: &S, id: JobId) -> bool {
    transient(|| store.job(id))
        .await
        .unwrap_or_else(|e| panic!("job({id}) failed: {e}"))
        .is_some()
}

/// Completed jobs finished more than `completed_older_than` ago (by the
/// store's clock) are deleted; younger ones are kept, and dead and cancelled
/// ones are judged by their own age.
pub async fn prune_deletes_completed_jobs_older_than_their_age<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let completed = job_in_state(s, JobState::Completed).await;
    let dead = job_in_state(s, JobState::Dead).await;
    let cancelled = job_in_state(s, JobState::Cancelled).await;
    tokio::time::sleep(AGED).await;

    assert_eq!(
        prune(s, HOUR, HOUR).await,
        0,
        "jobs finished {AGED:?} ago are younger than an hour"
    );
    assert!(exists(s, completed).await);
    assert_eq!(
        prune(s, YOUNGER_THAN_AGED, HOUR).await,
        1,
        "a completed job finished {AGED:?} ago is older than {YOUNGER_THAN_AGED:?}"
    );
    assert!(!exists(s, completed).await, "the pruned job is gone");
    assert!(exists(s, dead).await, "a dead job is judged by its own age");
    assert!(
        exists(s, cancelled).await,
        "a cancelled job is judged by the dead age"
    );
}

/// Dead and cancelled jobs finished more than `dead_older_than` ago are
/// deleted; younger ones are kept, and completed ones are judged by their
/// own age.
pub async fn prune_deletes_dead_and_cancelled_jobs_older_than_their_age<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let dead = job_in_state(s, JobState::Dead).await;
    let cancelled = job_in_state(s, JobState::Cancelled).await;
    let completed = job_in_state(s, JobState::Completed).await;
    tokio::time::sleep(AGED).await;

    assert_eq!(
        prune(s, HOUR, HOUR).await,
        0,
        "jobs finished {AGED:?} ago are younger than an hour"
    );
    assert_eq!(
        prune(s, HOUR, YOUNGER_THAN_AGED).await,
        2,
        "the dead and the cancelled job"
    );
    assert!(!exists(s, dead).await);
    assert!(!exists(s, cancelled).await);
    assert!(
        exists(s, completed).await,
        "a completed job is judged by its own age"
    );
}

/// Jobs that are not finished are never pruned, whatever the ages.
pub async fn prune_never_deletes_queued_running_or_retryable_jobs<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    for state in JobState::ALL {
        job_in_state(s, state).await;
    }
    assert_eq!(
        prune_all_finished(s).await,
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

/// An age longer than any time the store can hold keeps every job: the
/// cutoff saturates at the earliest time instead of failing or wrapping.
pub async fn prune_with_an_absurd_age_keeps_everything<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let completed = job_in_state(s, JobState::Completed).await;
    let dead = job_in_state(s, JobState::Dead).await;
    tokio::time::sleep(AGED).await;
    assert_eq!(prune(s, Duration::MAX, Duration::MAX).await, 0);
    assert!(record(s, completed).await.finished_at.is_some());
    assert!(exists(s, dead).await);
}
