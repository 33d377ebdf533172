//! Durable jobs: typed [`Job`]s enqueued through a [`Client`], persisted in a
//! [`Store`](crate::store::Store), run by a [`Worker`] service under the host,
//! retried by a [`RetryPolicy`], and looked after by the [`Maintenance`]
//! service (rescue of expired leases, retention), which runs on one node at
//! a time under a [`Leadership`] lease kept in the store.
//!
//! Where a job's life is decided: `worker/attempt.rs` (how an attempt's
//! result becomes an outcome); the store applies the outcome atomically
//! (`store/mod.rs` has the state diagram).

mod bulk;
mod client;
pub(crate) mod context;
mod cron;
mod job;
mod leadership;
mod maintenance;
mod registry;
mod retry;
mod schedules;
mod worker;

pub use bulk::{Bulk, BulkProgress, DEFAULT_CHUNK, Flow, act_on_matching};
pub use client::{Client, EnqueueError, EnqueueOptions, new_job};
pub use context::{Extensions, JobContext, MissingState};
pub use cron::{Cron, CronError};
pub use job::{Job, JobControl, JobOptions};
pub use leadership::Leadership;
pub use maintenance::{Maintenance, MaintenanceConfig, Pass};
pub use retry::RetryPolicy;
pub use schedules::{ScheduleError, Scheduler, SchedulerConfig, Schedules, Step};
pub use worker::{
    DRAIN_LIMIT, DrainOutcome, Drained, DrainedJob, NodeConfig, QueueConfig, Worker, WorkerConfig,
};
