//! `--store URL`: which store a command operates.
//!
//! `sqlite://PATH` or `postgres://…` / `postgresql://…` (with an optional
//! `?schema=NAME`, default `steward`). The commands are generic over
//! [`Store`] and run on the library's [`AnyStore`], opened here with the
//! CLI's own settings (SQLite's `synchronous`, migrate or not, never create
//! a database for a read), so no command knows which store it runs on. The
//! URL rules themselves live in the stores (`PostgresStore::connect`,
//! `SqliteStore::open`), as for `steward::connect`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use steward::AnyStore;
use steward::postgres::{PostgresOptions, PostgresStore};
use steward::sqlite::{SqliteOptions, SqliteStore, Synchronous};
use steward::store::Store;

/// The default store: the demo's SQLite file in the current directory.
pub const DEFAULT_STORE: &str = "sqlite://./steward-demo.db";

/// The schema a `postgres://` URL without `?schema=` uses.
pub const DEFAULT_PG_SCHEMA: &str = "steward";

/// True for `postgres://…` and `postgresql://…`.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens the store named by `url` and applies migrations if `migrate`.
/// `sync` applies to SQLite only.
pub async fn open(url: &str, migrate: bool, sync: Synchronous) -> anyhow::Result<Arc<AnyStore>> {
    if is_postgres(url) {
        let options = PostgresOptions {
            schema: DEFAULT_PG_SCHEMA.to_string(),
            ..PostgresOptions::default()
        };
        let store = open_postgres(url, options).await?;
        if migrate {
            store
                .migrate()
                .await
                .with_context(|| format!("migrating store {url}"))?;
        }
        return Ok(Arc::new(AnyStore::Postgres(store)));
    }
    let store = Arc::unwrap_or_clone(open_sqlite(url, migrate, sync).await?);
    Ok(Arc::new(AnyStore::Sqlite(store)))
}

/// Connects to a `postgres://` URL; its `?schema=` overrides
/// `options.schema` when given.
pub async fn open_postgres(url: &str, options: PostgresOptions) -> anyhow::Result<PostgresStore> {
    // The URL's `?schema=` wins over `options.schema` (PostgresStore::connect).
    PostgresStore::connect(url, options)
        .await
        .with_context(|| format!("opening store {url}"))
}

/// Opens the store named by `url` for a command that must not create a
/// database: a `sqlite://PATH` with no file at PATH is [`NoDatabase`] and
/// leaves no file behind. Does not migrate.
pub async fn open_existing(url: &str) -> anyhow::Result<Arc<AnyStore>> {
    if is_postgres(url) {
        return open(url, false, Synchronous::Normal).await;
    }
    let path = sqlite_path(url)?;
    let no_database = || NoDatabase {
        path: path.to_string(),
        url: url.to_string(),
    };
    // Checked first for a clear message; `create_if_missing: false` is what
    // guarantees nothing is created if the file goes away in between.
    if !Path::new(path).exists() {
        bail!(no_database());
    }
    let options = SqliteOptions {
        create_if_missing: false,
        ..SqliteOptions::default()
    };
    match SqliteStore::open(url, options).await {
        Ok(store) => Ok(Arc::new(AnyStore::Sqlite(store))),
        Err(_) if !Path::new(path).exists() => bail!(no_database()),
        Err(err) => Err(anyhow::Error::new(err).context(format!("opening store {url}"))),
    }
}

/// The file path of a `sqlite://PATH[?OPTIONS]` URL.
fn sqlite_path(url: &str) -> Result<&str, UsageError> {
    let Some(rest) = url.strip_prefix("sqlite://") else {
        return Err(UsageError(format!(
            "`{url}` is not a store URL; use sqlite://PATH or postgres://USER@HOST:PORT/DB[?schema=NAME]"
        )));
    };
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    if path.is_empty() {
        return Err(UsageError("sqlite:// needs a file path".to_string()));
    }
    Ok(path)
}

/// Opens a `sqlite://PATH` store (the demo runs on SQLite only).
pub async fn open_sqlite(
    url: &str,
    migrate: bool,
    sync: Synchronous,
) -> anyhow::Result<Arc<SqliteStore>> {
    sqlite_path(url)?;
    let options = SqliteOptions {
        synchronous: sync,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(url, options)
        .await
        .with_context(|| format!("opening store {url}"))?;
    if migrate {
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

/// A command that only looks at a store was pointed at a path with no
/// database (exit code 3, like any other thing asked for that does not exist).
#[derive(Debug, thiserror::Error)]
#[error("no database at {path}: create one with `steward migrate --store {url}`")]
pub struct NoDatabase {
    /// The file that is not there.
    pub path: String,
    /// The `--store` URL naming it.
    pub url: String,
}

/// Something asked for does not exist (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotFound(pub String);
