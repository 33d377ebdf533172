//! The shared suites (`steward-store-tests`) against the SQLite store: the
//! store contract and the engine suite, every case on its own database file
//! in a temp dir.

use steward_store_sqlite::{SqliteOptions, SqliteStore};
use steward_store_tests::Harness;
use tempfile::TempDir;

/// One temp dir per case holding `jobs.db`; every handle is a separate
/// `SqliteStore::open` of that file (its own writer task and read pool), as
/// another process would open it.
struct SqliteHarness;

impl Harness for SqliteHarness {
    type Store = SqliteStore;
    type Database = TempDir;

    async fn database(&self) -> TempDir {
        tempfile::tempdir().expect("creating a temp dir for the database")
    }

    async fn connect(&self, dir: &TempDir) -> SqliteStore {
        let path = dir.path().join("jobs.db");
        SqliteStore::open(
            path.to_str().expect("a UTF-8 temp path"),
            SqliteOptions::default(),
        )
        .await
        .expect("opening the SQLite store")
    }
}

steward_store_tests::contract!(SqliteHarness);
steward_store_tests::engine!(SqliteHarness);
