//! Opening a database: pragmas, migrations, schema version checks.

mod common;

use steward_core::store::{NewJob, Store, StoreError};
use steward_store_sqlite::{SCHEMA_VERSION, SqliteOptions, SqliteStore, Synchronous};

async fn pragma(store: &SqliteStore, name: &str) -> String {
    use sqlx::Row as _;
    let row = sqlx::query(&format!("PRAGMA {name}"))
        .fetch_one(store.pool())
        .await
        .expect("pragma");
    row.try_get::<String, _>(0)
        .or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string()))
        .expect("a text or integer pragma")
}

#[tokio::test]
async fn the_database_is_in_wal_mode() {
    let t = common::open().await;
    assert_eq!(pragma(&t.store, "journal_mode").await, "wal");
    t.store.enqueue(vec![NewJob::new("a", "{}")]).await.unwrap();
    assert!(
        t.dir.path().join("jobs.db-wal").exists(),
        "writes go to the WAL"
    );
}

#[tokio::test]
async fn synchronous_is_normal_by_default_and_full_on_request() {
    let t = common::open().await;
    assert_eq!(pragma(&t.store, "synchronous").await, "1", "NORMAL");
    let full = common::open_with(SqliteOptions {
        synchronous: Synchronous::Full,
        ..SqliteOptions::default()
    })
    .await;
    assert_eq!(pragma(&full.store, "synchronous").await, "2", "FULL");
    full.store
        .enqueue(vec![NewJob::new("a", "{}")])
        .await
        .unwrap();
}

#[tokio::test]
async fn busy_timeout_is_applied() {
    let t = common::open_with(SqliteOptions {
        busy_timeout: std::time::Duration::from_millis(1234),
        ..SqliteOptions::default()
    })
    .await;
    assert_eq!(pragma(&t.store, "busy_timeout").await, "1234");
}

#[tokio::test]
async fn open_creates_the_file_from_a_url_or_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub.db");
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::open(&url, SqliteOptions::default())
        .await
        .unwrap();
    assert!(path.exists());
    assert_eq!(store.file(), path.display().to_string());
    store.migrate().await.unwrap();
    store.close().await;
    // Reopen by path: migrated already, migrating again is a no-op.
    let store = SqliteStore::open(path.to_str().unwrap(), SqliteOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.enqueue(vec![NewJob::new("a", "{}")]).await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn in_memory_databases_are_refused() {
    for url in ["sqlite::memory:", ":memory:"] {
        let err = SqliteStore::open(url, SqliteOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid { .. }), "{url}: {err}");
    }
}

#[tokio::test]
async fn an_unmigrated_database_reports_not_migrated_until_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let store = SqliteStore::open(path.to_str().unwrap(), SqliteOptions::default())
        .await
        .unwrap();
    let err = store
        .enqueue(vec![NewJob::new("a", "{}")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotMigrated { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(path.to_str().unwrap()), "{text}");
    assert!(text.contains("migrate()"), "{text}");
    assert!(matches!(
        store.counts().await,
        Err(StoreError::NotMigrated { .. })
    ));
    assert!(matches!(
        store.job(steward_core::store::JobId(1)).await,
        Err(StoreError::NotMigrated { .. })
    ));
    store.migrate().await.unwrap();
    store.enqueue(vec![NewJob::new("a", "{}")]).await.unwrap();
    assert_eq!(store.counts().await.unwrap().available, 1);
    store.close().await;
}

#[tokio::test]
async fn a_schema_newer_than_the_binary_is_refused_at_open() {
    let t = common::open().await;
    sqlx::query("INSERT INTO steward_schema (version, name, applied_at) VALUES (?1, 'future', 0)")
        .bind(SCHEMA_VERSION + 1)
        .execute(t.store.pool())
        .await
        .unwrap();
    t.store.close().await;
    let err = SqliteStore::open(&t.path(), SqliteOptions::default())
        .await
        .unwrap_err();
    match err {
        StoreError::SchemaTooNew { found, supported } => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other}"),
    }
}

#[tokio::test]
async fn migrate_refuses_a_schema_newer_than_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.db");
    let store = SqliteStore::open(path.to_str().unwrap(), SqliteOptions::default())
        .await
        .unwrap();
    // A newer binary migrated the file after this store was opened.
    sqlx::query(
        "CREATE TABLE steward_schema (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
             applied_at INTEGER NOT NULL) STRICT",
    )
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query("INSERT INTO steward_schema VALUES (?1, 'future', 0)")
        .bind(SCHEMA_VERSION + 5)
        .execute(store.pool())
        .await
        .unwrap();
    let err = store.migrate().await.unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, .. } if found == SCHEMA_VERSION + 5),
        "{err}"
    );
    // Operations are refused the same way, not run against an unknown schema.
    let err = store
        .enqueue(vec![NewJob::new("a", "{}")])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err}");
    store.close().await;
}

#[tokio::test]
async fn the_schema_version_is_recorded() {
    let t = common::open().await;
    let version: i64 = sqlx::query_scalar("SELECT max(version) FROM steward_schema")
        .fetch_one(t.store.pool())
        .await
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[tokio::test]
async fn a_file_that_cannot_be_opened_is_unavailable_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("jobs.db");
    let err = SqliteStore::open(path.to_str().unwrap(), SqliteOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    assert!(
        err.to_string().contains("no-such-dir"),
        "names the file: {err}"
    );
}

/// `close` ends every task the store started before it returns: the
/// writer and the background checkpointer (issue 11, loose end). The
/// checkpointer used to be left to notice the shutdown on its own, after
/// `close` had returned and closed the pool under it.
#[tokio::test(flavor = "current_thread")]
async fn close_ends_every_task_the_store_started() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jobs.db");
    let store = steward_store_sqlite::SqliteStore::open(
        path.to_str().expect("utf-8"),
        steward_store_sqlite::SqliteOptions::default(),
    )
    .await
    .expect("open");
    steward_core::store::Store::migrate(&store)
        .await
        .expect("migrate");
    assert!(metrics.num_alive_tasks() > before, "the store runs tasks");
    store.close().await;
    // The connection pool's maintenance task (sqlx's) notices the pool is
    // closed only when it next runs; the store's own tasks are gone.
    assert!(
        metrics.num_alive_tasks() <= before + 1,
        "every task the store started has ended when close returns: {} alive, {before} before",
        metrics.num_alive_tasks()
    );
}

#[tokio::test]
async fn without_create_if_missing_a_missing_file_is_an_error_and_stays_missing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("typo.db").display());
    let options = SqliteOptions {
        create_if_missing: false,
        ..SqliteOptions::default()
    };
    let err = SqliteStore::open(&url, options.clone())
        .await
        .expect_err("no file to open");
    assert!(
        matches!(err, StoreError::Unavailable { .. }),
        "unexpected error: {err:?}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "files were created: {left:?}");

    // An existing database opens as before.
    let created = SqliteStore::open(&url, SqliteOptions::default())
        .await
        .unwrap();
    created.migrate().await.unwrap();
    created.close().await;
    let store = SqliteStore::open(&url, options).await.unwrap();
    assert_eq!(store.counts().await.unwrap().available, 0);
    store.close().await;
}
