//! `--store URL`: which store a command operates.
//!
//! `sqlite://PATH` or `postgres://…` / `postgresql://…` (with an optional
//! `?schema=NAME`, default `steward`). The commands are generic over
//! [`Store`]; [`AnyStore`] is opened once here and each command dispatches
//! on it once, to a generic function, so no command knows which store it
//! runs on.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use steward::postgres::{PostgresOptions, PostgresStore};
use steward::sqlite::{SqliteOptions, SqliteStore, Synchronous};
use steward::store::Store;

/// The default store: the demo's SQLite file in the current directory.
pub const DEFAULT_STORE: &str = "sqlite://./steward-demo.db";

/// The schema a `postgres://` URL without `?schema=` uses.
pub const DEFAULT_PG_SCHEMA: &str = "steward";

/// An open store of either kind.
pub enum AnyStore {
    /// `sqlite://PATH`.
    Sqlite(Arc<SqliteStore>),
    /// `postgres://…` or `postgresql://…`.
    Postgres(Arc<PostgresStore>),
}

impl AnyStore {
    /// Closes the store's connections.
    pub async fn close(&self) {
        match self {
            AnyStore::Sqlite(s) => s.close().await,
            AnyStore::Postgres(s) => s.close().await,
        }
    }
}

/// A `postgres://` URL split into what the driver connects to and the
/// schema the store lives in.
#[derive(Debug, PartialEq, Eq)]
pub struct PgUrl {
    /// The URL without the `schema` query parameter.
    pub connect: String,
    /// The `schema` parameter, if given.
    pub schema: Option<String>,
}

/// True for `postgres://…` and `postgresql://…`.
pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Takes `schema=NAME` out of the URL's query (the driver would refuse an
/// unknown parameter); other parameters stay.
pub fn split_pg_url(url: &str) -> Result<PgUrl, UsageError> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, query),
        None => (url, ""),
    };
    let mut schema = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.strip_prefix("schema=") {
            Some("") => {
                return Err(UsageError(format!("`{url}`: `schema=` needs a name")));
            }
            Some(name) => schema = Some(name.to_string()),
            None => kept.push(pair),
        }
    }
    let connect = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(PgUrl { connect, schema })
}

/// Opens the store named by `url` and applies migrations if `migrate`.
/// `sync` applies to SQLite only.
pub async fn open(url: &str, migrate: bool, sync: Synchronous) -> anyhow::Result<AnyStore> {
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
        return Ok(AnyStore::Postgres(Arc::new(store)));
    }
    Ok(AnyStore::Sqlite(open_sqlite(url, migrate, sync).await?))
}

/// Connects to a `postgres://` URL; its `?schema=` overrides
/// `options.schema` when given.
pub async fn open_postgres(
    url: &str,
    mut options: PostgresOptions,
) -> anyhow::Result<PostgresStore> {
    let parts = split_pg_url(url)?;
    if let Some(schema) = parts.schema {
        options.schema = schema;
    }
    PostgresStore::connect(&parts.connect, options)
        .await
        .with_context(|| format!("opening store {url}"))
}

/// Opens the store named by `url` for a command that must not create a
/// database: a `sqlite://PATH` with no file at PATH is [`NoDatabase`] and
/// leaves no file behind. Does not migrate.
pub async fn open_existing(url: &str) -> anyhow::Result<AnyStore> {
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
        Ok(store) => Ok(AnyStore::Sqlite(Arc::new(store))),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_parameter_is_taken_out_of_a_postgres_url() {
        let p = split_pg_url("postgres://u@h:5432/db?schema=jobs_eu").expect("a valid URL");
        assert_eq!(p.connect, "postgres://u@h:5432/db");
        assert_eq!(p.schema.as_deref(), Some("jobs_eu"));
        let p = split_pg_url("postgresql://u@h/db?sslmode=disable&schema=x&connect_timeout=2")
            .expect("a valid URL");
        assert_eq!(
            p.connect,
            "postgresql://u@h/db?sslmode=disable&connect_timeout=2"
        );
        assert_eq!(p.schema.as_deref(), Some("x"));
        let p = split_pg_url("postgres://u@h/db").expect("a valid URL");
        assert_eq!(p.connect, "postgres://u@h/db");
        assert_eq!(p.schema, None);
        assert_eq!(PostgresOptions::default().schema, DEFAULT_PG_SCHEMA);
        assert!(split_pg_url("postgres://u@h/db?schema=").is_err());
    }
}
