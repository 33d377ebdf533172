//! The test database: a fresh schema per case on the PostgreSQL at
//! `127.0.0.1:5432`, dropped when the case ends.

#![allow(dead_code)] // each test crate uses its own part of this module

pub mod wake;

use std::time::Duration;

use sqlx::{Connection as _, Executor as _, PgConnection};
use steward_store_postgres::{PostgresOptions, PostgresStore};

/// The server the tests use; `STEWARD_TEST_DATABASE_URL` overrides it.
pub fn url() -> String {
    std::env::var("STEWARD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A schema of its own for one test, created empty and dropped (with
/// everything in it) when this value is dropped.
pub struct TestSchema {
    pub url: String,
    pub name: String,
}

impl TestSchema {
    /// Creates a schema with a random name. Panics — failing the test, never
    /// skipping it — if PostgreSQL cannot be reached.
    pub async fn new() -> TestSchema {
        let url = url();
        let name = format!("steward_test_{:016x}", rand::random::<u64>());
        let mut conn = PgConnection::connect(&url).await.unwrap_or_else(|e| {
            panic!(
                "cannot reach PostgreSQL at {url} ({e}). The PostgreSQL store's tests need a \
                 server: start one (.ci/run does), or point STEWARD_TEST_DATABASE_URL at one."
            )
        });
        conn.execute(format!("CREATE SCHEMA \"{name}\"").as_str())
            .await
            .unwrap_or_else(|e| panic!("creating test schema {name} at {url}: {e}"));
        let _ = conn.close().await;
        TestSchema { url, name }
    }

    /// Store options for this schema (a small pool: tests run in parallel
    /// against one server with `max_connections = 100`).
    pub fn options(&self) -> PostgresOptions {
        PostgresOptions {
            schema: self.name.clone(),
            pool_size: 4,
            acquire_timeout: Duration::from_secs(30),
            ..PostgresOptions::default()
        }
    }

    /// A new, independent store on this schema (not migrated).
    pub async fn connect(&self) -> PostgresStore {
        PostgresStore::connect(&self.url, self.options())
            .await
            .unwrap_or_else(|e| panic!("connecting a store to schema {}: {e}", self.name))
    }

    /// A plain connection to the test database.
    pub async fn raw(&self) -> PgConnection {
        PgConnection::connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.url))
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        // Drop is synchronous and may run inside the test's runtime, so the
        // schema is dropped from a thread of its own with a small runtime,
        // and waited for: the next test starts with the server tidy.
        let url = self.url.clone();
        let name = self.name.clone();
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test schema");
            runtime.block_on(async {
                let mut conn = PgConnection::connect(&url).await?;
                // A handle still holding a lock must not hang the test run.
                conn.execute("SET lock_timeout = '10s'").await?;
                conn.execute(format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE").as_str())
                    .await?;
                conn.close().await
            })
        });
        match dropper.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("dropping test schema {}: {e}", self.name),
            Err(_) => eprintln!("dropping test schema {}: the thread panicked", self.name),
        }
    }
}

impl TestSchema {
    /// Runs `sql` through `psql` (on PATH), as a service in another
    /// language would: its own process, its own connection.
    pub async fn psql(&self, sql: &str) -> std::process::Output {
        let (url, sql) = (self.url.clone(), sql.to_string());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("psql")
                .args([
                    url.as_str(),
                    "-X",
                    "-q",
                    "-A",
                    "-t",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-c",
                ])
                .arg(sql)
                .output()
                .expect("running psql: it must be on PATH")
        })
        .await
        .expect("the psql task")
    }
}
