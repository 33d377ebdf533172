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

pub mod batch;
mod error;
pub mod migration;
mod query;
mod query_cursor;
mod query_range;
mod schedule;
mod types;
mod unreadable;
mod validate;
mod wake;

use std::future::Future;
use std::time::Duration;

pub use error::StoreError;
pub use query::{JobQuery, MAX_ERROR_MATCH, MAX_PAGE};
pub use query_range::{JobOrder, JobTime, MAX_AGO, TimeBound, TimeRange};
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
