//! The contract cases: one `pub async fn case<H: Harness>(h: &H)` per rule of
//! `docs/store-contract.md`, each panicking with a message that names the
//! rule when the store breaks it.
//!
//! Run them all through [`contract!`](crate::contract); a store's own tests
//! may also call one directly while debugging it.

pub mod act;
pub mod basics;
pub mod bulk;
pub mod cancel;
pub mod checkpoint;
pub mod claim;
pub mod enqueue;
pub mod fencing;
pub mod finish;
pub mod grouped;
pub mod heartbeat;
pub mod history;
pub mod inspect;
pub mod large_batch;
pub mod leadership;
pub mod nodes;
pub mod payload_version;
pub mod prune;
pub mod query;
pub mod query_filters;
pub mod query_pages;
pub mod queues;
pub mod race;
pub mod release;
pub mod rescue;
pub mod retry;
pub mod schedules;
pub mod unique;
pub mod wait;
