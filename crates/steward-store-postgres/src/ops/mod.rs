//! The SQL of every store operation, as functions on a connection that is
//! already where it should be: a pooled connection (one statement,
//! autocommit), the store's own transaction, or a caller's transaction for
//! [`enqueue_in`](crate::enqueue_in) and [`complete_in`](crate::complete_in).
//! They never begin or commit.
//!
//! Where a job's state changes is decided by the engine; how each change is
//! written — with its fence, its unique-key release, its counters — lives
//! here, one file per group of operations:
//! - `enqueue.rs`: validation and inserts, unique keys;
//! - `copy.rs`: large batches of plain jobs by `COPY`;
//! - `claim.rs`: due jobs → running, with a fresh lease (`SKIP LOCKED`);
//! - `lease.rs`: heartbeat, finish, release, checkpoint (fenced, batched);
//! - `admin.rs`: cancel, retry, rescue, prune;
//! - `leader.rs`: leadership leases (`try_lead`, `resign`);
//! - `read.rs`: `job` and `counts`;
//! - `columns.rs`: decoding columns without panics.

pub(crate) mod admin;
pub(crate) mod claim;
pub(crate) mod columns;
pub(crate) mod copy;
pub(crate) mod enqueue;
pub(crate) mod leader;
pub(crate) mod lease;
pub(crate) mod read;
