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
//! - `admin.rs`: cancel, retry, rescue, prune, time travel (tests);
//! - `act.rs`: an operator's bulk retry/cancel/delete and reschedule;
//! - `leader.rs`: leadership leases (`try_lead`, `resign`);
//! - `nodes.rs`: the registry of live nodes;
//! - `read.rs`: `job` and `counts`; `query.rs`: `jobs`;
//! - `queues.rs`: queue settings (pauses) and the list of queues;
//! - `schedules.rs`: recurring schedules and the scheduler's fenced step;
//! - `history.rs`: per-minute history for charts;
//! - `columns.rs`: decoding columns without panics;
//! - [`Sql`] (here): every statement above, rendered for one schema.

pub(crate) mod act;
pub(crate) mod admin;
pub(crate) mod claim;
pub(crate) mod columns;
pub(crate) mod copy;
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

use crate::sql::render;
use crate::vacuum;

/// The `{schema}`-placeholder statements, rendered for one schema.
#[derive(Debug)]
pub(crate) struct Sql {
    pub(crate) enqueue_plain: String,
    pub(crate) enqueue_one: String,
    pub(crate) enqueue_unique: String,
    pub(crate) copy_prepare: String,
    pub(crate) copy: String,
    pub(crate) unique_holder: String,
    pub(crate) claim: String,
    pub(crate) heartbeat: String,
    pub(crate) lock_in_order: String,
    pub(crate) complete: String,
    pub(crate) fail_retry: String,
    pub(crate) fail_dead: String,
    pub(crate) snooze: String,
    pub(crate) cancel_attempt: String,
    pub(crate) release: String,
    pub(crate) settle_cancels: String,
    pub(crate) checkpoint: String,
    pub(crate) cancel: String,
    pub(crate) exists: String,
    pub(crate) retry: String,
    pub(crate) retry_without_key: String,
    pub(crate) rescue: String,
    pub(crate) prune_cutoffs: String,
    pub(crate) prune_chunk: String,
    pub(crate) time_travel_jobs: String,
    pub(crate) time_travel_schedules: String,
    pub(crate) job: String,
    pub(crate) jobs: String,
    pub(crate) counts: String,
    pub(crate) grouped_counts: String,
    pub(crate) lead: String,
    pub(crate) resign: String,
    pub(crate) vacuum: String,
    pub(crate) schedule_save: String,
    pub(crate) schedule_remove_undeclared: String,
    pub(crate) schedule_list: String,
    pub(crate) schedule_get: String,
    pub(crate) schedule_pause: String,
    pub(crate) schedule_delete: String,
    pub(crate) schedule_due: String,
    pub(crate) schedule_next_due: String,
    pub(crate) schedule_fence: String,
    pub(crate) schedule_record_ticks: String,
    pub(crate) schedule_tick_jobs: String,
    pub(crate) schedule_trim_ticks: String,
    pub(crate) schedule_fires: String,
    pub(crate) history_ensure: String,
    pub(crate) history_lock: String,
    pub(crate) history_add: String,
    pub(crate) history_read: String,
    pub(crate) history_prune: String,
    pub(crate) act_lock: String,
    pub(crate) act_delete: String,
    pub(crate) reschedule_lock: String,
    pub(crate) reschedule: String,
    pub(crate) queues: queues::Statements,
    pub(crate) nodes: nodes::NodeSql,
}

impl Sql {
    /// Renders every statement for `quoted_schema` (already validated and
    /// quoted, see `options::quoted_schema`).
    pub(crate) fn new(quoted_schema: &str) -> Sql {
        let r = |template: &str| render(template, quoted_schema);
        Sql {
            enqueue_plain: r(enqueue::PLAIN),
            enqueue_one: r(enqueue::ONE),
            enqueue_unique: r(enqueue::UNIQUE),
            copy_prepare: r(copy::PREPARE),
            copy: r(copy::COPY),
            unique_holder: r(enqueue::HOLDER),
            claim: r(claim::CLAIM),
            heartbeat: r(lease::HEARTBEAT),
            lock_in_order: r(lease::LOCK_IN_ORDER),
            complete: r(lease::COMPLETE),
            fail_retry: r(lease::FAIL_RETRY),
            fail_dead: r(lease::FAIL_DEAD),
            snooze: r(lease::SNOOZE),
            cancel_attempt: r(lease::CANCEL),
            release: r(lease::RELEASE),
            settle_cancels: r(lease::SETTLE_CANCELS),
            checkpoint: r(lease::CHECKPOINT),
            cancel: r(admin::CANCEL),
            exists: r(admin::EXISTS),
            retry: r(admin::RETRY),
            retry_without_key: r(admin::RETRY_WITHOUT_KEY),
            rescue: r(admin::RESCUE),
            prune_cutoffs: admin::PRUNE_CUTOFFS.to_string(),
            prune_chunk: r(admin::PRUNE_CHUNK),
            time_travel_jobs: r(admin::TIME_TRAVEL_JOBS),
            time_travel_schedules: r(admin::TIME_TRAVEL_SCHEDULES),
            job: r(read::JOB),
            jobs: r(read::JOBS),
            counts: r(read::COUNTS),
            grouped_counts: r(grouped::GROUPED),
            lead: r(leader::LEAD),
            resign: r(leader::RESIGN),
            vacuum: r(vacuum::VACUUM),
            schedule_save: r(schedules::SAVE),
            schedule_remove_undeclared: r(schedules::REMOVE_UNDECLARED),
            schedule_list: r(&schedules::with_columns(schedules::LIST)),
            schedule_get: r(&schedules::with_columns(schedules::GET)),
            schedule_pause: r(schedules::PAUSE),
            schedule_delete: r(schedules::DELETE),
            schedule_due: r(&schedules::with_columns(schedules::DUE)),
            schedule_next_due: r(schedules::NEXT_DUE),
            schedule_fence: r(schedules::FENCE),
            schedule_record_ticks: r(schedules::RECORD_TICKS),
            schedule_tick_jobs: r(schedules::TICK_JOBS),
            schedule_trim_ticks: r(schedules::TRIM_TICKS),
            schedule_fires: r(schedules::FIRES),
            history_ensure: r(history::ENSURE),
            history_lock: r(history::LOCK),
            history_add: r(history::ADD),
            history_read: r(history::READ),
            history_prune: r(history::PRUNE),
            act_lock: r(act::LOCK),
            act_delete: r(act::DELETE),
            reschedule_lock: r(act::LOCK_ONE),
            reschedule: r(act::RESCHEDULE),
            queues: queues::Statements::new(quoted_schema),
            nodes: nodes::NodeSql::new(quoted_schema),
        }
    }
}
