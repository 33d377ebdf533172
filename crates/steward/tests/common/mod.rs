//! What the facade's tests share: a job kind that does nothing, a real
//! SQLite store in a temporary directory, and a host builder that leaves
//! signals alone.

#![allow(dead_code)] // each test file uses its own part

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use steward::jobs::{Job, JobContext};
use steward::sqlite::{SqliteOptions, SqliteStore};
use steward::{BoxError, Host, HostBuilder};

#[derive(Serialize, Deserialize)]
pub struct Ping;

impl Job for Ping {
    const KIND: &'static str = "ping";
    async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
        Ok(())
    }
}

/// A store in `dir/jobs.db`.
pub async fn store_in(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    let path = dir.path().join("jobs.db");
    let store = SqliteStore::open(
        path.to_str().expect("a UTF-8 path"),
        SqliteOptions::default(),
    )
    .await
    .expect("open the store");
    Arc::new(store)
}

/// A host builder for tests: signals are the test runner's.
pub fn builder() -> HostBuilder {
    let mut builder = Host::builder();
    builder.handle_signals(false);
    builder
}
