//! Queue pauses as a worker sees them when the store cannot tell: a failed
//! read of the paused queues keeps the last known set, so a store hiccup
//! neither stops the claims nor lets a paused queue run.

use std::sync::Arc;

use steward_core::jobs::Worker;
use steward_core::store::{JobId, JobState, NewJob, QueueChange, Store};

use super::faulty::Faulty;
use super::kit::{Bench, Nap, host};
use crate::Harness;

/// A short nap in `queue`.
async fn nap_in<S: Store>(store: &S, queue: &str) -> JobId {
    store
        .enqueue(vec![
            NewJob::new("nap", r#"{"ms":1,"stubborn":false}"#).queue(queue),
        ])
        .await
        .expect("enqueue")[0]
        .id
}

/// With the reads of the paused queues failing, a paused queue stays
/// paused (even once resumed in the store: the worker cannot know yet)
/// while the other queues run on; once the reads work again, the resume
/// is heard and its jobs run.
pub async fn a_failed_read_of_the_paused_queues_keeps_the_last_known_set<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let real = b.store.clone();
    let held = nap_in(&*real, "held").await;
    assert_eq!(
        real.pause_queue("held").await.expect("pause"),
        QueueChange::Changed
    );
    let store = Arc::new(Faulty::new(real.clone()));
    let config = b.config(&[("held", 1), ("free", 1)]);
    let poll = config.poll_interval;
    let worker = Worker::new(store.clone())
        .register::<Nap>()
        .config(config)
        .state(b.log.clone());
    let running = host(|builder| {
        builder.service("worker", worker).expect("register");
    });
    // The worker read the pause before its first claim.
    let first = nap_in(&*real, "free").await;
    b.wait_state(first, JobState::Completed).await;

    store.fail_pause_reads(true);
    assert_eq!(
        real.resume_queue("held").await.expect("resume"),
        QueueChange::Changed
    );
    let second = nap_in(&*real, "free").await;
    b.wait_state(second, JobState::Completed).await;
    tokio::time::sleep(poll * 4).await;
    assert_eq!(
        b.job(held).await.state,
        JobState::Available,
        "the last known pause holds while it cannot be read again"
    );

    store.fail_pause_reads(false);
    b.wait_state(held, JobState::Completed).await;
    assert!(running.stop().await.is_success());
}
