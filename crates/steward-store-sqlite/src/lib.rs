//! Steward's SQLite store: [`SqliteStore`] implements
//! [`steward_core::store::Store`] on one SQLite file.
//!
//! ```
//! use std::time::Duration;
//! use steward_core::store::{ClaimRequest, Finish, FinishOutcome, NewJob, QueueClaim, Store};
//! use steward_store_sqlite::{SqliteOptions, SqliteStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("jobs.db");
//! let store = SqliteStore::open(&path.display().to_string(), SqliteOptions::default()).await?;
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
//! assert_eq!(done, vec![true]);
//! store.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! # How it writes
//!
//! SQLite allows one writer at a time, and every commit costs a trip
//! through the WAL. So a [`SqliteStore`] has a **single writer task** that
//! owns the only write connection of the process, and every write — enqueue,
//! claim, heartbeat, finish, release, checkpoint, cancel, retry, rescue,
//! prune — is a message to it. The writer takes all the messages waiting,
//! runs them in **one `BEGIN IMMEDIATE` transaction** (group commit),
//! commits once and answers each caller. While it commits, new messages
//! queue up for the next batch: batches grow with load, and a lone
//! operation at low load is committed at once (as a single autocommit
//! statement where it can be: same atomicity, fewer round trips). Reads ([`Store::job`],
//! [`Store::counts`]) use a small separate pool, which is also offered to
//! callers ([`SqliteStore::pool`]) for their own transactions.
//!
//! Several processes may open the same file (WAL mode lets their readers
//! and their one-at-a-time writers coexist); a writer that finds the file
//! locked for longer than `busy_timeout` fails its batch with
//! [`StoreError::Busy`](steward_core::store::StoreError::Busy), which is
//! transient.
//!
//! # Durability: `synchronous = NORMAL` by default
//!
//! In WAL mode, `synchronous=NORMAL` writes each commit to the WAL without
//! `fsync`, syncing at checkpoints. A commit is then durable against the
//! **process** crashing or being killed — the normal failure of a job
//! worker — because the written WAL lives in the operating system's page
//! cache. It is not durable against **power loss** or a kernel crash: the
//! last commits before it may be lost (the database stays consistent; it
//! just rolls back to an earlier commit). [`Synchronous::Full`] syncs at
//! every group commit and survives power loss too, for one `fsync` per
//! batch (the group commit keeps that affordable: one sync covers every
//! operation of the batch). Choose `Full` where a lost enqueue or a job run
//! twice after a power cut is not acceptable.
//!
//! # Waking workers
//!
//! [`Store::wait_for_work`] returns early after a commit in this process
//! that made jobs available (enqueue, retry, release, snooze, rescue,
//! a retry whose time has come), signalled in memory, and after **any
//! commit by another process** (or connection) to the same file: SQLite
//! has no notifications between processes, so the first wait starts a
//! file-system watch (inotify on Linux, through the `notify` crate) on the
//! database's `-wal` file, which every commit in WAL mode writes. The watch
//! cannot tell whose commit it saw, so this process's own commits wake idle
//! workers too (spurious wake-ups, at most one empty claim each); an empty
//! claim writes nothing and wakes no one. If the watch cannot be set up (no
//! inotify watch left), workers poll, within `max_wait`. Every worker
//! waiting on the store wakes, not one: a wait names no queue, so a single
//! woken worker might not serve the new job's queue. After committing your
//! own transaction that used [`enqueue_in`], call
//! [`SqliteStore::notify_enqueued`] (the watch would wake workers anyway,
//! but a call in memory is sooner and does not depend on the watch).
//!
//! Delayed work this store wrote (an enqueue with a delay or a future
//! `run_at`, a retry's back-off, a snooze) is remembered with its due time,
//! and waits end then at the latest, so it starts on time rather than at
//! the next poll. Another process's delayed jobs carry no due time through
//! the watch: they are found by the poll.
//!
//! # Transactional enqueue and completion
//!
//! [`enqueue_in`] and [`complete_in`] write on the caller's connection, so
//! jobs commit (or vanish) with the caller's business rows; see their docs.
//!
//! # Schema
//!
//! Migrations are embedded in the binary and applied by [`Store::migrate`],
//! each in a transaction; the version is recorded in `steward_schema`. The
//! jobs live in `steward_jobs` (prefixed, since callers keep their own
//! tables in the same file). A database migrated by a newer binary is
//! refused with [`StoreError::SchemaTooNew`](steward_core::store::StoreError::SchemaTooNew).
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod checkpoint;
mod error;
mod ops;
mod options;
mod outbox;
mod schema;
mod sql;
mod store;
mod watch;
mod writer;

pub use options::{SqliteOptions, Synchronous};
pub use outbox::{complete_in, enqueue_in};
pub use schema::SCHEMA_VERSION;
pub use store::SqliteStore;

#[cfg(doc)]
use steward_core::store::Store;
