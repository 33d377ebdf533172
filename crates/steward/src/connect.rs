//! Opening a store from a URL: the one parser behind the library's
//! [`connect`] and the `steward` command's `--store`.

use std::time::Duration;

use steward_core::store::{
    ActOn, Acted, CancelResult, ClaimRequest, ClaimedJob, DueSchedules, Enqueued, Finish,
    FiredTick, GroupedCounts, HeartbeatResult, HistoryDelta, HistoryQuery, HistoryRow, JobId,
    JobQuery, JobRecord, Lease, NewJob, NodeInfo, NodeRecord, QueueChange, QueueInfo, Reschedule,
    Rescheduled, RescueReport, SaveReport, ScheduleDef, ScheduleFire, ScheduleRecord, StateCounts,
    Store, StoreError,
};

/// A store of either kind, opened by [`connect`]. It is a [`Store`], so it
/// works with [`Client`](crate::jobs::Client), [`Worker`](crate::jobs::Worker)
/// and [`Maintenance`](crate::jobs::Maintenance) like the store it holds;
/// match on it for what only one kind has (such as
/// [`enqueue_in`](crate::sqlite::enqueue_in) on a caller's transaction).
///
/// ```no_run
/// # async fn demo() -> Result<(), steward::store::StoreError> {
/// let store = steward::connect("sqlite://jobs.db").await?;
/// assert_eq!(steward::store::Store::name(&store), "sqlite");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyStore {
    /// `sqlite://PATH`.
    #[cfg(feature = "sqlite")]
    Sqlite(crate::sqlite::SqliteStore),
    /// `postgres://…` or `postgresql://…`.
    #[cfg(feature = "postgres")]
    Postgres(crate::postgres::PostgresStore),
}

/// Opens the store a URL names, with default settings, without migrating
/// it (call [`Store::migrate`] once, at deploy or at start-up):
///
/// - `sqlite://PATH`: the SQLite file at `PATH` (relative to the working
///   directory; `sqlite:///abs/path` for an absolute one), created if
///   missing. Query parameters are the driver's (`?mode=ro`, …).
/// - `postgres://USER@HOST:PORT/DB` (or `postgresql://`): the PostgreSQL
///   store, in the schema named by `?schema=NAME` (default `steward`); the
///   other parameters are the driver's (`sslmode`, …).
///
/// A parameter neither knows is refused, named ([`StoreError::Invalid`]),
/// never ignored; so is a URL of another kind. For settings a URL does not
/// carry (pool size, durability), open the store with its own `open` or
/// `connect` and its options.
///
/// ```no_run
/// use steward::store::Store;
/// # async fn demo() -> Result<(), steward::store::StoreError> {
/// let store = steward::connect("postgres://postgres@127.0.0.1:5432/test?schema=app").await?;
/// store.migrate().await?;
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<AnyStore, StoreError> {
    if url.starts_with("sqlite:") {
        #[cfg(feature = "sqlite")]
        {
            let options = crate::sqlite::SqliteOptions::default();
            return crate::sqlite::SqliteStore::open(url, options)
                .await
                .map(AnyStore::Sqlite);
        }
        #[cfg(not(feature = "sqlite"))]
        return Err(not_built(url, "sqlite"));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        {
            let options = crate::postgres::PostgresOptions::default();
            return crate::postgres::PostgresStore::connect(url, options)
                .await
                .map(AnyStore::Postgres);
        }
        #[cfg(not(feature = "postgres"))]
        return Err(not_built(url, "postgres"));
    }
    Err(StoreError::Invalid {
        message: format!(
            "`{url}` is not a store URL: use sqlite://PATH or \
             postgres://USER@HOST:PORT/DB[?schema=NAME]"
        ),
    })
}

/// The error for a URL of a store this build leaves out.
#[cfg(not(all(feature = "sqlite", feature = "postgres")))]
fn not_built(url: &str, feature: &str) -> StoreError {
    StoreError::Invalid {
        message: format!(
            "`{url}` needs steward's `{feature}` feature, which this build leaves out"
        ),
    }
}

/// Runs `$body` with `$store` bound to the store inside.
macro_rules! each {
    ($self:ident, $store:ident => $body:expr) => {
        match $self {
            #[cfg(feature = "sqlite")]
            AnyStore::Sqlite($store) => $body,
            #[cfg(feature = "postgres")]
            AnyStore::Postgres($store) => $body,
        }
    };
}

impl Store for AnyStore {
    fn name(&self) -> &'static str {
        each!(self, s => s.name())
    }
    async fn migrate(&self) -> Result<(), StoreError> {
        each!(self, s => s.migrate().await)
    }
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, StoreError> {
        each!(self, s => s.enqueue(jobs).await)
    }
    async fn claim(&self, request: ClaimRequest) -> Result<Vec<ClaimedJob>, StoreError> {
        each!(self, s => s.claim(request).await)
    }
    async fn heartbeat(
        &self,
        leases: Vec<Lease>,
        lease: Duration,
    ) -> Result<Vec<HeartbeatResult>, StoreError> {
        each!(self, s => s.heartbeat(leases, lease).await)
    }
    async fn finish(&self, batch: Vec<Finish>) -> Result<Vec<bool>, StoreError> {
        each!(self, s => s.finish(batch).await)
    }
    async fn checkpoint(&self, lease: Lease, state: String) -> Result<(), StoreError> {
        each!(self, s => s.checkpoint(lease, state).await)
    }
    async fn release(&self, leases: Vec<Lease>) -> Result<u64, StoreError> {
        each!(self, s => s.release(leases).await)
    }
    async fn cancel(&self, id: JobId) -> Result<CancelResult, StoreError> {
        each!(self, s => s.cancel(id).await)
    }
    async fn retry(&self, id: JobId) -> Result<bool, StoreError> {
        each!(self, s => s.retry(id).await)
    }
    async fn rescue_expired(&self, max_rescues: u32) -> Result<RescueReport, StoreError> {
        each!(self, s => s.rescue_expired(max_rescues).await)
    }
    async fn prune(
        &self,
        completed_older_than: Duration,
        dead_older_than: Duration,
    ) -> Result<u64, StoreError> {
        each!(self, s => s.prune(completed_older_than, dead_older_than).await)
    }
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        each!(self, s => s.job(id).await)
    }
    async fn counts(&self) -> Result<StateCounts, StoreError> {
        each!(self, s => s.counts().await)
    }
    async fn try_lead(&self, role: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        each!(self, s => s.try_lead(role, holder, ttl).await)
    }
    async fn resign(&self, role: &str, holder: &str) -> Result<(), StoreError> {
        each!(self, s => s.resign(role, holder).await)
    }
    async fn save_schedules(
        &self,
        defs: Vec<ScheduleDef>,
        remove_undeclared: bool,
    ) -> Result<SaveReport, StoreError> {
        each!(self, s => s.save_schedules(defs, remove_undeclared).await)
    }
    async fn schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        each!(self, s => s.schedules().await)
    }
    async fn schedule(&self, id: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        each!(self, s => s.schedule(id).await)
    }
    async fn pause_schedule(&self, id: &str, paused: bool) -> Result<bool, StoreError> {
        each!(self, s => s.pause_schedule(id, paused).await)
    }
    async fn delete_schedule(&self, id: &str) -> Result<bool, StoreError> {
        each!(self, s => s.delete_schedule(id).await)
    }
    async fn due_schedules(&self, limit: u32) -> Result<DueSchedules, StoreError> {
        each!(self, s => s.due_schedules(limit).await)
    }
    async fn fire_schedule(
        &self,
        fire: ScheduleFire,
    ) -> Result<Option<Vec<FiredTick>>, StoreError> {
        each!(self, s => s.fire_schedule(fire).await)
    }
    async fn schedule_fires(&self, id: &str, limit: u32) -> Result<Vec<FiredTick>, StoreError> {
        each!(self, s => s.schedule_fires(id, limit).await)
    }
    async fn jobs(&self, query: JobQuery) -> Result<Vec<JobRecord>, StoreError> {
        each!(self, s => s.jobs(query).await)
    }
    async fn time_travel(&self, by: Duration) -> Result<u64, StoreError> {
        each!(self, s => s.time_travel(by).await)
    }
    async fn record_history(&self, deltas: Vec<HistoryDelta>) -> Result<(), StoreError> {
        each!(self, s => s.record_history(deltas).await)
    }
    async fn history(&self, query: HistoryQuery) -> Result<Vec<HistoryRow>, StoreError> {
        each!(self, s => s.history(query).await)
    }
    async fn prune_history(&self, older_than: Duration) -> Result<u64, StoreError> {
        each!(self, s => s.prune_history(older_than).await)
    }

    async fn act_on_jobs(&self, chunk: ActOn) -> Result<Vec<Acted>, StoreError> {
        each!(self, s => s.act_on_jobs(chunk).await)
    }
    async fn reschedule(&self, id: JobId, change: Reschedule) -> Result<Rescheduled, StoreError> {
        each!(self, s => s.reschedule(id, change).await)
    }

    async fn pause_queue(&self, queue: &str) -> Result<QueueChange, StoreError> {
        each!(self, s => s.pause_queue(queue).await)
    }
    async fn resume_queue(&self, queue: &str) -> Result<QueueChange, StoreError> {
        each!(self, s => s.resume_queue(queue).await)
    }
    async fn paused_queues(&self) -> Result<Vec<String>, StoreError> {
        each!(self, s => s.paused_queues().await)
    }
    async fn queues(&self) -> Result<Vec<QueueInfo>, StoreError> {
        each!(self, s => s.queues().await)
    }

    async fn register_node(&self, info: NodeInfo, ttl: Duration) -> Result<(), StoreError> {
        each!(self, s => s.register_node(info, ttl).await)
    }
    async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        each!(self, s => s.nodes().await)
    }
    async fn node(&self, id: &str) -> Result<Option<NodeRecord>, StoreError> {
        each!(self, s => s.node(id).await)
    }
    async fn remove_node(&self, id: &str) -> Result<bool, StoreError> {
        each!(self, s => s.remove_node(id).await)
    }

    async fn grouped_counts(&self) -> Result<GroupedCounts, StoreError> {
        each!(self, s => s.grouped_counts().await)
    }
    async fn wait_for_work(&self, max_wait: Duration) {
        each!(self, s => s.wait_for_work(max_wait).await)
    }
    async fn close(&self) {
        each!(self, s => Store::close(s).await)
    }
}
