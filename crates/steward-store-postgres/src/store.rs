//! [`PostgresStore`]: connecting, and the [`Store`] implementation.

use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};
use std::collections::BTreeSet;

use steward_core::store::{
    ActOn, Acted, CancelResult, ClaimRequest, ClaimedJob, DueSchedules, Enqueued, Finish,
    FiredTick, GroupedCounts, HeartbeatResult, HistoryDelta, HistoryQuery, HistoryRow, JobId,
    JobQuery, JobRecord, Lease, NewJob, NodeInfo, NodeRecord, QueueChange, QueueInfo, Reschedule,
    Rescheduled, RescueReport, SaveReport, ScheduleDef, ScheduleFire, ScheduleRecord, StateCounts,
    Store, StoreError, WorkSignal,
};
use tokio::task::JoinHandle;

use crate::clock::{age_micros, delay_micros, micros};
use crate::error::{invalid, map_sqlx};
use crate::notify;
use crate::ops::Sql;
use crate::ops::{
    self, act, admin, claim, enqueue, grouped, history, leader, lease, nodes, queues, read,
    schedules,
};
use crate::options::{PostgresOptions, quoted_schema};
use crate::schema;
use crate::vacuum::DrainVacuum;

/// A job store in one schema of a PostgreSQL database.
///
/// Cloning is cheap and shares the store: one connection pool, one
/// wake-up signal, and (once a worker waits) one `LISTEN`ing connection
/// that wakes every waiter when another process makes jobs due. Any number of stores, in any number of
/// processes and machines, may use the same schema at once: claims never
/// hand one job to two of them (`FOR UPDATE SKIP LOCKED`), and every write
/// about an attempt is fenced by its lease token.
///
/// ```no_run
/// use steward_core::store::{NewJob, Store};
/// use steward_store_postgres::{PostgresOptions, PostgresStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresStore::connect(
///     "postgres://postgres@127.0.0.1:5432/test",
///     PostgresOptions::default(),
/// )
/// .await?;
/// store.migrate().await?;
/// let ids = store.enqueue(vec![NewJob::new("email", r#"{"to":"a@b.c"}"#)]).await?;
/// assert!(!ids[0].duplicate);
/// store.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    schema: String,
    quoted: String,
    sql: Sql,
    /// Wakes the workers waiting in `wait_for_work`: after this store's own
    /// writes, and from the listener task; and remembers when delayed work
    /// this store wrote or heard of comes due.
    signal: Arc<WorkSignal>,
    /// The `NOTIFY` channel of this schema (`notify::channel`).
    channel: String,
    /// The listener's own pool: one connection, connected lazily.
    listener_pool: PgPool,
    listener: Mutex<Listener>,
    /// Jobs claimed since the last vacuum, when to vacuum, and the vacuum
    /// in flight (`vacuum.rs`; stopped by `close` and on drop).
    vacuum: DrainVacuum,
}

/// The listener task's lifecycle: started by the first `wait_for_work`,
/// stopped by `close` or when the last clone of the store is dropped.
enum Listener {
    NotStarted,
    Running(JoinHandle<()>),
    Closed,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let slot = self
            .listener
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Listener::Running(task) = std::mem::replace(slot, Listener::Closed) {
            task.abort();
        }
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.inner.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`),
    /// for the store in the URL's `?schema=NAME` if it has one, else in
    /// `options.schema`. The URL's other parameters are the driver's
    /// (`sslmode`, `application_name`, `options[…]`, …); one it does not
    /// know is refused, named, rather than ignored.
    ///
    /// Fails with [`StoreError::Invalid`] for a bad URL, an unknown URL
    /// parameter or a bad schema name,
    /// [`StoreError::Unavailable`] if the server cannot be reached, and
    /// [`StoreError::SchemaTooNew`] if a newer binary migrated the schema.
    /// A schema not migrated yet connects fine; its operations fail with
    /// [`StoreError::NotMigrated`] until [`Store::migrate`] runs.
    ///
    /// ```no_run
    /// use steward_store_postgres::{PostgresOptions, PostgresStore};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), steward_core::store::StoreError> {
    /// let options = PostgresOptions { schema: "jobs".into(), pool_size: 4, ..PostgresOptions::default() };
    /// let store = PostgresStore::connect("postgres://postgres@127.0.0.1:5432/test", options).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(
        url: &str,
        mut options: PostgresOptions,
    ) -> Result<PostgresStore, StoreError> {
        let url = crate::url::parse_url(url)?;
        if let Some(schema) = url.schema {
            options.schema = schema;
        }
        let quoted = quoted_schema(&options.schema)?;
        let schema = options.schema.clone();
        let connect = PgConnectOptions::from_str(&url.connect)
            .map_err(|e| invalid(format!("bad PostgreSQL URL: {e}")))?
            .application_name("steward");
        let listener_pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(
                connect
                    .clone()
                    .application_name(notify::LISTENER_APPLICATION_NAME),
            );
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size.max(1))
            .min_connections(0)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await;
        let pool = match pool {
            Ok(pool) => pool,
            Err(err) => return Err(unreachable(err, &connect, &schema).await),
        };
        let sql = Sql::new(&quoted);
        let vacuum = DrainVacuum::new(options.vacuum_after, &connect, &sql.vacuum, &schema);
        let store = PostgresStore {
            inner: Arc::new(Inner {
                pool,
                sql,
                channel: notify::channel(&schema),
                schema,
                quoted,
                signal: Arc::new(WorkSignal::new()),
                listener_pool,
                listener: Mutex::new(Listener::NotStarted),
                vacuum,
            }),
        };
        let found = {
            let mut conn = store.conn().await?;
            schema::recorded_version(&mut conn, &store.inner.quoted)
                .await
                .map_err(|e| store.err(e))?
        };
        if let Err(e) = schema::check_not_newer(found) {
            store.close().await;
            return Err(e);
        }
        tracing::debug!(schema = %store.inner.schema, "postgres store connected");
        Ok(store)
    }

    /// The store's connection pool, for the caller's own transactions:
    /// write business rows and enqueue or complete jobs atomically with
    /// [`enqueue_in`](crate::enqueue_in) and
    /// [`complete_in`](crate::complete_in). Any pool on the same database
    /// works as well.
    ///
    /// ```no_run
    /// # async fn demo(store: steward_store_postgres::PostgresStore) -> Result<(), sqlx::Error> {
    /// let mut tx = store.pool().begin().await?;
    /// sqlx::query("CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY)")
    ///     .execute(&mut *tx)
    ///     .await?;
    /// tx.commit().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The schema the store lives in, as configured (unquoted).
    ///
    /// ```no_run
    /// # fn demo(store: &steward_store_postgres::PostgresStore) {
    /// println!("jobs in schema {}", store.schema());
    /// # }
    /// ```
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// Wakes this process's workers waiting in [`Store::wait_for_work`], as
    /// the store does itself after its own writes. Optional after
    /// committing a transaction that used [`enqueue_in`](crate::enqueue_in):
    /// its `NOTIFY`, delivered at the commit, wakes the workers of every
    /// process through their listeners; this call wakes this process's
    /// workers without waiting for that round trip.
    ///
    /// ```no_run
    /// # async fn demo(store: steward_store_postgres::PostgresStore) -> Result<(), Box<dyn std::error::Error>> {
    /// use steward_core::store::NewJob;
    /// let mut tx = store.pool().begin().await?;
    /// steward_store_postgres::enqueue_in(&mut tx, &store, vec![NewJob::new("email", "{}")]).await?;
    /// tx.commit().await?;
    /// store.notify_enqueued();
    /// # Ok(())
    /// # }
    /// ```
    pub fn notify_enqueued(&self) {
        self.inner.signal.wake();
    }

    /// Stops the listener task (if a worker started it) and closes the
    /// pools: waits for connections in use to come back, closes them all.
    /// Later operations on any clone fail with [`StoreError::Unavailable`];
    /// later waits only poll. Idempotent.
    ///
    /// ```no_run
    /// # async fn demo(store: steward_store_postgres::PostgresStore) {
    /// store.close().await;
    /// # }
    /// ```
    pub async fn close(&self) {
        let task = {
            let mut slot = self
                .inner
                .listener
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match std::mem::replace(&mut *slot, Listener::Closed) {
                Listener::Running(task) => Some(task),
                Listener::NotStarted | Listener::Closed => None,
            }
        };
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        self.inner.vacuum.stop().await;
        self.inner.listener_pool.close().await;
        self.inner.pool.close().await;
    }

    /// Counts a claim's jobs towards the next vacuum, which starts when due
    /// (`vacuum.rs`), unless the store is closed.
    fn after_claim(&self, got: usize, drained: bool) {
        if !self.inner.pool.is_closed() {
            self.inner.vacuum.claimed(got, drained);
        }
    }

    pub(crate) fn sql(&self) -> &Sql {
        &self.inner.sql
    }

    /// The schema's `NOTIFY` channel.
    pub(crate) fn channel(&self) -> &str {
        &self.inner.channel
    }

    /// Starts the listener task unless it runs already (or the store is
    /// closed).
    fn ensure_listener(&self) {
        let mut slot = self
            .inner
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Listener::NotStarted = *slot {
            *slot = Listener::Running(tokio::spawn(notify::listen(
                self.inner.listener_pool.clone(),
                self.inner.channel.clone(),
                self.inner.schema.clone(),
                Arc::clone(&self.inner.signal),
            )));
        }
    }

    pub(crate) fn err(&self, e: sqlx::Error) -> StoreError {
        map_sqlx(e, &self.inner.schema)
    }

    async fn conn(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        self.inner.pool.acquire().await.map_err(|e| self.err(e))
    }

    /// Runs `f` on a pooled connection, in autocommit: for operations that
    /// are one statement, atomic by themselves.
    async fn one<T>(
        &self,
        f: impl AsyncFnOnce(&mut sqlx::PgConnection, &Sql) -> Result<T, sqlx::Error>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn().await?;
        f(&mut conn, &self.inner.sql).await.map_err(|e| self.err(e))
    }

    /// Runs `f` in a transaction, committed if `f` succeeds (rolled back
    /// when dropped otherwise).
    async fn tx<T>(
        &self,
        f: impl AsyncFnOnce(&mut sqlx::PgConnection, &Sql) -> Result<T, sqlx::Error>,
    ) -> Result<T, StoreError> {
        let mut tx = self
            .inner
            .pool
            .begin_with(BEGIN)
            .await
            .map_err(|e| self.err(e))?;
        let value = f(&mut tx, &self.inner.sql).await.map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(value)
    }

    /// Runs `f` in one statement's autocommit if `single`, else in a
    /// transaction (saving the BEGIN/COMMIT round trips where they add
    /// nothing).
    async fn atomic<T>(
        &self,
        single: bool,
        f: impl AsyncFnOnce(&mut sqlx::PgConnection, &Sql) -> Result<T, sqlx::Error>,
    ) -> Result<T, StoreError> {
        if single {
            self.one(f).await
        } else {
            self.tx(f).await
        }
    }

    /// Prunes jobs finished more than the given ages (microseconds) ago.
    async fn prune_older_than(&self, completed_us: i64, dead_us: i64) -> Result<u64, StoreError> {
        let cutoffs = self
            .one(async |c, sql| admin::prune_cutoffs(c, sql, completed_us, dead_us).await)
            .await?;
        let mut deleted = 0;
        let mut after_id = 0;
        loop {
            let (n, last) = self
                .one(async |c, sql| admin::prune_step(c, sql, cutoffs, after_id).await)
                .await?;
            deleted += n;
            match last {
                Some(last) => after_id = last,
                None => return Ok(deleted),
            }
        }
    }
}

/// The store's own transactions run their statements back to back, so one
/// left idle is a worker paused or cut off half-way (SIGSTOP, a partition):
/// its row locks would hide the jobs it was claiming from every claim and
/// rescue, and block the rescue of rows it was finishing, until TCP gives up
/// (hours). The server ends such a transaction after this long instead; the
/// worker, if it comes back, sees an error and retries. Same round trip as a
/// plain `BEGIN` (one simple query), and only for the store's transactions,
/// not for callers' (`pool()`).
const BEGIN: &str = "BEGIN; SET LOCAL idle_in_transaction_session_timeout = '10s'";

impl Store for PostgresStore {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        schema::migrate(&mut conn, &self.inner.schema, &self.inner.quoted).await
    }

    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, StoreError> {
        enqueue::validate(&jobs)?;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        // Delayed jobs: this process's workers wake when the earliest comes
        // due (noted once the write is done: a due time counted from before
        // it would come before the job's `run_at`, which the server counts
        // from its transaction, and the wait it ends would find nothing to
        // claim), and other processes' hear when that is (`notify::send_due`).
        let later = steward_core::store::earliest_job_due(&jobs);
        if let [job] = jobs.as_slice() {
            if job.unique.is_none() {
                let channel = self.channel();
                let payload = notify::payload(&std::iter::once(job.queue.clone()).collect());
                let enqueued = self
                    .one(async |c, sql| {
                        let enqueued = enqueue::insert_one(c, sql, job, channel, &payload).await?;
                        // After the insert's own commit: the job exists
                        // when the news arrives.
                        if let Some(delay) = later {
                            notify::send_due(c, channel, delay).await?;
                        }
                        Ok(enqueued)
                    })
                    .await?;
                self.inner.signal.jobs_due(&jobs);
                self.notify_enqueued();
                return Ok(vec![enqueued]);
            }
        }
        // A job that may be due at once is announced with a NOTIFY, a second
        // statement: both then go in one transaction, which commits (and
        // waits for the WAL flush) once, instead of twice in autocommit.
        let may_notify = jobs.iter().any(|j| j.delay.is_none_or(|d| d.is_zero()));
        let single = enqueue::is_one_statement(&jobs) && !may_notify && later.is_none();
        let channel = self.channel();
        let inserted = self
            .atomic(single, async |c, sql| {
                let inserted = enqueue::insert(c, sql, &jobs, enqueue::Bulk::Copy).await?;
                notify::send(c, channel, &inserted.due_queues).await?;
                if let Some(delay) = later {
                    notify::send_due(c, channel, delay).await?;
                }
                Ok(inserted)
            })
            .await?;
        self.inner.signal.jobs_due(&jobs);
        if inserted.any {
            self.notify_enqueued();
        }
        Ok(inserted.ids)
    }

    async fn claim(&self, request: ClaimRequest) -> Result<Vec<ClaimedJob>, StoreError> {
        let lease_us = micros("lease", request.lease)?;
        let queues: Vec<_> = request.queues.iter().filter(|q| q.limit > 0).collect();
        if queues.is_empty() {
            return Ok(Vec::new());
        }
        // Several queues in one transaction, so a failure half-way does not
        // leave jobs claimed that the caller never hears of.
        let (claimed, drained) = self
            .atomic(queues.len() == 1, async |c, sql| {
                let mut out = claim::Claimed::default();
                let mut suspects = request.max_suspects;
                // Every queue came back with fewer jobs than asked.
                let mut drained = true;
                for q in &queues {
                    let got =
                        claim::claim_queue(c, sql, &request, lease_us, q, &mut suspects, &mut out)
                            .await?;
                    drained &= got < q.limit as usize;
                }
                Ok((out, drained))
            })
            .await?;
        self.after_claim(claimed.jobs.len() + claimed.unreadable.len(), drained);
        if !claimed.unreadable.is_empty() {
            steward_core::store::fail_unreadable(self, claimed.unreadable).await;
        }
        Ok(claimed.jobs)
    }

    async fn heartbeat(
        &self,
        leases: Vec<Lease>,
        lease: Duration,
    ) -> Result<Vec<HeartbeatResult>, StoreError> {
        let lease_us = micros("lease", lease)?;
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        self.one(async |c, sql| lease::heartbeat(c, sql, &leases, lease_us).await)
            .await
    }

    async fn finish(&self, batch: Vec<Finish>) -> Result<Vec<bool>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let later = steward_core::store::earliest_requeue(&batch);
        let single = steward_core::store::batch::one_statement(&batch) && later.is_none();
        let channel = self.channel();
        let (applied, due) = self
            .atomic(single, async |c, sql| {
                let (applied, due) = lease::finish(c, sql, &batch).await?;
                notify::send(c, channel, &due).await?;
                if let Some(delay) = later {
                    notify::send_due(c, channel, delay).await?;
                }
                Ok((applied, due))
            })
            .await?;
        // Once written, as for delayed enqueues: a retry or snooze is due
        // its delay after the server's clock at the write.
        self.inner.signal.finishes_due(&batch);
        if !due.is_empty() {
            self.notify_enqueued();
        }
        Ok(applied)
    }

    async fn checkpoint(&self, lease: Lease, state: String) -> Result<(), StoreError> {
        let saved = self
            .one(async |c, sql| lease::checkpoint(c, sql, lease, &state).await)
            .await?;
        if saved {
            Ok(())
        } else {
            Err(StoreError::LeaseLost { id: lease.id })
        }
    }

    async fn release(&self, leases: Vec<Lease>) -> Result<u64, StoreError> {
        if leases.is_empty() {
            return Ok(0);
        }
        // Released jobs whose cancel was requested are then cancelled: two
        // statements, one transaction.
        let channel = self.channel();
        let released = self
            .tx(async |c, sql| {
                let (released, queues) = lease::release(c, sql, &leases).await?;
                notify::send(c, channel, &queues).await?;
                Ok(released)
            })
            .await?;
        if released > 0 {
            self.notify_enqueued();
        }
        Ok(released)
    }

    async fn cancel(&self, id: JobId) -> Result<CancelResult, StoreError> {
        self.one(async |c, sql| admin::cancel(c, sql, id).await)
            .await
    }

    async fn retry(&self, id: JobId) -> Result<bool, StoreError> {
        let channel = self.channel();
        let retried = self
            .one(async |c, sql| {
                let queue = admin::retry(c, sql, id).await?;
                notify::send(c, channel, &queue.iter().cloned().collect()).await?;
                Ok(queue.is_some())
            })
            .await?;
        if retried {
            self.notify_enqueued();
        }
        Ok(retried)
    }

    async fn rescue_expired(&self, max_rescues: u32) -> Result<RescueReport, StoreError> {
        let channel = self.channel();
        let report = self
            .tx(async |c, sql| {
                let (report, queues) = admin::rescue(c, sql, max_rescues).await?;
                notify::send(c, channel, &queues).await?;
                Ok(report)
            })
            .await?;
        if report.rescued > 0 {
            self.notify_enqueued();
        }
        Ok(report)
    }

    async fn prune(
        &self,
        completed_older_than: Duration,
        dead_older_than: Duration,
    ) -> Result<u64, StoreError> {
        self.prune_older_than(
            age_micros(completed_older_than),
            age_micros(dead_older_than),
        )
        .await
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        self.one(async |c, sql| read::job(c, sql, id).await).await
    }

    async fn counts(&self) -> Result<StateCounts, StoreError> {
        self.one(async |c, sql| read::counts(c, sql).await).await
    }

    async fn try_lead(&self, role: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let ttl_us = leader::validate(role, holder, ttl)?;
        self.one(async |c, sql| leader::lead(c, sql, role, holder, ttl_us).await)
            .await
    }

    async fn resign(&self, role: &str, holder: &str) -> Result<(), StoreError> {
        self.one(async |c, sql| leader::resign(c, sql, role, holder).await)
            .await
    }

    async fn save_schedules(
        &self,
        defs: Vec<ScheduleDef>,
        remove_undeclared: bool,
    ) -> Result<SaveReport, StoreError> {
        let rows = schedules::validate(&defs)?;
        self.tx(async |c, sql| schedules::save(c, sql, &rows, remove_undeclared).await)
            .await
    }

    async fn schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        self.one(async |c, sql| schedules::list(c, sql).await).await
    }

    async fn schedule(&self, id: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        self.one(async |c, sql| schedules::get(c, sql, id).await)
            .await
    }

    async fn pause_schedule(&self, id: &str, paused: bool) -> Result<bool, StoreError> {
        self.one(async |c, sql| schedules::pause(c, sql, id, paused).await)
            .await
    }

    async fn delete_schedule(&self, id: &str) -> Result<bool, StoreError> {
        // One statement: the ticks go by the foreign key's cascade.
        self.one(async |c, sql| schedules::delete(c, sql, id).await)
            .await
    }

    async fn due_schedules(&self, limit: u32) -> Result<DueSchedules, StoreError> {
        // A transaction so that the due list and the next due time are
        // judged by one `now()`.
        self.tx(async |c, sql| schedules::due(c, sql, limit).await)
            .await
    }

    async fn fire_schedule(
        &self,
        fire: ScheduleFire,
    ) -> Result<Option<Vec<FiredTick>>, StoreError> {
        steward_core::store::validate_schedule_fire(&fire)?;
        let channel = self.channel();
        let fired = self
            .tx(async |c, sql| {
                let Some(fired) = schedules::fire(c, sql, &fire).await? else {
                    return Ok(None);
                };
                // Announced as `Store::enqueue` announces its jobs, inside
                // the transaction: delivered only if the step commits.
                notify::send(c, channel, &fired.due_queues).await?;
                if let Some(delay) = steward_core::store::earliest_job_due(&fired.jobs) {
                    notify::send_due(c, channel, delay).await?;
                }
                Ok(Some(fired))
            })
            .await?;
        let Some(fired) = fired else {
            return Ok(None);
        };
        self.inner.signal.jobs_due(&fired.jobs);
        if !fired.jobs.is_empty() {
            self.notify_enqueued();
        }
        Ok(Some(fired.ticks))
    }

    async fn schedule_fires(&self, id: &str, limit: u32) -> Result<Vec<FiredTick>, StoreError> {
        self.one(async |c, sql| schedules::fires(c, sql, id, limit).await)
            .await
    }

    async fn jobs(&self, query: JobQuery) -> Result<Vec<JobRecord>, StoreError> {
        query.validate()?;
        self.one(async |c, sql| ops::query::jobs(c, sql, &query).await)
            .await
    }

    async fn time_travel(&self, by: Duration) -> Result<u64, StoreError> {
        if by.is_zero() {
            return Ok(0);
        }
        // Capped like a delay: more than the whole range of times, so an
        // absurd `by` saturates at the earliest time (see `admin.rs`).
        let by_us = delay_micros(by);
        let channel = self.channel();
        let travelled = self
            .tx(async |c, sql| {
                let travelled = admin::time_travel(c, sql, by_us).await?;
                // Announced as other writes that make work due are, inside
                // the transaction: other processes' workers hear of the jobs
                // due now, and of when the earliest one still ahead is due
                // (the time they noted at its enqueue is now too late).
                notify::send(c, channel, &travelled.due_queues).await?;
                if let Some(delay) = travelled.next_due {
                    notify::send_due(c, channel, delay).await?;
                }
                Ok(travelled)
            })
            .await?;
        if let Some(delay) = travelled.next_due {
            self.inner.signal.due_in(delay);
        }
        if !travelled.due_queues.is_empty() {
            self.notify_enqueued();
        }
        Ok(travelled.moved)
    }

    async fn record_history(&self, deltas: Vec<HistoryDelta>) -> Result<(), StoreError> {
        steward_core::store::validate_history(&deltas)?;
        if deltas.is_empty() {
            return Ok(());
        }
        self.tx(async |c, sql| history::record(c, sql, deltas).await)
            .await
    }

    async fn history(&self, query: HistoryQuery) -> Result<Vec<HistoryRow>, StoreError> {
        query.validate()?;
        let since_us = age_micros(query.since);
        self.one(async |c, sql| history::read(c, sql, since_us, &query).await)
            .await
    }

    async fn prune_history(&self, older_than: Duration) -> Result<u64, StoreError> {
        let age_us = age_micros(older_than);
        self.one(async |c, sql| history::prune(c, sql, age_us).await)
            .await
    }

    async fn pause_queue(&self, queue: &str) -> Result<QueueChange, StoreError> {
        steward_core::store::validate_queue_name(queue)?;
        self.one(async |c, sql| queues::set_paused(c, sql, queue, true).await)
            .await
    }

    async fn resume_queue(&self, queue: &str) -> Result<QueueChange, StoreError> {
        steward_core::store::validate_queue_name(queue)?;
        self.one(async |c, sql| queues::set_paused(c, sql, queue, false).await)
            .await
    }

    async fn paused_queues(&self) -> Result<Vec<String>, StoreError> {
        self.one(async |c, sql| queues::paused(c, sql).await).await
    }

    async fn queues(&self) -> Result<Vec<QueueInfo>, StoreError> {
        self.one(async |c, sql| queues::list(c, sql).await).await
    }

    async fn grouped_counts(&self) -> Result<GroupedCounts, StoreError> {
        self.one(async |c, sql| grouped::grouped_counts(c, sql).await)
            .await
    }

    /// Waits for a wake-up, the earliest due time noted, or `max_wait`.
    /// Wake-ups come from this store's own writes (in memory) and from the
    /// listener task, which the first wait starts: a `NOTIFY` from any
    /// process's write on this schema, and every (re)connection of the
    /// listener, which may have missed some. Due times come from this
    /// store's own delayed enqueues, retries and snoozes, and from other
    /// stores' due-time notifications (`notify.rs`).
    async fn act_on_jobs(&self, chunk: ActOn) -> Result<Vec<Acted>, StoreError> {
        chunk.validate()?;
        if chunk.ids.is_empty() {
            return Ok(Vec::new());
        }
        let channel = self.channel();
        let done = self
            .tx(async |c, sql| {
                let done = act::act(c, sql, &chunk).await?;
                // Announced as a single retry is, inside the transaction.
                notify::send(c, channel, &done.retried).await?;
                Ok(done)
            })
            .await?;
        if !done.retried.is_empty() {
            self.notify_enqueued();
        }
        Ok(done.acted)
    }

    async fn reschedule(&self, id: JobId, change: Reschedule) -> Result<Rescheduled, StoreError> {
        change.validate()?;
        let channel = self.channel();
        let (done, moved) = self
            .tx(async |c, sql| {
                let moved = act::reschedule(c, sql, id, &change).await?;
                // Announced as an enqueue is: due now to the workers, a
                // time ahead to the other processes' waits.
                match &moved.1 {
                    Some((queue, None)) => {
                        notify::send(c, channel, &BTreeSet::from([queue.clone()])).await?
                    }
                    Some((_, Some(delay))) => notify::send_due(c, channel, *delay).await?,
                    None => {}
                }
                Ok(moved)
            })
            .await?;
        match moved {
            Some((_, None)) => self.notify_enqueued(),
            Some((_, Some(delay))) => self.inner.signal.due_in(delay),
            None => {}
        }
        Ok(done)
    }

    async fn register_node(&self, info: NodeInfo, ttl: Duration) -> Result<(), StoreError> {
        let report = nodes::validate(info, ttl)?;
        self.one(async |c, sql| nodes::register(c, sql, &report).await)
            .await
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        self.one(async |c, sql| nodes::list(c, sql).await).await
    }

    async fn node(&self, id: &str) -> Result<Option<NodeRecord>, StoreError> {
        self.one(async |c, sql| nodes::get(c, sql, id).await).await
    }

    async fn remove_node(&self, id: &str) -> Result<bool, StoreError> {
        self.one(async |c, sql| nodes::remove(c, sql, id).await)
            .await
    }

    async fn wait_for_work(&self, max_wait: Duration) {
        self.ensure_listener();
        self.inner.signal.wait(max_wait).await;
    }

    async fn close(&self) {
        // The inherent `close`, kept for callers without the trait in scope.
        PostgresStore::close(self).await;
    }
}

/// The error for a pool that could not open its first connection, naming
/// the server and, when the pool only timed out, why: one direct attempt,
/// bounded, gives the cause the pool's retries swallowed (a refused
/// connection, an unknown host, a rejected password).
async fn unreachable(err: sqlx::Error, connect: &PgConnectOptions, schema: &str) -> StoreError {
    let server = format!(
        "PostgreSQL at {}:{}",
        connect.get_host(),
        connect.get_port()
    );
    let cause = if matches!(err, sqlx::Error::PoolTimedOut) {
        let attempt = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            sqlx::ConnectOptions::connect(connect),
        )
        .await;
        match attempt {
            Ok(Err(direct)) => Some(direct.to_string()),
            _ => None,
        }
    } else {
        None
    };
    match map_sqlx(err, schema) {
        StoreError::Unavailable { message } => StoreError::Unavailable {
            message: match cause {
                Some(cause) => format!("{server}: {cause} ({message})"),
                None => format!("{server}: {message}"),
            },
        },
        other => other,
    }
}
