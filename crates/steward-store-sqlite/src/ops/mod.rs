//! The SQL of every store operation, as functions on a connection that is
//! already inside a transaction (the writer's group commit, or a caller's
//! own transaction for [`enqueue_in`](crate::enqueue_in) and
//! [`complete_in`](crate::complete_in)). They never begin or commit.
//!
//! Where a job's state changes is decided by the engine; how each change is
//! written — with its fence, its unique-key release, its counters — lives
//! here, one file per group of operations:
//! - `enqueue.rs`: validation and inserts, unique keys;
//! - `claim.rs`: due jobs → running, with a fresh lease;
//! - `lease.rs`: heartbeat, finish, release, checkpoint (fenced);
//! - `admin.rs`: cancel, retry, rescue, prune, time travel (tests);
//! - `act.rs`: an operator's bulk retry/cancel/delete and reschedule;
//! - `leader.rs`: leadership leases (`try_lead`, `resign`);
//! - `nodes.rs`: the registry of live nodes;
//! - `read.rs`: `job` and `counts`; `query.rs`: `jobs`;
//! - `schedules.rs`: recurring schedules and their fired ticks;
//! - `history.rs`: per-minute history for charts.
//! - `queues.rs`: queue settings (pauses) and the list of queues;
//! - `schedules.rs`: recurring schedules and their fired ticks.

pub(crate) mod act;
pub(crate) mod admin;
pub(crate) mod claim;
pub(crate) mod enqueue;
pub(crate) mod grouped;
pub(crate) mod history;
pub(crate) mod leader;
pub(crate) mod lease;
pub(crate) mod nodes;
pub(crate) mod query;
pub(crate) mod queues;
pub(crate) mod read;
pub(crate) mod schedules;
