//! Fencing after a rescue: the stale worker's writes are refused, the newer
//! attempt's win.

use steward_core::store::{ErrorKind, FinishOutcome, HeartbeatResult, JobState, StoreError};

use crate::Harness;
use crate::support::{
    Fixture, HOUR, LONG_LEASE, SHORT_LEASE, assert_same_json, checkpoint, claim_one, failed,
    finish, finish_ok, heartbeat_one, record, release, rescue_until, running,
};

/// After its job was rescued and claimed again, a stale worker's completion
/// (or failure, or cancel) is refused, and the newer attempt's outcome is
/// the one recorded.
pub async fn stale_worker_completion_is_refused_after_rescue<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let old = running(s, SHORT_LEASE).await;
    rescue_until(s, 5, 1).await;
    let new = claim_one(s, &old.queue, old.lease.id, LONG_LEASE).await;
    assert_ne!(new.lease.token, old.lease.token);

    assert!(
        !finish(s, old.lease, FinishOutcome::Completed).await,
        "the stale worker's completion must be refused"
    );
    assert!(!finish(s, old.lease, failed(1, "stale failure", None)).await);
    let reason = "stale cancel".to_string();
    assert!(!finish(s, old.lease, FinishOutcome::Cancelled { reason }).await);
    let r = record(s, old.lease.id).await;
    assert_eq!(r.state, JobState::Running, "the newer attempt still runs");
    assert_eq!(r.errors.len(), 1, "only the rescue's error: {:?}", r.errors);
    assert_eq!(r.errors[0].kind, ErrorKind::WorkerLost);

    finish_ok(
        s,
        new.lease,
        failed(new.attempt, "newer attempt", Some(HOUR)),
    )
    .await;
    let r = record(s, old.lease.id).await;
    assert_eq!(
        r.state,
        JobState::Retryable,
        "the newer attempt's outcome wins"
    );
    let messages: Vec<&str> = r.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1], "newer attempt");
}

/// After a rescue the old token is dead for every write: heartbeat (`Lost`),
/// checkpoint (`LeaseLost`), release (not counted) and finish (`false`),
/// before and after the job is claimed again.
pub async fn stale_worker_writes_are_refused_after_rescue<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let old = running(s, SHORT_LEASE).await;
    let id = old.lease.id;
    checkpoint(s, old.lease, r#"{"step":1}"#)
        .await
        .expect("checkpoint with a live lease");
    rescue_until(s, 5, 1).await;

    for when in ["after the rescue", "after the job was claimed again"] {
        assert_eq!(
            heartbeat_one(s, old.lease, LONG_LEASE).await,
            HeartbeatResult::Lost,
            "a stale heartbeat {when}"
        );
        match checkpoint(s, old.lease, r#"{"step":99}"#).await {
            Err(StoreError::LeaseLost { id: lost }) => assert_eq!(lost, id),
            other => panic!("a stale checkpoint {when} should be LeaseLost, got {other:?}"),
        }
        assert_eq!(
            release(s, vec![old.lease]).await,
            0,
            "a stale release {when}"
        );
        assert!(
            !finish(s, old.lease, FinishOutcome::Completed).await,
            "a stale finish {when}"
        );
        let r = record(s, id).await;
        assert_same_json(
            r.checkpoint
                .as_deref()
                .expect("the earlier checkpoint is kept"),
            r#"{"step":1}"#,
            "the checkpoint after stale writes",
        );
        assert_eq!(r.interrupted, 0, "a stale release must not count");
        if r.state == JobState::Available {
            let new = claim_one(s, &old.queue, id, LONG_LEASE).await;
            assert_eq!(
                heartbeat_one(s, new.lease, LONG_LEASE).await,
                HeartbeatResult::Extended,
                "the new attempt's own lease is live"
            );
        }
    }
    assert_eq!(record(s, id).await.state, JobState::Running);
}
