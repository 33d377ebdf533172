//! A row the store cannot read (a time no client can represent, a column of
//! the wrong type, written by hand or by a bug) fails that one job when it
//! is claimed; the rest of the claim goes to the worker. It used to fail the
//! whole claim, every time, for every worker: one row stopped the queue.

mod common;

use sqlx::{Connection as _, Executor as _, SqliteConnection};
use steward_core::store::{JobState, NewJob, Store};

#[tokio::test]
async fn a_claimed_row_that_cannot_be_read_is_failed_and_the_rest_are_claimed() {
    let t = common::open().await;
    let ids: Vec<_> = t
        .store
        .enqueue((0..6).map(|_| NewJob::new("noop", "{}")).collect())
        .await
        .expect("enqueue")
        .iter()
        .map(|e| e.id)
        .collect();
    let (bad_time, bad_type) = (ids[1], ids[4]);
    let mut raw = SqliteConnection::connect(&format!("sqlite://{}", t.path()))
        .await
        .expect("a raw connection");
    raw.execute(
        format!(
            "UPDATE steward_jobs SET created_at = 9223372036854775807 WHERE id = {bad_time};
             UPDATE steward_jobs SET kind = CAST(x'c328' AS TEXT) WHERE id = {bad_type};"
        )
        .as_str(),
    )
    .await
    .expect("poison two rows");
    raw.close().await.expect("close");

    let claimed = common::claim(&t.store, "default", 10).await;
    let got: Vec<_> = claimed.iter().map(|j| j.lease.id).collect();
    let good: Vec<_> = ids
        .iter()
        .copied()
        .filter(|id| *id != bad_time && *id != bad_type)
        .collect();
    assert_eq!(got, good, "every readable job is claimed, in order");

    let counts = t.store.counts().await.expect("counts");
    assert_eq!((counts.running, counts.dead), (4, 2), "{counts:?}");
    let mut raw = SqliteConnection::connect(&format!("sqlite://{}", t.path()))
        .await
        .expect("a raw connection");
    for (id, column) in [(bad_time, "created_at"), (bad_type, "kind")] {
        let (state, errors): (String, String) =
            sqlx::query_as("SELECT state, errors FROM steward_jobs WHERE id = ?1")
                .bind(id.0)
                .fetch_one(&mut raw)
                .await
                .expect("read the row raw");
        assert_eq!(state, JobState::Dead.as_str(), "job {id}");
        assert!(
            errors.contains("cannot be read") && errors.contains(column),
            "job {id}: the error should say the row cannot be read and name {column}: {errors}"
        );
        assert!(
            t.store.job(id).await.is_err(),
            "reading job {id} should be an error, not a record made up"
        );
    }
}
