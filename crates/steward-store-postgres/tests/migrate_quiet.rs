//! Migrating a schema that is already up to date, as every node does at
//! every start, logs no server notices (`schema "x" already exists,
//! skipping`): with a plain `tracing_subscriber::fmt().init()` they showed
//! at INFO on each start, and a new user took them for a problem.

mod common;

use common::TestSchema;
use steward_core::store::Store;

// Single-threaded, so the subscriber set for this thread sees every event
// (the connection's included).
#[tokio::test(flavor = "current_thread")]
async fn migrating_an_up_to_date_schema_logs_no_server_notices() {
    let schema = TestSchema::new().await;
    let store = schema.connect().await;
    store.migrate().await.expect("first migrate");

    let (logs, guard) = steward_store_tests::logs::capture(tracing::Level::INFO);
    store.migrate().await.expect("second migrate");
    drop(guard);
    store.close().await;

    let logs = logs.text();
    assert!(!logs.contains("already exists"), "{logs}");
}
