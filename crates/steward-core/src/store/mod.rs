//! The storage boundary: the one trait between the job engine and a database.
//!
//! The engine never writes SQL; it calls [`Store`]. Every store (SQLite,
//! PostgreSQL) passes the same contract suite (`steward-store-tests`), so the
//! engine can rely on the promises written on each method here.
//!
//! A job's life, as the store records it (the engine decides the arrows, the
//! store applies them atomically and with fencing):
//!
//! ```text
//!     enqueue (run_at or delay                      enqueue (due now)
//!              still ahead)
//!   scheduled ───────────────┐                ┌──────────── available
//!                            ▼                ▼
//!                          claim (batched, sets a fresh lease token)
//!                                    │
//!                                 running ──heartbeat (fenced: extends the lease)
//!      ┌──────────────┬──────────────┼──────────────┬───────────────┬──────────────┐
//!   completed     retryable        dead         cancelled     available (released   rescued:
//!                 (retry_in)   (attempts      (by the job   as interrupted), or     available, or dead
//!                     │         exhausted)    or operator)  scheduled (snoozed)     after N rescues
//!                     └──── claimable again once run_at passes ─────────────────────┘
//! ```
//!
//! Leases, schedules and retention run on the store's own clock (the
//! database's `now()` where there is one): callers pass durations (a lease,
//! a retry or snooze delay, an enqueue delay, a retention age), never an
//! absolute time computed on their clock, so workers with skewed clocks
//! cannot move each other's jobs. The one exception is a [`NewJob::run_at`]
//! the user chose. An absurd delay or age saturates at the latest (or
//! earliest) time the store can hold; it never panics.
//!
//! Every write about a running attempt carries its [`Lease`]; a write whose
//! lease token no longer matches (the job was rescued and claimed again) is
//! refused with [`StoreError::LeaseLost`] or reported per item, never applied.

mod act;
pub mod batch;
mod error;
mod grouped;
mod history;
pub mod migration;
mod node;
mod query;
mod query_cursor;
mod query_range;
mod queues;
mod run_times;
mod schedule;
mod types;
mod unreadable;
mod validate;
mod wake;

use std::future::Future;
use std::time::Duration;

pub use act::{
    ActOn, Acted, JobAction, MAX_ACT_CHUNK, Reschedule, Rescheduled, RunAt, validate_job_id,
    waiting_state,
};
pub use error::StoreError;
pub use grouped::GroupedCounts;
pub use history::{
    DEFAULT_HISTORY_RETENTION, HistoryCounts, HistoryDelta, HistoryKey, HistoryQuery, HistoryRow,
    MAX_HISTORY_BATCH, MAX_HISTORY_COUNT, MAX_HISTORY_SPAN, group_history, minute_start_ms,
    rescue_tallies, validate_history,
};
pub use node::{
    MAX_NODE_ERROR, MAX_NODE_ITEMS, MAX_NODE_LABEL, MAX_NODE_NAME, MAX_NODE_TTL, MIN_NODE_TTL,
    NodeError, NodeInfo, NodeQueue, NodeRecord, NodeService,
};
pub use query::{JobQuery, MAX_ERROR_MATCH, MAX_PAGE};
pub use query_range::{JobOrder, JobTime, MAX_AGO, TimeBound, TimeRange};
pub use queues::{MAX_QUEUE_NAME, QueueChange, QueueInfo, validate_queue_name};
pub use run_times::RunTimes;
pub use schedule::{
    DEFAULT_MISFIRE_LIMIT, DueSchedules, FiredTick, KEPT_TICKS, MAX_MISFIRE_LIMIT, MAX_SCHEDULE_ID,
    Misfire, SaveReport, Saved, ScheduleDef, ScheduleFire, ScheduleOrigin, ScheduleRecord,
    validate_schedule_defs, validate_schedule_fire, validate_schedule_id,
};
pub use types::{
    AttemptError, CANCELLED_BY_OPERATOR, CancelResult, ClaimRequest, ClaimedJob, Enqueued,
    ErrorKind, Finish, FinishOutcome, HeartbeatResult, JobId, JobRecord, JobState, Lease,
    LeaseToken, NewJob, QueueClaim, RescueReport, SUSPECT_RESCUES, StateCounts, UniqueScope,
};
pub use unreadable::{fail_unreadable, unreadable_job};
pub use validate::{
    EARLIEST_TIME, LATEST_TIME, WORKER_LOST, WORKER_LOST_TIMES, millis, validate_leadership,
    validate_new_jobs, worker_lost_times,
};
pub use wake::{WorkSignal, earliest_job_due, earliest_requeue};

/// The storage a job engine runs on.
///
/// Methods take batches where the engine batches (enqueue, claim, heartbeat,
/// finish, release), so a store can turn a batch into one transaction.
/// Times the store writes (`now`, lease expiry) come from the store's own
/// clock (the database's `now()` where there is one), never the caller's.
///
/// ```
/// use steward_core::store::{Store, NewJob};
/// async fn enqueue_one<S: Store>(store: &S) -> Result<(), steward_core::store::StoreError> {
///     let ids = store.enqueue(vec![NewJob::new("email", r#"{"to":"a@b.c"}"#)]).await?;
///     println!("job {}", ids[0].id);
///     Ok(())
/// }
/// ```
pub trait Store: Send + Sync + 'static {
    /// A short name for logs and benchmarks (`sqlite`, `postgres`).
    fn name(&self) -> &'static str;

    /// Applies the embedded migrations up to this binary's schema version.
    /// Refuses with [`StoreError::SchemaTooNew`] if the database was migrated
    /// by a newer binary.
    fn migrate(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Inserts jobs, in one transaction. Returns one [`Enqueued`] per input,
    /// in order; a job whose unique key is already held within its scope is
    /// not inserted and reports the existing job's id with `duplicate: true`.
    /// A job runs at its `run_at`, or `delay` after the store's now, or now;
    /// one with both `run_at` and `delay` refuses the whole batch with
    /// [`StoreError::Invalid`], as any invalid job does.
    fn enqueue(
        &self,
        jobs: Vec<NewJob>,
    ) -> impl Future<Output = Result<Vec<Enqueued>, StoreError>> + Send;

    /// Claims up to each queue's `limit` of due jobs (`run_at <= now`, state
    /// scheduled, available or retryable), queues in the order given, within
    /// a queue by `priority` (lower first), then `run_at`, then id. Each
    /// claimed job becomes `running` with `attempt + 1`, a fresh lease token
    /// and a lease expiring `lease` from now. Two concurrent claims never
    /// return the same job.
    fn claim(
        &self,
        request: ClaimRequest,
    ) -> impl Future<Output = Result<Vec<ClaimedJob>, StoreError>> + Send;

    /// Extends the leases of running attempts by `lease` from now. One result
    /// per input, in order: `Extended`, `CancelRequested` (extended, but an
    /// operator asked to cancel it), or `Lost` (fenced: the token no longer
    /// matches, or the job is no longer running).
    fn heartbeat(
        &self,
        leases: Vec<Lease>,
        lease: Duration,
    ) -> impl Future<Output = Result<Vec<HeartbeatResult>, StoreError>> + Send;

    /// Records how attempts ended, in one transaction. Each item is fenced
    /// by its lease: the result is `true` if applied, `false` if the lease
    /// was lost (nothing is written for that item). A retry or snooze runs
    /// again at the store's now plus the outcome's delay.
    fn finish(
        &self,
        batch: Vec<Finish>,
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;

    /// Saves a running attempt's progress, fenced by its lease
    /// ([`StoreError::LeaseLost`] if the lease is gone). The next attempt
    /// receives it in [`ClaimedJob::checkpoint`].
    fn checkpoint(
        &self,
        lease: Lease,
        state: String,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Puts running attempts back as `available` at once, without counting
    /// the attempt (shutdown: interrupted, not failed). Fenced per item;
    /// returns how many were released.
    fn release(&self, leases: Vec<Lease>) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Cancels a job: a queued one becomes `cancelled` at once; a running one
    /// is flagged so its worker cancels it (seen on its next heartbeat).
    fn cancel(&self, id: JobId) -> impl Future<Output = Result<CancelResult, StoreError>> + Send;

    /// Makes a dead, cancelled or completed job available again now, with a
    /// fresh attempt budget (an operator's retry). Running or queued jobs are
    /// left alone (`false`). The job takes back the `Queued` or `Active`
    /// unique key it let go of if no other job holds it now, and is retried
    /// without it otherwise (a window's key it never let go of).
    fn retry(&self, id: JobId) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Rescues running jobs whose lease expired (their worker died or
    /// stalled): back to `available` without counting the attempt, unless
    /// this is rescue number `max_rescues` in a row, which makes the job dead
    /// with the error `worker lost N times`.
    fn rescue_expired(
        &self,
        max_rescues: u32,
    ) -> impl Future<Output = Result<RescueReport, StoreError>> + Send;

    /// Deletes completed jobs finished more than `completed_older_than` ago
    /// and dead or cancelled ones finished more than `dead_older_than` ago,
    /// by the store's clock (`finished_at < now - age`, strictly). Returns
    /// how many.
    fn prune(
        &self,
        completed_older_than: Duration,
        dead_older_than: Duration,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// One job with its recorded attempt errors.
    fn job(&self, id: JobId) -> impl Future<Output = Result<Option<JobRecord>, StoreError>> + Send;

    /// How many jobs are in each state.
    fn counts(&self) -> impl Future<Output = Result<StateCounts, StoreError>> + Send;

    /// Takes or keeps the leadership of `role` for `holder`, for `ttl` on
    /// the store's clock, in one atomic step: the role is taken if nobody
    /// holds it or its holder's lease expired, and renewed if `holder`
    /// holds it already. Returns whether `holder` leads now. Two callers
    /// racing for a free role: exactly one gets `true`. An empty role or
    /// holder, or a zero or absurd `ttl`, is refused with
    /// [`StoreError::Invalid`].
    ///
    /// A lease, not a lock: a leader that stops renewing (it died, or was
    /// paused for longer than `ttl`) is replaced once `ttl` has passed, so
    /// work done under it must be safe to overlap briefly.
    ///
    /// ```
    /// use std::time::Duration;
    /// use steward_core::store::{Store, StoreError};
    /// async fn tick<S: Store>(store: &S) -> Result<(), StoreError> {
    ///     if store.try_lead("maintenance", "host-a/42", Duration::from_secs(10)).await? {
    ///         // only one node gets here at a time
    ///     }
    ///     Ok(())
    /// }
    /// ```
    fn try_lead(
        &self,
        role: &str,
        holder: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives up `role` at once if `holder` holds it (a clean shutdown, so
    /// another node can take over at its next try instead of waiting for
    /// the lease to expire). Does nothing if someone else holds it.
    ///
    /// ```
    /// use steward_core::store::{Store, StoreError};
    /// async fn stop<S: Store>(store: &S) -> Result<(), StoreError> {
    ///     store.resign("maintenance", "host-a/42").await
    /// }
    /// ```
    fn resign(
        &self,
        role: &str,
        holder: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Saves schedule definitions, in one transaction; every definition is
    /// checked first ([`ScheduleDef::validate`], ids unique in the list) and
    /// one invalid definition refuses the whole list with
    /// [`StoreError::Invalid`], writing nothing. A new id is created
    /// unarmed and unpaused. An existing one takes the new definition; if
    /// its expression or zone changed it is re-armed (its `next_at` cleared:
    /// owed ticks are counted afresh from the store's now); its pause is
    /// kept. With `remove_undeclared`, schedules of
    /// [`ScheduleOrigin::Code`] not in the list are deleted; operators'
    /// schedules never are.
    ///
    /// ```
    /// use steward_core::store::{ScheduleDef, Store, StoreError};
    /// async fn declare<S: Store>(store: &S) -> Result<(), StoreError> {
    ///     let report = store
    ///         .save_schedules(vec![ScheduleDef::new("nightly", "0 3 * * *", "report")], true)
    ///         .await?;
    ///     println!("{:?}, removed {:?}", report.saved, report.removed);
    ///     Ok(())
    /// }
    /// ```
    fn save_schedules(
        &self,
        defs: Vec<ScheduleDef>,
        remove_undeclared: bool,
    ) -> impl Future<Output = Result<SaveReport, StoreError>> + Send;

    /// Every schedule, by id.
    ///
    /// ```
    /// use steward_core::store::{Store, StoreError};
    /// async fn ids<S: Store>(store: &S) -> Result<Vec<String>, StoreError> {
    ///     Ok(store.schedules().await?.into_iter().map(|s| s.def.id).collect())
    /// }
    /// ```
    fn schedules(&self) -> impl Future<Output = Result<Vec<ScheduleRecord>, StoreError>> + Send;

    /// One schedule, if it exists.
    ///
    /// ```
    /// use steward_core::store::{Store, StoreError};
    /// async fn paused<S: Store>(store: &S) -> Result<bool, StoreError> {
    ///     Ok(store.schedule("nightly").await?.is_some_and(|s| s.paused))
    /// }
    /// ```
    fn schedule(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ScheduleRecord>, StoreError>> + Send;

    /// Pauses (`true`) or resumes (`false`) a schedule; `false` if there is
    /// no such schedule. A resumed schedule is re-armed: ticks that fell
    /// while it was paused are not owed. Pausing a paused schedule, or
    /// resuming a running one, changes nothing.
    ///
    /// ```
    /// use steward_core::store::{Store, StoreError};
    /// async fn hold<S: Store>(store: &S) -> Result<bool, StoreError> {
    ///     store.pause_schedule("nightly", true).await
    /// }
    /// ```
    fn pause_schedule(
        &self,
        id: &str,
        paused: bool,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes a schedule and its record of fired ticks; `false` if there
    /// is no such schedule. Jobs it already enqueued stay.
    ///
    /// ```
    /// use steward_core::store::{Store, StoreError};
    /// async fn drop_it<S: Store>(store: &S) -> Result<bool, StoreError> {
    ///     store.delete_schedule("nightly").await
    /// }
    /// ```
    fn delete_schedule(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Up to `limit` unpaused schedules that owe a tick at or before the
    /// store's now, or are not armed yet (those first, then by `next_at`),
    /// with that now and the earliest tick owed later.
    ///
    /// ```
    /// use steward_core::store::{Store, StoreError};
    /// async fn look<S: Store>(store: &S) -> Result<usize, StoreError> {
    ///     Ok(store.due_schedules(100).await?.due.len())
    /// }
    /// ```
    fn due_schedules(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<DueSchedules, StoreError>> + Send;

    /// Applies one scheduler step, in one transaction: if the schedule
    /// exists, is not paused and still owes `fire.expected`, enqueues each
    /// job whose tick (its `run_at`) was not recorded yet, records those
    /// ticks, and makes `fire.next_at` the tick owed. Returns the ticks it
    /// fired, or `None` if the fence refused the step (nothing written).
    /// A job without `run_at`, or a `next_at` not after every tick, is
    /// refused with [`StoreError::Invalid`].
    ///
    /// ```
    /// use steward_core::store::{ScheduleFire, Store, StoreError};
    /// async fn arm<S: Store>(store: &S, at: chrono::DateTime<chrono::Utc>) -> Result<bool, StoreError> {
    ///     let fire = ScheduleFire { id: "nightly".into(), expected: None, jobs: vec![], next_at: at };
    ///     Ok(store.fire_schedule(fire).await?.is_some())
    /// }
    /// ```
    fn fire_schedule(
        &self,
        fire: ScheduleFire,
    ) -> impl Future<Output = Result<Option<Vec<FiredTick>>, StoreError>> + Send;

    /// The latest ticks a schedule fired, newest first, at most `limit`
    /// (a store keeps the newest [`KEPT_TICKS`]).
    ///
    /// ```
    /// use steward_core::store::{Store, StoreError};
    /// async fn recent<S: Store>(store: &S) -> Result<usize, StoreError> {
    ///     Ok(store.schedule_fires("nightly", 10).await?.len())
    /// }
    /// ```
    fn schedule_fires(
        &self,
        id: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<FiredTick>, StoreError>> + Send;

    /// Jobs matching every filter of `query`, in its order (by id, oldest
    /// first unless it says newest), past its cursor, at most
    /// `query.limit`, with their attempt errors. Ages in its time ranges
    /// are counted back from the store's now. A query
    /// [`JobQuery::validate`] refuses is refused with
    /// [`StoreError::Invalid`], before anything is read.
    ///
    /// ```
    /// use steward_core::store::{JobQuery, JobState, Store, StoreError};
    /// async fn dead<S: Store>(store: &S) -> Result<usize, StoreError> {
    ///     Ok(store.jobs(JobQuery::default().states([JobState::Dead])).await?.len())
    /// }
    /// ```
    fn jobs(
        &self,
        query: JobQuery,
    ) -> impl Future<Output = Result<Vec<JobRecord>, StoreError>> + Send;

    /// For tests only: moves the store's waiting work `by` closer, as if
    /// `by` had passed on its clock. Every `scheduled`, `available` and
    /// `retryable` job's `run_at` and every schedule's `next_at` move `by`
    /// earlier (saturating at [`EARLIEST_TIME`]); nothing else changes
    /// (running jobs' leases, finished jobs, creation times). Returns how
    /// many jobs moved. A test that sleeps for a delay, a retry's backoff
    /// or a schedule's tick calls this instead (`steward::testing`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use steward_core::store::{Store, StoreError};
    /// async fn an_hour_later<S: Store>(store: &S) -> Result<u64, StoreError> {
    ///     store.time_travel(Duration::from_secs(3600)).await
    /// }
    /// ```
    fn time_travel(&self, by: Duration) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Adds what nodes counted to the per-minute history, in one
    /// transaction: each delta is added to the row of its queue, kind and
    /// minute (the minute holding the store's now minus `ago`), counts
    /// summed and run times merged, so nodes writing the same minute add
    /// up. A batch with an invalid delta ([`validate_history`]) is refused
    /// with [`StoreError::Invalid`] and nothing is written.
    ///
    /// ```
    /// use steward_core::store::{HistoryDelta, Store, StoreError};
    /// async fn flush<S: Store>(store: &S, seen: Vec<HistoryDelta>) -> Result<(), StoreError> {
    ///     store.record_history(seen).await
    /// }
    /// ```
    fn record_history(
        &self,
        deltas: Vec<HistoryDelta>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The history rows `query` asks for, by minute, then queue, then kind.
    /// [`Store::rescue_expired`] adds its rescues (and the jobs it makes
    /// dead, as failed) to the history itself, in its transaction.
    ///
    /// ```
    /// use std::time::Duration;
    /// use steward_core::store::{HistoryQuery, Store, StoreError};
    /// async fn last_hour<S: Store>(store: &S) -> Result<u64, StoreError> {
    ///     let rows = store.history(HistoryQuery::last(Duration::from_secs(3600))).await?;
    ///     Ok(rows.iter().map(|r| r.counts.succeeded).sum())
    /// }
    /// ```
    fn history(
        &self,
        query: HistoryQuery,
    ) -> impl Future<Output = Result<Vec<HistoryRow>, StoreError>> + Send;

    /// Deletes history of minutes that began more than `older_than` before
    /// the store's now. Returns how many rows.
    ///
    /// ```
    /// use steward_core::store::{DEFAULT_HISTORY_RETENTION, Store, StoreError};
    /// async fn tidy<S: Store>(store: &S) -> Result<u64, StoreError> {
    ///     store.prune_history(DEFAULT_HISTORY_RETENTION).await
    /// }
    /// ```
    fn prune_history(
        &self,
        older_than: Duration,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// Applies an operator's action to a chunk of jobs in ONE transaction
    /// (all or nothing), re-checking each job's state under it: a job is
    /// acted on only if [`ActOn::wants`] its current state, so one that
    /// changed since it was chosen is skipped, never clobbered. Retry and
    /// cancel follow [`Store::retry`] and [`Store::cancel`] (unique keys,
    /// a running job's cancel requested through its worker); delete removes
    /// the job with its errors and checkpoint and refuses a running job.
    /// One [`Acted`] per id, in order. An invalid chunk
    /// ([`ActOn::validate`]) is refused with [`StoreError::Invalid`].
    ///
    /// ```
    /// use steward_core::store::{ActOn, JobAction, JobId, Store, StoreError};
    /// async fn delete_two<S: Store>(store: &S) -> Result<usize, StoreError> {
    ///     let acted = store.act_on_jobs(ActOn::new(JobAction::Delete, [JobId(1), JobId(2)])).await?;
    ///     Ok(acted.iter().filter(|a| a.touched()).count())
    /// }
    /// ```
    fn act_on_jobs(
        &self,
        chunk: ActOn,
    ) -> impl Future<Output = Result<Vec<Acted>, StoreError>> + Send;

    /// Changes a waiting job's priority and/or run time (scheduled,
    /// available or retryable; running and finished jobs are refused with
    /// [`Rescheduled::NotWaiting`]). A run time of [`RunAt::Now`] or
    /// [`RunAt::In`] is on the store's clock; the job becomes available if
    /// due, scheduled if not (a retryable job stays retryable), and workers
    /// are woken when it is due now. An invalid change
    /// ([`Reschedule::validate`]) is refused with [`StoreError::Invalid`].
    ///
    /// ```
    /// use steward_core::store::{JobId, Reschedule, Rescheduled, RunAt, Store, StoreError};
    /// async fn run_now<S: Store>(store: &S) -> Result<bool, StoreError> {
    ///     let done = store.reschedule(JobId(7), Reschedule::default().run_at(RunAt::Now)).await?;
    ///     Ok(matches!(done, Rescheduled::Updated(_)))
    /// }
    /// ```
    fn reschedule(
        &self,
        id: JobId,
        change: Reschedule,
    ) -> impl Future<Output = Result<Rescheduled, StoreError>> + Send;
    /// Pauses `queue` for every worker: each stops claiming its jobs within
    /// one poll interval (see [`paused_queues`](Self::paused_queues)); jobs
    /// already running finish. `Unchanged` if it was paused already,
    /// `Unknown` (nothing written) if no job and no setting names it. A bad
    /// name ([`validate_queue_name`]) is refused with [`StoreError::Invalid`].
    /// The pause time comes from the store's clock.
    ///
    /// ```
    /// use steward_core::store::{QueueChange, Store, StoreError};
    /// async fn hold<S: Store>(store: &S) -> Result<bool, StoreError> {
    ///     Ok(store.pause_queue("mail").await? == QueueChange::Changed)
    /// }
    /// ```
    fn pause_queue(
        &self,
        queue: &str,
    ) -> impl Future<Output = Result<QueueChange, StoreError>> + Send;

    /// Resumes a paused `queue`: workers claim its jobs again within one
    /// poll interval. `Unchanged` if it was not paused, `Unknown` if no job
    /// and no setting names it; a bad name is refused as by
    /// [`pause_queue`](Self::pause_queue). Its setting row stays (a queue
    /// once paused stays listed).
    ///
    /// ```
    /// use steward_core::store::{Store, StoreError};
    /// async fn go<S: Store>(store: &S) -> Result<(), StoreError> {
    ///     store.resume_queue("mail").await?;
    ///     Ok(())
    /// }
    /// ```
    fn resume_queue(
        &self,
        queue: &str,
    ) -> impl Future<Output = Result<QueueChange, StoreError>> + Send;

    /// The paused queues' names, sorted. What every worker reads once per
    /// poll interval: a read of the small settings table only, never of
    /// the jobs.
    ///
    /// ```
    /// use steward_core::store::{Store, StoreError};
    /// async fn is_paused<S: Store>(store: &S) -> Result<bool, StoreError> {
    ///     Ok(store.paused_queues().await?.iter().any(|q| q == "mail"))
    /// }
    /// ```
    fn paused_queues(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Every queue that has jobs or a setting, by name (bytewise), with how
    /// many of its jobs are in each state and whether it is paused.
    ///
    /// ```
    /// use steward_core::store::{Store, StoreError};
    /// async fn depth<S: Store>(store: &S) -> Result<u64, StoreError> {
    ///     Ok(store.queues().await?.iter().map(|q| q.counts.available).sum())
    /// }
    /// ```
    fn queues(&self) -> impl Future<Output = Result<Vec<QueueInfo>, StoreError>> + Send;
    /// Registers a node or refreshes its report, in one write: the row
    /// takes `info`, `last_seen` becomes the store's now and the node is
    /// listed until `ttl` after that. A node's `started_at` is set when it
    /// first registers and kept by its refreshes (a node that had expired
    /// starts afresh). The same write deletes every other node expired by
    /// then, so dead nodes' rows go without a maintenance pass. A report
    /// [`NodeInfo::validate`] refuses is refused with
    /// [`StoreError::Invalid`], writing nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use steward_core::store::{NodeInfo, Store, StoreError};
    /// async fn report<S: Store>(store: &S) -> Result<(), StoreError> {
    ///     let me = NodeInfo::new("web-1:4242:k3x", "web-1", 4242);
    ///     store.register_node(me, Duration::from_secs(30)).await
    /// }
    /// ```
    fn register_node(
        &self,
        info: NodeInfo,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every live node (its ttl not passed by the store's clock), by id,
    /// with its services.
    ///
    /// ```
    /// use steward_core::store::{Store, StoreError};
    /// async fn count<S: Store>(store: &S) -> Result<usize, StoreError> {
    ///     Ok(store.nodes().await?.len())
    /// }
    /// ```
    fn nodes(&self) -> impl Future<Output = Result<Vec<NodeRecord>, StoreError>> + Send;

    /// One live node, if it exists and has not expired.
    ///
    /// ```
    /// use steward_core::store::{Store, StoreError};
    /// async fn alive<S: Store>(store: &S) -> Result<bool, StoreError> {
    ///     Ok(store.node("web-1:4242:k3x").await?.is_some())
    /// }
    /// ```
    fn node(&self, id: &str)
    -> impl Future<Output = Result<Option<NodeRecord>, StoreError>> + Send;

    /// Removes a node at once (its clean shutdown); `false` if there was
    /// no such row.
    ///
    /// ```
    /// use steward_core::store::{Store, StoreError};
    /// async fn leave<S: Store>(store: &S) -> Result<bool, StoreError> {
    ///     store.remove_node("web-1:4242:k3x").await
    /// }
    /// ```
    fn remove_node(&self, id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// How many jobs each queue and each kind has in each state, counted
    /// exactly in one read (see [`GroupedCounts`]). Only queues and kinds
    /// with jobs appear.
    ///
    /// ```
    /// use steward_core::store::{Store, StoreError};
    /// async fn dead_mail<S: Store>(store: &S) -> Result<u64, StoreError> {
    ///     Ok(store.grouped_counts().await?.queue("mail").dead)
    /// }
    /// ```
    fn grouped_counts(&self) -> impl Future<Output = Result<GroupedCounts, StoreError>> + Send;

    /// Completes when new jobs may be due (an enqueue in this process, a
    /// notification from another, delayed work the store knows of coming
    /// due), or after `max_wait`: the worker's cue to claim again. Spurious
    /// wake-ups are allowed; missed ones are not (within `max_wait`). Every
    /// waiter wakes, not one. [`WorkSignal`] implements this for a store.
    fn wait_for_work(&self, max_wait: Duration) -> impl Future<Output = ()> + Send;

    /// Closes the store: waits for the operations already under way, then
    /// lets go of its connections and background tasks. Later operations on
    /// this handle (and its clones) fail with [`StoreError::Unavailable`].
    /// Closing twice is harmless. Call it once the host has stopped, so
    /// nothing is cut off half-way.
    ///
    /// ```
    /// use steward_core::store::Store;
    /// async fn shut_down<S: Store>(store: &S) {
    ///     store.close().await;
    /// }
    /// ```
    fn close(&self) -> impl Future<Output = ()> + Send;
}
