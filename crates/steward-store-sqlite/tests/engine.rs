//! The engine suite (`steward-store-tests`) on the SQLite store: the job
//! engine end to end on a real database file.

use steward_store_sqlite::{SqliteOptions, SqliteStore};
use steward_store_tests::Harness;
use tempfile::TempDir;

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

steward_store_tests::engine!(SqliteHarness);
