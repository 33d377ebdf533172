//! Migrating a schema that is already up to date, as every node does at
//! every start, logs no server notices (`schema "x" already exists,
//! skipping`): with a plain `tracing_subscriber::fmt().init()` they showed
//! at INFO on each start, and a new user took them for a problem.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::TestSchema;
use steward_core::store::Store;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// Single-threaded, so the subscriber set for this thread sees every event
// (the connection's included).
#[tokio::test(flavor = "current_thread")]
async fn migrating_an_up_to_date_schema_logs_no_server_notices() {
    let schema = TestSchema::new().await;
    let store = schema.connect().await;
    store.migrate().await.expect("first migrate");

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    store.migrate().await.expect("second migrate");
    drop(guard);
    store.close().await;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(!logs.contains("already exists"), "{logs}");
}
