//! The engine cases. Each takes a harness, builds a fresh store, runs a real
//! worker on it, and checks what the store recorded and what the jobs saw.

use std::time::Duration;

use steward_core::jobs::EnqueueOptions;
use steward_core::store::{ErrorKind, JobState, NewJob, Store, UniqueScope};

use super::kit::{Ask, Bench, Boom, Flaky, Nap, Record, Steps};
use crate::Harness;

pub use super::faults::{
    a_job_reclaimed_by_the_same_worker_keeps_its_new_attempt_apart_from_the_stale_one,
    a_worker_whose_loop_panics_gives_back_its_jobs_and_restarts_with_its_kinds,
};
pub use super::history::{
    a_stopping_worker_writes_its_last_history, maintenance_prunes_history_past_its_retention,
    the_worker_writes_what_its_attempts_did_to_the_history,
};
pub use super::hostile::{
    a_job_missing_its_state_fails_at_once_naming_the_type,
    a_panicking_error_display_fails_the_attempt_and_frees_its_slot,
    a_panicking_payload_decoder_fails_the_attempt_and_frees_its_slot,
};
pub use super::leadership::{
    a_dead_leader_is_replaced_once_its_lease_expires,
    only_the_leader_runs_maintenance_and_a_clean_stop_hands_over,
};
pub use super::nodes::a_node_whose_refreshes_fail_expires_and_returns_and_the_worker_runs_on;
pub use super::outcomes::{
    an_outcome_the_database_refuses_for_good_holds_back_no_other,
    the_worker_is_not_ready_while_outcomes_cannot_be_written,
};
pub use super::pauses::a_failed_read_of_the_paused_queues_keeps_the_last_known_set;
pub use super::shutdown::{
    running_jobs_hear_the_worker_is_stopping_before_they_are_cancelled,
    shutdown_lets_running_jobs_finish_within_the_drain_timeout,
    shutdown_releases_jobs_that_cannot_finish_as_interrupted,
    the_worker_drains_within_what_is_left_of_the_shutdown_timeout,
    the_worker_stops_in_time_when_the_store_is_unreachable,
};

const STOP: Duration = Duration::from_secs(10);

/// A job enqueued through the client runs once and is completed.
pub async fn typed_job_runs_once_and_completes<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let id = b
        .client
        .enqueue(Record {
            tag: "hello".into(),
        })
        .await
        .expect("enqueue")
        .id;
    let w = b.start(b.config(&[("default", 4)]), STOP);
    let job = b.wait_state(id, JobState::Completed).await;
    assert!(w.stop().await.is_success());
    assert_eq!(job.attempt, 1);
    assert!(job.errors.is_empty());
    assert_eq!(b.log.events(), vec!["hello".to_string()]);
}

/// Bulk enqueue returns ids in order; a unique duplicate returns the holder's id.
pub async fn client_bulk_and_unique_enqueue_return_ids<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let ids = b
        .client
        .enqueue_many(
            (0..50).map(|i| Record { tag: i.to_string() }),
            EnqueueOptions::default(),
        )
        .await
        .expect("bulk enqueue");
    assert_eq!(ids.len(), 50);
    assert!(ids.windows(2).all(|w| w[0].id < w[1].id));
    let opts = EnqueueOptions::default().unique("report:1", UniqueScope::Queued);
    let first = b
        .client
        .enqueue_with(Record { tag: "u".into() }, opts.clone())
        .await
        .expect("first");
    let again = b
        .client
        .enqueue_with(Record { tag: "u".into() }, opts)
        .await
        .expect("again");
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(again.id, first.id);
    assert_eq!(b.store.counts().await.expect("counts").available, 51);
}

/// A job of a kind this worker does not run is left for a worker that
/// does (in a rolling deploy, the new workers): never claimed here, no
/// attempt counted; the worker runs the others, before and after it.
pub async fn a_kind_the_worker_does_not_run_is_left_for_another_worker<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let other = b
        .store
        .enqueue(vec![NewJob::new("new_kind", "{}").max_attempts(1)])
        .await
        .expect("enqueue")[0]
        .id;
    let before = b.store.job(other).await.expect("read");
    let w = b.start(b.config(&[("default", 2)]), STOP);
    let good = b
        .client
        .enqueue(Record {
            tag: "after".into(),
        })
        .await
        .expect("enqueue")
        .id;
    b.wait_state(good, JobState::Completed).await;
    assert!(w.stop().await.is_success());
    assert_eq!(
        b.store.job(other).await.expect("read"),
        before,
        "left exactly as it was, for a worker that runs its kind"
    );
}

/// A payload that no longer deserializes into the job's type (at its own
/// payload version, so no upgrade applies) kills the job at its first
/// attempt, whatever attempts it has left: retrying cannot make it decode.
/// The error names the kind, the version and serde's reason.
pub async fn payload_that_no_longer_matches_fails_with_a_clear_error<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let row = NewJob::new("record", r#"{"label":"renamed field"}"#);
    let id = b.store.enqueue(vec![row]).await.expect("enqueue")[0].id;
    let w = b.start(b.config(&[("default", 2)]), STOP);
    let job = b.wait_state(id, JobState::Dead).await;
    assert!(w.stop().await.is_success());
    assert_eq!(job.errors.len(), 1, "dead at once, not retried: {job:?}");
    assert_eq!(job.errors[0].kind, ErrorKind::Payload);
    let message = &job.errors[0].message;
    assert!(
        message.starts_with("the payload of job kind `record` (version 1) does not decode: "),
        "{message}"
    );
    assert!(message.contains("tag"), "serde's reason is kept: {message}");
}

/// Each failed attempt is stored with its number and full error chain;
/// after max attempts the job is dead and kept.
pub async fn failing_job_is_retried_with_backoff_then_dead_with_every_error_kept<H: Harness>(
    h: &H,
) {
    let b = Bench::new(h).await;
    let id = b
        .client
        .enqueue(Flaky { times: 99 })
        .await
        .expect("enqueue")
        .id;
    let w = b.start(b.config(&[("default", 2)]), STOP);
    let job = b.wait_state(id, JobState::Dead).await;
    assert!(w.stop().await.is_success());
    assert_eq!(job.attempt, 3);
    let attempts: Vec<u32> = job.errors.iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, vec![1, 2, 3]);
    for e in &job.errors {
        assert_eq!(e.kind, ErrorKind::Error);
        assert_eq!(e.message, "calling upstream failed: connection refused");
    }
    assert!(job.errors[0].at < job.errors[1].at && job.errors[1].at < job.errors[2].at);
    assert!(job.finished_at.is_some());
}

/// A panic is caught, recorded with its message, and the worker goes on.
pub async fn panicking_job_records_its_panic_message<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let id = b.client.enqueue(Boom {}).await.expect("enqueue").id;
    let w = b.start(b.config(&[("default", 2)]), STOP);
    let job = b.wait_state(id, JobState::Dead).await;
    let next = b
        .client
        .enqueue(Record {
            tag: "still alive".into(),
        })
        .await
        .expect("enqueue")
        .id;
    b.wait_state(next, JobState::Completed).await;
    assert!(w.stop().await.is_success());
    assert_eq!(job.errors[0].kind, ErrorKind::Panic);
    assert_eq!(job.errors[0].message, "panicked: boom goes the job");
}

/// A job that fails twice completes on its third attempt.
pub async fn flaky_job_succeeds_after_retries<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let id = b
        .client
        .enqueue(Flaky { times: 2 })
        .await
        .expect("enqueue")
        .id;
    let w = b.start(b.config(&[("default", 2)]), STOP);
    let job = b.wait_state(id, JobState::Completed).await;
    assert!(w.stop().await.is_success());
    assert_eq!(job.attempt, 3);
    assert_eq!(job.errors.len(), 2);
    assert_eq!(b.log.events(), vec!["attempt 1", "attempt 2", "attempt 3"]);
}

/// A delayed job waits for its time.
pub async fn delayed_job_does_not_run_before_its_time<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let opts = EnqueueOptions::default().after(Duration::from_millis(1500));
    let id = b
        .client
        .enqueue_with(Record { tag: "late".into() }, opts)
        .await
        .expect("enqueue")
        .id;
    assert_eq!(b.job(id).await.state, JobState::Scheduled);
    let w = b.start(b.config(&[("default", 2)]), STOP);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(b.log.events().is_empty(), "ran before its time");
    b.wait_state(id, JobState::Completed).await;
    assert!(w.stop().await.is_success());
}

/// Within a queue, lower priority values run first.
pub async fn jobs_of_a_queue_run_by_priority<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    for (tag, priority) in [("c", 5), ("a", -1), ("b", 2)] {
        let opts = EnqueueOptions::default().priority(priority);
        b.client
            .enqueue_with(Record { tag: tag.into() }, opts)
            .await
            .expect("enqueue");
    }
    let w = b.start(b.config(&[("default", 1)]), STOP);
    let deadline = tokio::time::Instant::now() + super::kit::PATIENCE;
    while b.log.events().len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "jobs did not run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(w.stop().await.is_success());
    assert_eq!(b.log.events(), vec!["a", "b", "c"]);
}

/// No more than a queue's concurrency run at once.
pub async fn queue_concurrency_limit_is_respected<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let ids = b
        .client
        .enqueue_many(
            (0..8).map(|_| Nap {
                ms: 150,
                stubborn: false,
            }),
            EnqueueOptions::default(),
        )
        .await
        .expect("enqueue");
    let w = b.start(b.config(&[("default", 3)]), STOP);
    for e in &ids {
        b.wait_state(e.id, JobState::Completed).await;
    }
    assert!(w.stop().await.is_success());
    assert_eq!(b.log.max_in_flight(), 3);
}

/// A job over its timeout sees its token fire; the attempt fails as a timeout.
pub async fn job_timeout_cancels_its_context_and_fails_the_attempt<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let opts = EnqueueOptions::default()
        .timeout(Duration::from_millis(200))
        .max_attempts(1);
    let id = b
        .client
        .enqueue_with(
            Nap {
                ms: 60_000,
                stubborn: false,
            },
            opts,
        )
        .await
        .expect("enqueue")
        .id;
    let w = b.start(b.config(&[("default", 1)]), STOP);
    let job = b.wait_state(id, JobState::Dead).await;
    assert!(w.stop().await.is_success());
    assert_eq!(job.errors[0].kind, ErrorKind::Timeout);
    assert_eq!(job.errors[0].message, "timed out after 200ms");
    assert!(
        b.log.events().iter().any(|e| e.ends_with("stopped")),
        "the job saw its token fire"
    );
}

/// A job that ignores its timeout is dropped after the stop grace, and the
/// worker's slot comes back.
pub async fn job_ignoring_its_timeout_is_dropped_after_the_grace<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let opts = EnqueueOptions::default()
        .timeout(Duration::from_millis(100))
        .max_attempts(1);
    let id = b
        .client
        .enqueue_with(
            Nap {
                ms: 60_000,
                stubborn: true,
            },
            opts,
        )
        .await
        .expect("enqueue")
        .id;
    let w = b.start(b.config(&[("default", 1)]), STOP);
    let job = b.wait_state(id, JobState::Dead).await;
    assert_eq!(job.errors[0].kind, ErrorKind::Timeout);
    let next = b
        .client
        .enqueue(Record {
            tag: "slot freed".into(),
        })
        .await
        .expect("enqueue")
        .id;
    b.wait_state(next, JobState::Completed).await;
    assert!(w.stop().await.is_success());
}

/// A checkpoint saved by a failed attempt is where the next one starts.
pub async fn checkpoint_lets_the_next_attempt_resume<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let id = b
        .client
        .enqueue(Steps { fail_after: 3 })
        .await
        .expect("enqueue")
        .id;
    let w = b.start(b.config(&[("default", 1)]), STOP);
    let job = b.wait_state(id, JobState::Completed).await;
    assert!(w.stop().await.is_success());
    assert_eq!(job.attempt, 2);
    assert_eq!(
        b.log.events(),
        vec!["step 1", "step 2", "step 3", "step 4", "step 5"]
    );
    assert_eq!(job.checkpoint.as_deref().map(str::trim), Some("5"));
}

/// Snoozing runs the job again later without using up an attempt.
pub async fn snooze_does_not_use_up_an_attempt<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let id = b
        .client
        .enqueue(Ask {
            what: "snooze".into(),
        })
        .await
        .expect("enqueue")
        .id;
    let w = b.start(b.config(&[("default", 1)]), STOP);
    let job = b.wait_state(id, JobState::Completed).await;
    assert!(w.stop().await.is_success());
    assert_eq!(job.attempt, 1);
    assert!(job.errors.is_empty());
    assert_eq!(
        b.log.events(),
        vec!["ask snooze attempt 1", "ask snooze attempt 1"]
    );
}

/// `RetryAfter` records the failure and schedules the retry when the job said.
pub async fn job_can_ask_to_be_retried_later<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let id = b
        .client
        .enqueue(Ask {
            what: "retry_later".into(),
        })
        .await
        .expect("enqueue")
        .id;
    let w = b.start(b.config(&[("default", 1)]), STOP);
    let job = b.wait_state(id, JobState::Retryable).await;
    assert!(w.stop().await.is_success());
    assert_eq!(job.errors[0].message, "upstream says come back in an hour");
    let wait = job.run_at - chrono::Utc::now();
    assert!(
        wait > chrono::TimeDelta::minutes(50),
        "retry is due in {wait}"
    );
}

/// A job can cancel itself; the reason is kept.
pub async fn job_can_cancel_itself<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let id = b
        .client
        .enqueue(Ask {
            what: "cancel".into(),
        })
        .await
        .expect("enqueue")
        .id;
    let w = b.start(b.config(&[("default", 1)]), STOP);
    let job = b.wait_state(id, JobState::Cancelled).await;
    assert!(w.stop().await.is_success());
    assert_eq!(job.errors[0].kind, ErrorKind::Cancelled);
    assert_eq!(job.errors[0].message, "nothing left to do");
}

/// Cancelling a running job fires its token; it ends cancelled.
pub async fn cancelling_a_running_job_fires_its_token_and_ends_it_cancelled<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let id = b
        .client
        .enqueue(Nap {
            ms: 60_000,
            stubborn: false,
        })
        .await
        .expect("enqueue")
        .id;
    let w = b.start(b.config(&[("default", 1)]), STOP);
    b.wait_state(id, JobState::Running).await;
    let result = b.client.cancel(id).await.expect("cancel");
    assert_eq!(result, steward_core::store::CancelResult::Requested);
    let job = b.wait_state(id, JobState::Cancelled).await;
    assert!(w.stop().await.is_success());
    assert_eq!(
        job.errors.last().map(|e| e.message.as_str()),
        Some("cancelled by an operator")
    );
    assert!(b.log.events().iter().any(|e| e.ends_with("stopped")));
}

/// One maintenance pass rescues an expired lease and prunes by retention.
pub async fn maintenance_rescues_expired_leases_and_prunes<H: Harness>(h: &H) {
    use steward_core::store::{ClaimRequest, QueueClaim};
    let b = Bench::new(h).await;
    let id = b
        .client
        .enqueue(Record { tag: "x".into() })
        .await
        .expect("enqueue")
        .id;
    let claimed = b
        .store
        .claim(ClaimRequest {
            worker: "gone/1".into(),
            queues: vec![QueueClaim {
                queue: "default".into(),
                limit: 1,
            }],
            lease: Duration::from_millis(50),
            max_suspects: u32::MAX,
            kinds: None,
        })
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let maintenance = b.maintenance();
    let pass = maintenance.run_once().await.expect("maintenance pass");
    assert_eq!(pass.rescue.rescued, 1);
    assert_eq!(b.job(id).await.state, JobState::Available);
    let w = b.start(b.config(&[("default", 1)]), STOP);
    b.wait_state(id, JobState::Completed).await;
    assert!(w.stop().await.is_success());
    let prune = maintenance.config(steward_core::jobs::MaintenanceConfig {
        completed_retention: Duration::ZERO,
        ..Default::default()
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(prune.prune_once().await.expect("prune"), 1);
    assert!(b.store.job(id).await.expect("read").is_none());
}

/// Error text no store can hold as given (a NUL character) is still
/// recorded, so the job does not stay running until its lease expires.
pub async fn error_text_with_a_nul_character_is_recorded<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let opts = EnqueueOptions::default().max_attempts(1);
    let id = b
        .client
        .enqueue_with(Ask { what: "nul".into() }, opts)
        .await
        .expect("enqueue")
        .id;
    let w = b.start(b.config(&[("default", 1)]), STOP);
    let job = b.wait_state(id, JobState::Dead).await;
    assert!(w.stop().await.is_success());
    assert_eq!(job.errors[0].message, "bad \u{FFFD} byte");
}
