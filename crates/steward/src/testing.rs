//! Testing your own jobs and services: everything of
//! [`steward_core::testing`] (run a job with a test context, what was
//! enqueued, a host in one call), plus temporary stores: SQLite in a
//! temporary directory, PostgreSQL in a schema of its own. See
//! `docs/testing.md`.
//!
//! ```no_run
//! # #[tokio::main] async fn main() {
//! let store = steward::testing::sqlite().await; // migrated, deleted when dropped
//! # }
//! ```

use std::ops::Deref;
use std::sync::Arc;
#[cfg(feature = "postgres")]
use std::sync::atomic::{AtomicU64, Ordering};

pub use steward_core::testing::*;

/// A store for one test, removed when dropped: a temporary SQLite file, or
/// a PostgreSQL schema of its own. Derefs to the store's `Arc`.
///
/// ```no_run
/// # async fn demo() {
/// use steward::store::Store;
/// let store = steward::testing::sqlite().await;
/// let counts = store.counts().await.expect("counts");
/// # }
/// ```
pub struct TempStore<S> {
    store: Arc<S>,
    _cleanup: Cleanup,
}

impl<S> TempStore<S> {
    /// The store, to hand to a worker, a client or a scheduler.
    ///
    /// ```no_run
    /// # async fn demo() {
    /// let store = steward::testing::sqlite().await;
    /// let client = steward::jobs::Client::new(store.store());
    /// # }
    /// ```
    pub fn store(&self) -> Arc<S> {
        self.store.clone()
    }
}

impl<S> Deref for TempStore<S> {
    type Target = Arc<S>;
    fn deref(&self) -> &Arc<S> {
        &self.store
    }
}

/// What removes a temporary store.
enum Cleanup {
    #[cfg(feature = "sqlite")]
    Dir(#[allow(dead_code)] tempfile::TempDir),
    #[cfg(feature = "postgres")]
    Schema { url: String },
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        #[cfg(feature = "postgres")]
        if let Cleanup::Schema { url } = self {
            drop_schema(url);
        }
    }
}

/// A unique name per call in this process: several tests run at once.
#[cfg(feature = "postgres")]
fn unique() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A migrated SQLite store in a new temporary directory, deleted when the
/// returned value is dropped. Panics if it cannot be made (a test's
/// set-up failing says so at once).
///
/// ```no_run
/// # async fn demo() {
/// let store = steward::testing::sqlite().await;
/// # }
/// ```
#[cfg(feature = "sqlite")]
pub async fn sqlite() -> TempStore<crate::sqlite::SqliteStore> {
    use steward_core::store::Store as _;
    let dir = tempfile::tempdir()
        .unwrap_or_else(|err| panic!("testing::sqlite: no temporary directory: {err}"));
    let path = dir.path().join("steward-test.db");
    let path = path
        .to_str()
        .unwrap_or_else(|| panic!("testing::sqlite: the temporary path is not UTF-8"));
    let store = crate::sqlite::SqliteStore::open(path, crate::sqlite::SqliteOptions::default())
        .await
        .unwrap_or_else(|err| panic!("testing::sqlite: cannot open {path}: {err}"));
    store
        .migrate()
        .await
        .unwrap_or_else(|err| panic!("testing::sqlite: cannot migrate {path}: {err}"));
    TempStore {
        store: Arc::new(store),
        _cleanup: Cleanup::Dir(dir),
    }
}

/// Where [`postgres`] connects: `STEWARD_TEST_POSTGRES`, or
/// `postgres://postgres@127.0.0.1:5432/test`.
///
/// ```
/// assert!(steward::testing::postgres_url().starts_with("postgres://"));
/// ```
#[cfg(feature = "postgres")]
pub fn postgres_url() -> String {
    std::env::var("STEWARD_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A migrated PostgreSQL store in a new schema of its own on the server
/// [`postgres_url`] names, dropped with everything in it when the returned
/// value is dropped. Panics, naming the server, if it cannot be reached: a
/// test that needs PostgreSQL fails rather than skips.
///
/// ```no_run
/// # async fn demo() {
/// let store = steward::testing::postgres().await;
/// # }
/// ```
#[cfg(feature = "postgres")]
pub async fn postgres() -> TempStore<crate::postgres::PostgresStore> {
    use steward_core::store::Store as _;
    let base = postgres_url();
    let schema = format!("steward_test_{}", unique());
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}schema={schema}");
    let store = crate::postgres::PostgresStore::connect(&url, Default::default())
        .await
        .unwrap_or_else(|err| {
            panic!("testing::postgres: cannot connect to {base} (set STEWARD_TEST_POSTGRES): {err}")
        });
    store
        .migrate()
        .await
        .unwrap_or_else(|err| panic!("testing::postgres: cannot migrate schema {schema}: {err}"));
    TempStore {
        store: Arc::new(store),
        _cleanup: Cleanup::Schema { url },
    }
}

/// Drops a test's schema from its own thread and runtime: `Drop` cannot
/// wait on the test's runtime, which may be the one dropping it.
#[cfg(feature = "postgres")]
fn drop_schema(url: &str) {
    let url = url.to_string();
    let done = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let store = crate::postgres::PostgresStore::connect(&url, Default::default())
                .await
                .map_err(|e| e.to_string())?;
            let dropped = store.drop_schema().await.map_err(|e| e.to_string());
            store.close().await;
            dropped
        })
    })
    .join();
    match done {
        Ok(Ok(())) => {}
        Ok(Err(err)) => eprintln!("testing::postgres: could not drop the test schema: {err}"),
        Err(_) => eprintln!("testing::postgres: dropping the test schema panicked"),
    }
}
