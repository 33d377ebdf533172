//! What a store's test crate implements so the contract suite can run on it.

use std::future::Future;

use steward_core::store::{JobId, Store};

/// How the contract suite gets stores to test: a fresh, empty database per
/// case, and as many handles on it as a case needs.
///
/// A case asks for one [`Harness::database`], connects to it once (and a
/// second time for the cases that race two handles, as two processes would),
/// and drops everything when it ends. The suite calls [`Store::migrate`] on
/// every handle it connects, so `connect` need not (and `migrate` must be
/// harmless on an up-to-date database).
///
/// ```
/// use steward_store_tests::Harness;
/// use steward_store_tests::memory::MemoryStore;
///
/// /// Every "database" is a new in-memory store; a second handle shares it.
/// struct MemoryHarness;
///
/// impl Harness for MemoryHarness {
///     type Store = MemoryStore;
///     type Database = MemoryStore;
///
///     async fn database(&self) -> MemoryStore {
///         MemoryStore::new()
///     }
///
///     async fn connect(&self, database: &MemoryStore) -> MemoryStore {
///         database.clone()
///     }
/// }
/// ```
///
/// A file-backed store keeps its temporary directory in `Database`, so the
/// file outlives every handle of the case and is deleted after it:
///
/// ```ignore
/// // crates/steward-store-sqlite/tests/contract.rs
/// impl Harness for SqliteHarness {
///     type Store = SqliteStore;
///     type Database = tempfile::TempDir;
///     async fn database(&self) -> tempfile::TempDir {
///         tempfile::tempdir().expect("creating a temp dir")
///     }
///     async fn connect(&self, dir: &tempfile::TempDir) -> SqliteStore {
///         let path = dir.path().join("jobs.db");
///         SqliteStore::open(path.to_str().expect("a UTF-8 path"), SqliteOptions::default())
///             .await
///             .expect("opening the store")
///     }
/// }
/// ```
pub trait Harness: Send + Sync + 'static {
    /// The store under test.
    type Store: Store;

    /// One fresh database and whatever must live as long as its handles (a
    /// temporary directory, a schema to drop). Dropped after every handle.
    type Database: Send + Sync + 'static;

    /// A new, empty database that no other case uses. Panics if it cannot
    /// be made: the suite is test code, and the panic fails the case.
    fn database(&self) -> impl Future<Output = Self::Database> + Send;

    /// A new, independent handle on `database` (its own connection or pool,
    /// as another process would open it). Each call must give a handle that
    /// sees the same jobs as the others. Panics if it cannot connect.
    fn connect(&self, database: &Self::Database) -> impl Future<Output = Self::Store> + Send;

    /// Makes `database` refuse, for good, to record job `job` as completed,
    /// as a data error from the server would (a trigger raising an error,
    /// say): from then on every write that completes that job fails with an
    /// error that is neither `Busy`, `Unavailable` nor `ReadOnly` (retrying
    /// cannot help), and nothing else changes.
    ///
    /// Only the engine case
    /// `an_outcome_the_database_refuses_for_good_holds_back_no_other` uses
    /// it. A harness that does not implement it fails that case (there is
    /// no way to leave a case out).
    fn refuse_completion(
        &self,
        database: &Self::Database,
        job: JobId,
    ) -> impl Future<Output = ()> + Send {
        let _ = (database, job);
        async {
            panic!(
                "this harness cannot make its database refuse a completion: \
                 implement Harness::refuse_completion"
            )
        }
    }
}
