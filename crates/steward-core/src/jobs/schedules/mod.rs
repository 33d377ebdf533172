//! Durable recurring schedules: cron expressions in a time zone, kept in
//! the store, each tick enqueued exactly once across any number of nodes.
//!
//! - [`Scheduler`] (`scheduler.rs`): the host service. Every node may run
//!   one; they elect a leader through the store, and the leader enqueues
//!   the ticks due. The store fences each step (see `store/schedule.rs`),
//!   so even two leaders at once cannot double a tick.
//! - `plan.rs`: which ticks a step enqueues, and what the misfire policy
//!   drops, as a pure function of the tick owed and the store's now.
//! - [`Schedules`] (`manage.rs`): managing schedules at run time: add,
//!   pause, resume, trigger now, delete, the next fire times.

mod manage;
mod plan;
mod scheduler;

pub use manage::{ScheduleError, Schedules};
pub use scheduler::{Scheduler, SchedulerConfig, Step};
