//! The WAL is copied into the database file in the background, not only
//! when a commit pushes it past `wal_autocheckpoint` on the writer.

mod common;

use std::time::{Duration, Instant};

use steward_core::store::{NewJob, Store};

#[tokio::test]
async fn writes_reach_the_database_file_without_the_writer_checkpointing() {
    let t = common::open().await;
    let db = t.dir.path().join("jobs.db");
    let size = || std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    let before = size();
    // A few hundred pages of WAL: far below the writer's autocheckpoint
    // (10,000 pages), so only a background checkpoint copies them.
    let jobs: Vec<NewJob> = (0..3000)
        .map(|i| NewJob::new("k", format!("{{\"n\":{i}}}")))
        .collect();
    t.store.enqueue(jobs).await.unwrap();
    assert_eq!(size(), before, "the enqueue itself went to the WAL only");
    let deadline = Instant::now() + Duration::from_secs(20);
    while size() <= before {
        assert!(
            Instant::now() < deadline,
            "the database file never grew: nothing checkpointed the WAL"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t.store.close().await;
}
