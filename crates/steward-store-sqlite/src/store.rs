//! [`SqliteStore`]: opening the database and the [`Store`] implementation.

use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection as _, SqliteConnection, SqlitePool};
use steward_core::store::{
    ActOn, Acted, CancelResult, ClaimRequest, ClaimedJob, DueSchedules, Enqueued, Finish,
    FiredTick, GroupedCounts, HeartbeatResult, HistoryDelta, HistoryQuery, HistoryRow, JobId,
    JobQuery, JobRecord, Lease, NewJob, NodeInfo, NodeRecord, QueueChange, QueueInfo, Reschedule,
    Rescheduled, RescueReport, SaveReport, ScheduleDef, ScheduleFire, ScheduleRecord, StateCounts,
    Store, StoreError, WorkSignal,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::{invalid, map_sqlx};
use crate::ops::{
    self, admin, claim, enqueue, grouped, history, leader, nodes, queues, read, schedules,
};
use crate::options::{SqliteOptions, Synchronous};
use crate::sql::{duration_ms, earlier_ms, now_ms, span_ms};
use crate::writer::{Op, Reply, Writer};
use crate::{checkpoint, schema, watch};

/// A job store on one SQLite file.
///
/// Cloning is cheap and shares the store: one writer task, one read pool.
/// Call [`Store::migrate`] once after opening a new database, and
/// [`SqliteStore::close`] at shutdown to finish queued writes and close the
/// file cleanly.
///
/// ```
/// use steward_core::store::{NewJob, Store};
/// use steward_store_sqlite::{SqliteOptions, SqliteStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("jobs.db");
/// let store = SqliteStore::open(&path.display().to_string(), SqliteOptions::default()).await?;
/// store.migrate().await?;
/// let ids = store.enqueue(vec![NewJob::new("email", r#"{"to":"a@b.c"}"#)]).await?;
/// assert!(!ids[0].duplicate);
/// store.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<Op>,
    pool: SqlitePool,
    /// Wakes the workers waiting in `wait_for_work`: after this store's
    /// commits, from the WAL watch, and when work it heard of comes due.
    signal: Arc<WorkSignal>,
    file: Arc<str>,
    shutdown: CancellationToken,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The background checkpointer, ended and awaited by `close`.
    checkpointer: Mutex<Option<JoinHandle<()>>>,
    /// The watch on the WAL that hears other processes' commits
    /// (`watch.rs`).
    watch: Mutex<Watch>,
}

/// The WAL watch's lifecycle: started by the first `wait_for_work`,
/// stopped by `close` (or when the last clone is dropped).
enum Watch {
    NotStarted,
    /// Watching for as long as this is kept.
    Running {
        _watcher: notify::RecommendedWatcher,
    },
    /// It could not start, or the store is closed: workers poll.
    Off,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Without `close`, the writer still stops on its own: it sees the
        // channel closed (this was the last sender) or this token.
        self.shutdown.cancel();
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("file", &self.inner.file)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it if missing, unless
    /// [`SqliteOptions::create_if_missing`] is off) the database at `url_or_path`: either a
    /// `sqlite://PATH` URL (query options such as `?mode=ro` are honoured)
    /// or a plain file path. Sets WAL mode, `synchronous` and `busy_timeout`,
    /// starts the writer task and prepares the read pool.
    ///
    /// Refuses a database migrated by a newer binary
    /// ([`StoreError::SchemaTooNew`]) and in-memory databases
    /// ([`StoreError::Invalid`]: the writer and the readers must share one
    /// file). A database not migrated yet opens fine; its operations fail
    /// with [`StoreError::NotMigrated`] until [`Store::migrate`] runs.
    ///
    /// Must be called within a tokio runtime (it spawns the writer task).
    ///
    /// ```
    /// use steward_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), steward_core::store::StoreError> {
    /// # let dir = tempfile::tempdir().expect("a temp dir for the example");
    /// # let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
    /// let options = SqliteOptions { synchronous: Synchronous::Full, ..SqliteOptions::default() };
    /// let store = SqliteStore::open(&url, options).await?;
    /// # store.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn open(
        url_or_path: &str,
        options: SqliteOptions,
    ) -> Result<SqliteStore, StoreError> {
        let connect = connect_options(url_or_path, &options)?;
        let file: Arc<str> = Arc::from(connect.get_filename().display().to_string());
        let mut conn = SqliteConnection::connect_with(&connect)
            .await
            .map_err(|e| map_sqlx(e, &file))?;
        let schema_ok = match schema::check(&mut conn, &file).await {
            Ok(ok) => ok,
            Err(e) => {
                let _ = conn.close().await;
                return Err(e);
            }
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(options.read_pool_size.max(1))
            .min_connections(0)
            .acquire_timeout(options.busy_timeout.max(Duration::from_secs(1)))
            .connect_lazy_with(connect.clone());
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let signal = Arc::new(WorkSignal::new());
        let shutdown = CancellationToken::new();
        let writer = Writer::new(
            conn,
            connect,
            Arc::clone(&file),
            rx,
            Arc::clone(&signal),
            shutdown.clone(),
            options.max_batch_items,
            schema_ok,
        );
        let handle = tokio::spawn(writer.run());
        let checkpointer = tokio::spawn(checkpoint::run(
            pool.clone(),
            Arc::clone(&file),
            shutdown.clone(),
        ));
        tracing::debug!(file = &*file, "sqlite store opened");
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                tx,
                pool,
                signal,
                file,
                shutdown,
                writer: Mutex::new(Some(handle)),
                checkpointer: Mutex::new(Some(checkpointer)),
                watch: Mutex::new(Watch::NotStarted),
            }),
        })
    }

    /// A connection pool on the same file, for the caller's own
    /// transactions: write business rows and enqueue jobs atomically with
    /// [`enqueue_in`](crate::enqueue_in). It is also the store's read pool.
    ///
    /// Begin write transactions with `BEGIN IMMEDIATE`
    /// ([`SqlitePool::begin_with`]): a plain (deferred) `BEGIN` that reads
    /// before it writes can fail with `SQLITE_BUSY` at once, without waiting
    /// for `busy_timeout`, if the store's writer committed in between.
    ///
    /// ```
    /// # use steward_store_sqlite::{SqliteOptions, SqliteStore};
    /// # async fn demo(store: SqliteStore) -> Result<(), sqlx::Error> {
    /// let mut tx = store.pool().begin_with("BEGIN IMMEDIATE").await?;
    /// sqlx::query("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY)")
    ///     .execute(&mut *tx)
    ///     .await?;
    /// tx.commit().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    /// The database file's path, as opened.
    ///
    /// ```
    /// # fn demo(store: &steward_store_sqlite::SqliteStore) {
    /// println!("jobs in {}", store.file());
    /// # }
    /// ```
    pub fn file(&self) -> &str {
        &self.inner.file
    }

    /// Wakes this process's workers waiting in [`Store::wait_for_work`], as
    /// the store does itself after its own commits. Call it after committing
    /// a transaction that used [`enqueue_in`](crate::enqueue_in): the store
    /// cannot see a commit made on the caller's connection, and without the
    /// call the new jobs wait for the workers' next poll (`max_wait`).
    ///
    /// ```
    /// # async fn demo(store: steward_store_sqlite::SqliteStore) -> Result<(), Box<dyn std::error::Error>> {
    /// use steward_core::store::NewJob;
    /// let mut tx = store.pool().begin_with("BEGIN IMMEDIATE").await?;
    /// steward_store_sqlite::enqueue_in(&mut tx, vec![NewJob::new("email", "{}")]).await?;
    /// tx.commit().await?;
    /// store.notify_enqueued();
    /// # Ok(())
    /// # }
    /// ```
    pub fn notify_enqueued(&self) {
        self.inner.signal.wake();
    }

    /// Stops the writer after it has run the operations already queued,
    /// closes the write connection and the pool. Later operations on any
    /// clone fail with [`StoreError::Unavailable`]. Idempotent.
    ///
    /// ```
    /// # async fn demo(store: steward_store_sqlite::SqliteStore) {
    /// store.close().await;
    /// # }
    /// ```
    pub async fn close(&self) {
        self.inner.shutdown.cancel();
        *self
            .inner
            .watch
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Watch::Off;
        // The checkpointer first: it reads through the pool closed below.
        for (task, slot) in [
            ("checkpoint", &self.inner.checkpointer),
            ("writer", &self.inner.writer),
        ] {
            let handle = slot
                .lock()
                .map(|mut slot| slot.take())
                .unwrap_or_else(|poisoned| poisoned.into_inner().take());
            if let Some(handle) = handle {
                if let Err(e) = handle.await {
                    tracing::error!(file = &*self.inner.file, task, error = %e, "sqlite store task failed");
                }
            }
        }
        self.inner.pool.close().await;
    }

    /// Sends one op to the writer and waits for its answer.
    async fn call<T>(&self, op: impl FnOnce(Reply<T>) -> Op) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .tx
            .send(op(Reply::new(reply)))
            .await
            .map_err(|_| self.closed())?;
        answer.await.map_err(|_| StoreError::Unavailable {
            message: format!(
                "{}: the writer dropped the operation (it panicked; see the log)",
                self.inner.file
            ),
        })?
    }

    /// Starts the WAL watch if it is not running yet (see `watch.rs`).
    fn ensure_watch(&self) {
        let mut slot = self
            .inner
            .watch
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !matches!(*slot, Watch::NotStarted) {
            return;
        }
        match watch::start(&self.inner.file, Arc::clone(&self.inner.signal)) {
            Ok(watcher) => {
                *slot = Watch::Running { _watcher: watcher };
                // A commit by another process before the watch began was
                // not heard: let the workers look.
                self.inner.signal.wake();
            }
            Err(e) => {
                *slot = Watch::Off;
                tracing::warn!(
                    file = &*self.inner.file, error = %e,
                    "cannot watch the database for other processes' commits; \
                     their jobs are found by polling"
                );
            }
        }
    }

    fn closed(&self) -> StoreError {
        StoreError::Unavailable {
            message: format!("{}: the store is closed", self.inner.file),
        }
    }

    async fn read<T>(
        &self,
        f: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, StoreError> {
        let file = &self.inner.file;
        let mut conn = self
            .inner
            .pool
            .acquire()
            .await
            .map_err(|e| map_sqlx(e, file))?;
        f(&mut conn).await.map_err(|e| map_sqlx(e, file))
    }
}

/// The connect options for `url_or_path`, with the store's settings.
fn connect_options(
    url_or_path: &str,
    options: &SqliteOptions,
) -> Result<SqliteConnectOptions, StoreError> {
    let base = if url_or_path.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(url_or_path)
            .map_err(|e| invalid(format!("bad SQLite URL `{url_or_path}`: {e}")))?
    } else {
        SqliteConnectOptions::new().filename(url_or_path)
    };
    let name = base.get_filename().to_string_lossy();
    // sqlx names its in-memory databases `file:sqlx-in-memory-N`.
    if name.is_empty()
        || name == ":memory:"
        || name.starts_with("file:sqlx-in-memory")
        || name.contains("mode=memory")
    {
        return Err(invalid(format!(
            "`{url_or_path}` is an in-memory database; the store needs a file \
             (its writer and readers are separate connections)"
        )));
    }
    Ok(base
        .create_if_missing(options.create_if_missing)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match options.synchronous {
            Synchronous::Normal => SqliteSynchronous::Normal,
            Synchronous::Full => SqliteSynchronous::Full,
        })
        .busy_timeout(options.busy_timeout)
        // Keep the WAL file from staying at its high-water mark after a
        // burst (it is truncated to this size at checkpoints).
        .pragma("journal_size_limit", "67108864")
        // 16 MiB of page cache per connection (the default is 2 MiB): the
        // indexes of a busy queue stay in memory.
        .pragma("cache_size", "-16384")
        // Reads through a memory map instead of read() copies: the largest
        // single gain measured for claim + complete (docs/performance.md).
        // 256 MiB of address space, not of memory: pages are the file's.
        .pragma("mmap_size", "268435456")
        // Checkpoint every ~40 MiB of WAL instead of ~4 MiB: hot pages (the
        // claim index, recently claimed rows) are rewritten by many commits
        // and copied to the database file once per checkpoint, not each time.
        .pragma("wal_autocheckpoint", "10000")
        // Small ephemeral tables (IN lists, json_each) stay in memory.
        .pragma("temp_store", "memory")
        // The driver streams rows from its thread through a channel of this
        // many; a claim returning more than the default 50 would stall the
        // statement half-way until the reader catches up.
        .row_buffer_size(1024))
}

impl Store for SqliteStore {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.call(Op::Migrate).await
    }

    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, StoreError> {
        enqueue::validate(&jobs)?;
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        self.call(|r| Op::Enqueue(jobs, r)).await
    }

    async fn claim(&self, request: ClaimRequest) -> Result<Vec<ClaimedJob>, StoreError> {
        let lease_ms = duration_ms("lease", request.lease)?;
        if request.queues.iter().all(|q| q.limit == 0) {
            return Ok(Vec::new());
        }
        let leases = self
            .call(|r| Op::Claim(request.clone(), lease_ms, r))
            .await?;
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        // The jobs are read off the writer (see `ops::claim`). If that read
        // fails, the claim is given back at once, as a release (not run, no
        // attempt used), rather than left running until the lease expires.
        match self
            .read(async |conn| claim::details(conn, &request, &leases).await)
            .await
        {
            Ok((jobs, unreadable)) => {
                if !unreadable.is_empty() {
                    steward_core::store::fail_unreadable(self, unreadable).await;
                }
                Ok(jobs)
            }
            Err(e) => {
                if let Err(release) = self.release(leases).await {
                    tracing::warn!(file = &*self.inner.file, error = %release, "could not give back a claim whose jobs could not be read; they run again when their lease expires");
                }
                Err(e)
            }
        }
    }

    async fn heartbeat(
        &self,
        leases: Vec<Lease>,
        lease: Duration,
    ) -> Result<Vec<HeartbeatResult>, StoreError> {
        let lease_ms = duration_ms("lease", lease)?;
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        self.call(|r| Op::Heartbeat(leases, lease_ms, r)).await
    }

    async fn finish(&self, batch: Vec<Finish>) -> Result<Vec<bool>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        self.call(|r| Op::Finish(batch, r)).await
    }

    async fn checkpoint(&self, lease: Lease, state: String) -> Result<(), StoreError> {
        self.call(|r| Op::Checkpoint(lease, state, r)).await
    }

    async fn release(&self, leases: Vec<Lease>) -> Result<u64, StoreError> {
        if leases.is_empty() {
            return Ok(0);
        }
        self.call(|r| Op::Release(leases, r)).await
    }

    async fn cancel(&self, id: JobId) -> Result<CancelResult, StoreError> {
        self.call(|r| Op::Cancel(id, r)).await
    }

    async fn retry(&self, id: JobId) -> Result<bool, StoreError> {
        self.call(|r| Op::Retry(id, r)).await
    }

    async fn rescue_expired(&self, max_rescues: u32) -> Result<RescueReport, StoreError> {
        self.call(|r| Op::Rescue(max_rescues, r)).await
    }

    async fn prune(
        &self,
        completed_older_than: Duration,
        dead_older_than: Duration,
    ) -> Result<u64, StoreError> {
        // Candidates are found on a read connection (a table scan, see
        // `admin::prune_candidates`) and deleted by id in small writer
        // steps, so neither the scan nor a huge delete holds up other writes.
        // The cutoffs are fixed once, on the store's clock, so every step
        // of one prune judges by the same ones.
        let now = now_ms();
        let completed_before = earlier_ms(now, completed_older_than);
        let dead_before = earlier_ms(now, dead_older_than);
        let mut deleted = 0;
        let mut after_id = 0;
        loop {
            let ids = self
                .read(async |conn| {
                    admin::prune_candidates(conn, completed_before, dead_before, after_id).await
                })
                .await?;
            let Some(&last) = ids.last() else {
                return Ok(deleted);
            };
            after_id = last;
            let full = ids.len() as i64 >= admin::PRUNE_CHUNK;
            deleted += self
                .call(|reply| Op::Prune {
                    ids,
                    completed_before,
                    dead_before,
                    reply,
                })
                .await?;
            if !full {
                return Ok(deleted);
            }
        }
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        self.read(async |conn| read::job(conn, id).await).await
    }

    async fn counts(&self) -> Result<StateCounts, StoreError> {
        self.read(async |conn| read::counts(conn).await).await
    }

    async fn try_lead(&self, role: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let ttl_ms = leader::validate(role, holder, ttl)?;
        self.call(|reply| Op::Lead {
            role: role.to_string(),
            holder: holder.to_string(),
            ttl_ms,
            reply,
        })
        .await
    }

    async fn resign(&self, role: &str, holder: &str) -> Result<(), StoreError> {
        self.call(|reply| Op::Resign {
            role: role.to_string(),
            holder: holder.to_string(),
            reply,
        })
        .await
    }

    async fn save_schedules(
        &self,
        defs: Vec<ScheduleDef>,
        remove_undeclared: bool,
    ) -> Result<SaveReport, StoreError> {
        steward_core::store::validate_schedule_defs(&defs)?;
        self.call(|reply| Op::SaveSchedules {
            defs,
            remove_undeclared,
            reply,
        })
        .await
    }

    async fn schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        self.read(async |conn| schedules::list(conn).await).await
    }

    async fn schedule(&self, id: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        self.read(async |conn| schedules::get(conn, id).await).await
    }

    async fn pause_schedule(&self, id: &str, paused: bool) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.call(|reply| Op::PauseSchedule { id, paused, reply })
            .await
    }

    async fn delete_schedule(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.call(|reply| Op::DeleteSchedule { id, reply }).await
    }

    async fn due_schedules(&self, limit: u32) -> Result<DueSchedules, StoreError> {
        // The process clock is the store's clock here (see `sql::now_ms`).
        self.read(async |conn| schedules::due(conn, now_ms(), limit).await)
            .await
    }

    async fn fire_schedule(
        &self,
        fire: ScheduleFire,
    ) -> Result<Option<Vec<FiredTick>>, StoreError> {
        steward_core::store::validate_schedule_fire(&fire)?;
        self.call(|reply| Op::FireSchedule(fire, reply)).await
    }

    async fn schedule_fires(&self, id: &str, limit: u32) -> Result<Vec<FiredTick>, StoreError> {
        self.read(async |conn| schedules::fires(conn, id, limit).await)
            .await
    }

    async fn jobs(&self, query: JobQuery) -> Result<Vec<JobRecord>, StoreError> {
        query.validate()?;
        self.read(async |conn| ops::query::jobs(conn, &query).await)
            .await
    }

    async fn time_travel(&self, by: Duration) -> Result<u64, StoreError> {
        if by.is_zero() {
            return Ok(0);
        }
        let by_ms = span_ms(by);
        let travelled = self.call(|reply| Op::TimeTravel { by_ms, reply }).await?;
        // The writer woke the workers if jobs are due now; the earliest one
        // still ahead is due sooner than the time noted at its enqueue.
        if let Some(delay) = travelled.next_due {
            self.inner.signal.due_in(delay);
        }
        Ok(travelled.moved)
    }

    async fn record_history(&self, deltas: Vec<HistoryDelta>) -> Result<(), StoreError> {
        steward_core::store::validate_history(&deltas)?;
        if deltas.is_empty() {
            return Ok(());
        }
        self.call(|reply| Op::RecordHistory(deltas, reply)).await
    }

    async fn history(&self, query: HistoryQuery) -> Result<Vec<HistoryRow>, StoreError> {
        query.validate()?;
        // The process clock is the store's clock here (see `sql::now_ms`).
        self.read(async |conn| history::read(conn, now_ms(), &query).await)
            .await
    }

    async fn prune_history(&self, older_than: Duration) -> Result<u64, StoreError> {
        self.call(|reply| Op::PruneHistory(older_than, reply)).await
    }

    async fn pause_queue(&self, queue: &str) -> Result<QueueChange, StoreError> {
        steward_core::store::validate_queue_name(queue)?;
        let queue = queue.to_string();
        self.call(|reply| Op::SetQueuePaused {
            queue,
            paused: true,
            reply,
        })
        .await
    }

    async fn resume_queue(&self, queue: &str) -> Result<QueueChange, StoreError> {
        steward_core::store::validate_queue_name(queue)?;
        let queue = queue.to_string();
        self.call(|reply| Op::SetQueuePaused {
            queue,
            paused: false,
            reply,
        })
        .await
    }

    async fn paused_queues(&self) -> Result<Vec<String>, StoreError> {
        self.read(async |conn| queues::paused(conn).await).await
    }

    async fn queues(&self) -> Result<Vec<QueueInfo>, StoreError> {
        self.read(async |conn| queues::list(conn).await).await
    }

    async fn grouped_counts(&self) -> Result<GroupedCounts, StoreError> {
        self.read(async |conn| grouped::grouped_counts(conn).await)
            .await
    }

    /// Waits for a wake-up, the earliest due time this store noted, or
    /// `max_wait`. Wake-ups come from this store's own commits (in memory)
    /// and from a watch on the WAL file, which the first wait starts: any
    /// process's commit to this database (see `watch.rs`). Due times are
    /// those of this store's own delayed enqueues, retries and snoozes;
    /// another process's are found by the poll.
    async fn act_on_jobs(&self, chunk: ActOn) -> Result<Vec<Acted>, StoreError> {
        chunk.validate()?;
        if chunk.ids.is_empty() {
            return Ok(Vec::new());
        }
        self.call(|reply| Op::Act(chunk, reply)).await
    }

    async fn reschedule(&self, id: JobId, change: Reschedule) -> Result<Rescheduled, StoreError> {
        change.validate()?;
        let (done, run_at) = self.call(|reply| Op::Reschedule(id, change, reply)).await?;
        // The writer woke the workers if it is due now; a run time ahead is
        // noted, as a delayed enqueue's is.
        if let Some(delay) = run_at.and_then(|at| u64::try_from(at - now_ms()).ok()) {
            self.inner.signal.due_in(Duration::from_millis(delay));
        }
        Ok(done)
    }

    async fn register_node(&self, info: NodeInfo, ttl: Duration) -> Result<(), StoreError> {
        let report = Box::new(nodes::validate(info, ttl)?);
        self.call(|reply| Op::RegisterNode(report, reply)).await
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        self.read(async |conn| nodes::list(conn, now_ms()).await)
            .await
    }

    async fn node(&self, id: &str) -> Result<Option<NodeRecord>, StoreError> {
        self.read(async |conn| nodes::get(conn, now_ms(), id).await)
            .await
    }

    async fn remove_node(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.call(|reply| Op::RemoveNode { id, reply }).await
    }

    async fn wait_for_work(&self, max_wait: Duration) {
        self.ensure_watch();
        self.inner.signal.wait(max_wait).await;
    }

    async fn close(&self) {
        // The inherent `close`, kept for callers without the trait in scope.
        SqliteStore::close(self).await;
    }
}
