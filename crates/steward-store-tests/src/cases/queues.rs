//! Queues: pause and resume (a setting every worker reads), the paused set
//! the workers poll, and the list of queues with their depth per state.

use steward_core::store::{
    FinishOutcome, JobState, MAX_QUEUE_NAME, QueueChange, QueueInfo, StateCounts, Store, StoreError,
};

use crate::Harness;
use crate::support::{
    Fixture, HOUR, LONG_LEASE, assert_between, cancel, claim_from, enqueue_one, failed, finish_ok,
    job_in, now, prune_all_finished, transient,
};

async fn pause<S: Store>(store: &S, queue: &str) -> QueueChange {
    transient(|| store.pause_queue(queue))
        .await
        .unwrap_or_else(|e| panic!("pause_queue({queue:?}) failed: {e}"))
}

async fn resume<S: Store>(store: &S, queue: &str) -> QueueChange {
    transient(|| store.resume_queue(queue))
        .await
        .unwrap_or_else(|e| panic!("resume_queue({queue:?}) failed: {e}"))
}

async fn paused<S: Store>(store: &S) -> Vec<String> {
    transient(|| store.paused_queues())
        .await
        .unwrap_or_else(|e| panic!("paused_queues failed: {e}"))
}

async fn queues<S: Store>(store: &S) -> Vec<QueueInfo> {
    transient(|| store.queues())
        .await
        .unwrap_or_else(|e| panic!("queues failed: {e}"))
}

/// A queue's pause goes on, is listed with the store's time, is not taken
/// twice, comes off, and is not taken off twice; other queues are left
/// alone.
pub async fn pause_and_resume_a_queue_and_repeat_each_as_a_no_op<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    enqueue_one(s, job_in("mail")).await;
    enqueue_one(s, job_in("sms")).await;
    assert!(paused(s).await.is_empty(), "no queue is paused at first");

    let before = now();
    assert_eq!(pause(s, "mail").await, QueueChange::Changed);
    let after = now();
    assert_eq!(paused(s).await, vec!["mail".to_string()]);
    let listed = queues(s).await;
    let mail = listed
        .iter()
        .find(|q| q.name == "mail")
        .expect("mail listed");
    let since = mail.paused_since.expect("mail listed as paused");
    assert_between(since, before, after, "paused_since");
    let sms = listed.iter().find(|q| q.name == "sms").expect("sms listed");
    assert_eq!(sms.paused_since, None, "pausing mail leaves sms running");

    assert_eq!(
        pause(s, "mail").await,
        QueueChange::Unchanged,
        "pausing a paused queue changes nothing"
    );
    let again = queues(s).await;
    let mail_again = again
        .iter()
        .find(|q| q.name == "mail")
        .expect("mail listed");
    assert_eq!(
        mail_again.paused_since,
        Some(since),
        "a second pause keeps the first pause's time"
    );

    assert_eq!(resume(s, "mail").await, QueueChange::Changed);
    assert!(paused(s).await.is_empty(), "mail runs again");
    assert_eq!(
        resume(s, "mail").await,
        QueueChange::Unchanged,
        "resuming a running queue changes nothing"
    );
    assert_eq!(
        resume(s, "sms").await,
        QueueChange::Unchanged,
        "resuming a queue never paused changes nothing"
    );
    assert!(queues(s).await.iter().all(|q| q.paused_since.is_none()));
}

/// A queue no job and no setting names is refused (`Unknown`) and nothing
/// is written: it is neither paused nor listed afterwards.
pub async fn pausing_or_resuming_an_unknown_queue_writes_nothing<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    enqueue_one(s, job_in("mail")).await;
    assert_eq!(pause(s, "mial").await, QueueChange::Unknown);
    assert_eq!(resume(s, "mial").await, QueueChange::Unknown);
    assert!(paused(s).await.is_empty(), "nothing paused");
    let names: Vec<String> = queues(s).await.into_iter().map(|q| q.name).collect();
    assert_eq!(names, vec!["mail".to_string()], "no queue made up");
}

/// A bad name (empty, too long, a control character) is refused as
/// invalid by both calls, and writes nothing.
pub async fn a_bad_queue_name_is_refused_as_invalid<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    enqueue_one(s, job_in("mail")).await;
    let long = "q".repeat(MAX_QUEUE_NAME + 1);
    for bad in ["", long.as_str(), "mail\n", "a\u{7}b"] {
        for (what, result) in [
            ("pause", s.pause_queue(bad).await),
            ("resume", s.resume_queue(bad).await),
        ] {
            assert!(
                matches!(result, Err(StoreError::Invalid { .. })),
                "{what} of {bad:?} should be refused as invalid, got {result:?}"
            );
        }
    }
    assert!(paused(s).await.is_empty(), "nothing paused");
    assert_eq!(queues(s).await.len(), 1, "only mail is listed");
}

/// Each queue with jobs is listed once, by name, with its jobs counted per
/// state; a paused queue whose jobs were all pruned stays listed (its
/// setting) with zero counts.
pub async fn queues_lists_each_queue_with_its_counts_per_state<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    assert!(queues(s).await.is_empty(), "a fresh store has no queues");

    // mail: 2 available, 1 scheduled, 1 running, 1 retryable, 1 completed,
    // 1 dead; sms: 1 cancelled; old: 1 completed, paused, then pruned.
    for _ in 0..6 {
        enqueue_one(s, job_in("mail")).await;
    }
    enqueue_one(s, job_in("mail").delay(HOUR)).await;
    let claimed = claim_from(s, &[("mail", 4)], LONG_LEASE).await;
    assert_eq!(claimed.len(), 4);
    finish_ok(s, claimed[0].lease, failed(1, "boom", Some(HOUR))).await;
    finish_ok(s, claimed[1].lease, FinishOutcome::Completed).await;
    finish_ok(s, claimed[2].lease, failed(1, "boom", None)).await;
    let sms = enqueue_one(s, job_in("sms")).await;
    cancel(s, sms).await;
    enqueue_one(s, job_in("old")).await;
    let old = claim_from(s, &[("old", 1)], LONG_LEASE).await;
    finish_ok(s, old[0].lease, FinishOutcome::Completed).await;
    assert_eq!(pause(s, "old").await, QueueChange::Changed);

    let listed = queues(s).await;
    let names: Vec<&str> = listed.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names, vec!["mail", "old", "sms"], "by name, each once");
    let mut mail = StateCounts::default();
    for (state, n) in [
        (JobState::Available, 2),
        (JobState::Scheduled, 1),
        (JobState::Running, 1),
        (JobState::Retryable, 1),
        (JobState::Completed, 1),
        (JobState::Dead, 1),
    ] {
        mail.set(state, n);
    }
    assert_eq!(listed[0].counts, mail, "mail's counts");
    assert_eq!(listed[1].counts.completed, 1, "old's counts");
    assert_eq!(listed[2].counts.cancelled, 1, "sms's counts");
    assert_eq!(listed[2].counts.total(), 1, "sms's counts");

    // Prunes old's job (and mail's finished ones, and sms's cancelled one).
    prune_all_finished(s).await;
    let listed = queues(s).await;
    let names: Vec<&str> = listed.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["mail", "old"],
        "a paused queue without jobs stays listed; one without a setting goes"
    );
    assert_eq!(listed[1].counts, StateCounts::default());
    assert!(listed[1].paused_since.is_some(), "old is still paused");
    assert_eq!(resume(s, "old").await, QueueChange::Changed, "and known");
}

/// A paused queue's jobs can still be claimed by a direct call: the pause
/// is honoured by workers, which read `paused_queues`, so that the claim
/// stays a statement on the jobs alone (no setting read per claim).
pub async fn a_pause_is_a_setting_for_workers_not_a_claim_filter<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    enqueue_one(s, job_in("mail")).await;
    assert_eq!(pause(s, "mail").await, QueueChange::Changed);
    let claimed = claim_from(s, &[("mail", 1)], LONG_LEASE).await;
    assert_eq!(claimed.len(), 1, "claim does not read pauses");
}

/// A new job's queue follows the same rule as a paused one: a name too
/// long or holding a control character refuses the batch, writing nothing.
pub async fn enqueue_refuses_a_bad_queue_name_and_writes_nothing<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let long = "q".repeat(MAX_QUEUE_NAME + 1);
    for bad in [long.as_str(), "mail\n", "a\u{0}b"] {
        let result = s.enqueue(vec![job_in("fine"), job_in(bad)]).await;
        assert!(
            matches!(result, Err(StoreError::Invalid { .. })),
            "a job in queue {bad:?} should be refused as invalid, got {result:?}"
        );
    }
    let ok = "q".repeat(MAX_QUEUE_NAME);
    enqueue_one(s, job_in(&ok)).await;
    let names: Vec<String> = queues(s).await.into_iter().map(|q| q.name).collect();
    assert_eq!(names, vec![ok], "the refused batches wrote nothing");
}
