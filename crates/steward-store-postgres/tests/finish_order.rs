//! A finish batch that mixes outcome kinds takes one statement per kind. A
//! heartbeat of the same jobs, racing it, locks them all in id order; the
//! finish must too, or each can end up holding a row the other waits for
//! (SQLSTATE 40P01, the batch retried a deadlock timeout later).

mod common;

use std::time::Duration;

use chrono::Utc;
use common::TestSchema;
use steward_core::store::{
    AttemptError, ClaimRequest, ErrorKind, Finish, FinishOutcome, Lease, NewJob, QueueClaim, Store,
    StoreError,
};

const JOBS: usize = 400;

async fn claim_all(store: &impl Store) -> Vec<Lease> {
    let mut leases: Vec<Lease> = store
        .claim(ClaimRequest {
            worker: "finish-order".into(),
            queues: vec![QueueClaim {
                queue: "default".into(),
                limit: JOBS as u32,
            }],
            lease: Duration::from_secs(600),
            max_suspects: u32::MAX,
            kinds: None,
        })
        .await
        .expect("claim")
        .into_iter()
        .map(|c| c.lease)
        .collect();
    leases.sort_unstable_by_key(|l| l.id.0);
    assert_eq!(leases.len(), JOBS);
    leases
}

/// The higher half completes, the lower half fails with a retry: the
/// completion statement runs first and locks the high ids while the
/// heartbeat, walking up from the low ids, heads for them.
fn mixed(leases: &[Lease]) -> Vec<Finish> {
    leases
        .iter()
        .enumerate()
        .map(|(i, lease)| Finish {
            lease: *lease,
            outcome: if i >= JOBS / 2 {
                FinishOutcome::Completed
            } else {
                FinishOutcome::Failed {
                    error: AttemptError {
                        attempt: 1,
                        at: Utc::now(),
                        kind: ErrorKind::Error,
                        message: "boom".into(),
                    },
                    retry_in: Some(Duration::from_secs(3600)),
                }
            },
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_finish_racing_a_heartbeat_of_the_same_jobs_never_deadlocks() {
    let schema = TestSchema::new().await;
    let finisher = schema.connect().await;
    finisher.migrate().await.expect("migrate");
    let beater = schema.connect().await;
    let mut deadlocks = Vec::new();
    for round in 0..15 {
        finisher
            .enqueue(
                (0..JOBS)
                    .map(|i| NewJob::new("k", format!("{{\"i\":{i}}}")))
                    .collect(),
            )
            .await
            .expect("enqueue");
        let leases = claim_all(&finisher).await;
        let batch = mixed(&leases);
        let (beat, finished) = tokio::join!(
            beater.heartbeat(leases.clone(), Duration::from_secs(600)),
            finisher.finish(batch),
        );
        for result in [beat.map(|_| ()), finished.map(|_| ())] {
            match result {
                Ok(()) => {}
                Err(e @ StoreError::Busy { .. }) => deadlocks.push(format!("round {round}: {e}")),
                Err(e) => panic!("round {round}: {e}"),
            }
        }
    }
    assert!(
        deadlocks.is_empty(),
        "a mixed finish and a heartbeat of the same jobs deadlocked: {deadlocks:#?}"
    );
    finisher.close().await;
    beater.close().await;
}
