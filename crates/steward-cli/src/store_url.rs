//! `--store URL`: which store a command operates.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use steward::sqlite::{SqliteOptions, SqliteStore, Synchronous};

/// The default store: the demo's SQLite file in the current directory.
pub const DEFAULT_STORE: &str = "sqlite://./steward-demo.db";

/// Opens the store named by `url` and applies migrations if `migrate`.
pub async fn open(url: &str, migrate: bool, sync: Synchronous) -> anyhow::Result<Arc<SqliteStore>> {
    let Some(path) = url.strip_prefix("sqlite://") else {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            bail!(UsageError(format!(
                "`{url}`: the PostgreSQL store is not built yet; use sqlite://PATH"
            )));
        }
        bail!(UsageError(format!(
            "`{url}` is not a store URL; use sqlite://PATH"
        )));
    };
    if path.is_empty() {
        bail!(UsageError("sqlite:// needs a file path".to_string()));
    }
    let options = SqliteOptions {
        synchronous: sync,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(url, options)
        .await
        .with_context(|| format!("opening store {url}"))?;
    if migrate {
        use steward::store::Store as _;
        store
            .migrate()
            .await
            .with_context(|| format!("migrating store {url}"))?;
    }
    Ok(Arc::new(store))
}

/// A command-line mistake found after parsing (exit code 64).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Something asked for does not exist (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotFound(pub String);
