//! The shared suites (`steward-store-tests`) against the SQLite store: the
//! store contract and the engine suite, every case on its own database file
//! in a temp dir.

use sqlx::{Connection as _, Executor as _, SqliteConnection};
use steward_core::store::JobId;
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

    /// A trigger aborts the update that would complete `job`.
    async fn refuse_completion(&self, dir: &TempDir, job: JobId) {
        let path = dir.path().join("jobs.db");
        let mut raw = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("a raw connection");
        raw.execute(
            format!(
                "CREATE TRIGGER refuse_one BEFORE UPDATE OF state ON steward_jobs
                 WHEN NEW.id = {job} AND NEW.state = 'completed'
                 BEGIN SELECT RAISE(ABORT, 'injected: this outcome is refused'); END"
            )
            .as_str(),
        )
        .await
        .expect("create the trigger");
        raw.close().await.expect("close");
    }
}

steward_store_tests::contract!(SqliteHarness);
steward_store_tests::engine!(SqliteHarness);
