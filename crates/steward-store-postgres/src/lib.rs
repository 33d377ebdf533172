//! Steward's PostgreSQL store: [`PostgresStore`] implements
//! [`steward_core::store::Store`] in one schema of a PostgreSQL database,
//! so many worker processes on many machines can share one queue.
//!
//! ```no_run
//! use std::time::Duration;
//! use steward_core::store::{ClaimRequest, Finish, FinishOutcome, NewJob, QueueClaim, Store};
//! use steward_store_postgres::{PostgresOptions, PostgresStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PostgresStore::connect(
//!     "postgres://postgres@127.0.0.1:5432/test",
//!     PostgresOptions { schema: "steward".into(), ..PostgresOptions::default() },
//! )
//! .await?;
//! store.migrate().await?;
//! store.enqueue(vec![NewJob::new("email", r#"{"to":"a@b.c"}"#)]).await?;
//!
//! let jobs = store
//!     .claim(ClaimRequest {
//!         worker: "doc-test".into(),
//!         queues: vec![QueueClaim { queue: "default".into(), limit: 10 }],
//!         lease: Duration::from_secs(30),
//!         max_suspects: u32::MAX,
//!         kinds: None,
//!     })
//!     .await?;
//! let done = store
//!     .finish(jobs.iter().map(|j| Finish { lease: j.lease, outcome: FinishOutcome::Completed }).collect())
//!     .await?;
//! assert!(done.iter().all(|applied| *applied));
//! store.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! (The examples are `no_run`: they need a server. The crate's tests run
//! the same calls against the PostgreSQL on `127.0.0.1:5432`.)
//!
//! # Driver: sqlx
//!
//! The store uses sqlx (postgres feature) rather than tokio-postgres for
//! two reasons: one driver across both stores (the SQLite store is sqlx
//! too, so the workspace builds one database stack), and the transactional
//! outbox — [`enqueue_in`] and [`complete_in`] take the caller's
//! `sqlx::Transaction<Postgres>` (as `&mut PgConnection`), which is what
//! sqlx users already hold. Whether tokio-postgres (pipelining) would be
//! faster is to be measured with the benchmark, not assumed.
//!
//! # How it writes
//!
//! Everything comes from the database's clock (`now()`): leases, the
//! `run_at` of jobs enqueued without one, retention. Times are `timestamptz`.
//! - **Claim**: one statement per queue — a CTE selects the due ids
//!   `ORDER BY priority, run_at, id LIMIT n FOR UPDATE SKIP LOCKED` off a
//!   partial index, then `UPDATE … RETURNING` marks them running with a fresh
//!   random lease token and `lease_expires_at = now() + lease`.
//! - **Heartbeat, finish, release**: one statement per outcome kind for the
//!   whole batch, `UPDATE … FROM unnest($1::bigint[], $2::bigint[], …)`,
//!   fenced on id + token + state `running`.
//! - **Unique keys**: a partial unique index on the held key; an enqueue
//!   inserts with `ON CONFLICT DO NOTHING` and reports the holder's id
//!   otherwise, so concurrent enqueues of one key insert exactly once.
//! - Payloads, checkpoints and the error list are `jsonb`.
//!
//! # Schema
//!
//! Every object lives in the schema named by [`PostgresOptions::schema`]
//! (default `steward`): the `jobs` table, its indexes, the `leaders`,
//! `schedules` and `schedule_ticks` tables, and `schema_migrations`, which
//! records the version. [`Store::migrate`] applies
//! the embedded migrations in one transaction under an advisory lock, so
//! several nodes starting at once migrate once. A schema migrated by a
//! newer binary is refused with
//! [`StoreError::SchemaTooNew`](steward_core::store::StoreError::SchemaTooNew);
//! operations on a schema never migrated fail with
//! [`StoreError::NotMigrated`](steward_core::store::StoreError::NotMigrated).
//!
//! # Waking workers
//!
//! [`Store::wait_for_work`] returns early after a write that made jobs due
//! now (an enqueue, retry, release, due snooze or retry, or rescue) through
//! **any** store on the same schema, in any process:
//! - each such write sends one `NOTIFY` (`pg_notify`) on the channel
//!   `<schema>_jobs`, with the distinct queue names as its payload — one per
//!   write operation, not per row, and inside the write's transaction, so it
//!   is delivered at commit (for [`enqueue_in`], at the caller's commit) and
//!   never for a rolled-back write;
//! - each [`PostgresStore`] (with its clones) has one listener task holding
//!   one `LISTEN`ing connection (application name `steward-listener`),
//!   started by the first `wait_for_work` and stopped by
//!   [`close`](PostgresStore::close) or when the last clone is dropped; every
//!   notification wakes every waiter;
//! - a write that makes jobs due later (a delayed enqueue, a retry's
//!   back-off, a snooze) sends one notification whose payload is `+` and the
//!   milliseconds until the earliest comes due; every store remembers the
//!   due times it wrote or heard of, and its waits end then at the latest,
//!   so delayed jobs and retries start on time rather than at the poll;
//! - when the listener's connection drops, it logs it, reconnects with
//!   back-off and wakes every waiter once (notifications sent meanwhile are
//!   lost, so workers re-check the table);
//! - the store's own writes also wake its waiters in memory, and polling
//!   (`max_wait`) stays the fallback, so a lost notification delays a job by
//!   at most `max_wait`.
//!
//! See `docs/postgres.md` for the design.
//!
//! # Transactional enqueue and completion
//!
//! [`enqueue_in`] and [`complete_in`] write on the caller's transaction, so
//! jobs commit (or vanish) with the caller's business rows; see their docs.
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod clock;
mod error;
mod notify;
mod ops;
mod options;
mod outbox;
mod schema;
mod server;
mod sql;
mod store;
mod url;
mod vacuum;

pub use options::PostgresOptions;
pub use outbox::{complete_in, enqueue_in};
pub use schema::SCHEMA_VERSION;
pub use store::PostgresStore;
pub use url::{StoreUrl, parse_url};

#[cfg(doc)]
use steward_core::store::Store;
