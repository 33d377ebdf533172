//! An in-memory reference store, to show the contract is consistent and that
//! the suite can pass.
//!
//! **Not a production store.** Nothing is durable (a restart loses every
//! job), one mutex serializes every call, every scan is linear, and it has
//! no notion of other processes. The engine must not use it: it exists so
//! that `cargo test -p steward-store-tests` proves each contract case is
//! satisfiable, and as a readable statement of the contract in code next to
//! `docs/store-contract.md`.
//!
//! ```
//! use steward_core::store::{NewJob, Store};
//! use steward_store_tests::memory::MemoryStore;
//!
//! # tokio::runtime::Runtime::new().expect("a runtime for the example").block_on(async {
//! let store = MemoryStore::new();
//! let ids = store.enqueue(vec![NewJob::new("email", "{}")]).await?;
//! assert_eq!(store.counts().await?.available, 1);
//! # Ok::<(), steward_core::store::StoreError>(())
//! # }).expect("the example's store calls succeed");
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use steward_core::store::{
    ActOn, Acted, AttemptError, CancelResult, ClaimRequest, ClaimedJob, DueSchedules,
    EARLIEST_TIME, Enqueued, ErrorKind, Finish, FinishOutcome, FiredTick, GroupedCounts,
    HeartbeatResult, HistoryDelta, HistoryQuery, HistoryRow, JobId, JobQuery, JobRecord, JobState,
    Lease, LeaseToken, NewJob, NodeInfo, NodeRecord, QueueChange, QueueInfo, Reschedule,
    Rescheduled, RescueReport, SaveReport, ScheduleDef, ScheduleFire, ScheduleRecord, StateCounts,
    Store, StoreError, WorkSignal, validate_queue_name, validate_schedule_defs,
    validate_schedule_fire,
};

use history::History;
use leaders::Leaders;
use nodes::Nodes;
use queues::QueueSettings;
use row::{Hold, Moment, Row, after, earlier, later, validate};
use schedules::Schedules;

mod act;
mod grouped;
mod history;
mod leaders;
mod nodes;
mod query;
mod queues;
mod row;
mod schedules;

/// An in-memory [`Store`] for the contract suite's own tests. Clones share
/// the same jobs (like two connections to one database).
///
/// Not a production store: see the [module docs](self).
///
/// ```
/// let a = steward_store_tests::memory::MemoryStore::new();
/// let b = a.clone(); // the same jobs
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    jobs: Mutex<Jobs>,
    leaders: Mutex<Leaders>,
    nodes: Mutex<Nodes>,
    /// Locked before `jobs` when both are (a fire enqueues its ticks' jobs).
    schedules: Mutex<Schedules>,
    history: Mutex<History>,
    /// Locked before `jobs` when both are.
    queues: Mutex<QueueSettings>,
    /// Wakes `wait_for_work` callers (every idle worker looks, not just
    /// one), now or when delayed work comes due.
    work: WorkSignal,
    /// Set by `close`: later calls fail as a closed database's would.
    closed: AtomicBool,
}

#[derive(Debug, Default)]
struct Jobs {
    last_id: i64,
    rows: BTreeMap<JobId, Row>,
}

impl Jobs {
    /// The job holding `hold`'s key now, if any.
    fn holder(&self, hold: &Hold) -> Option<&Row> {
        self.rows.values().find(|row| {
            row.hold
                .as_ref()
                .is_some_and(|h| h.key == hold.key && h.bucket == hold.bucket)
        })
    }
}

impl MemoryStore {
    /// An empty store.
    ///
    /// ```
    /// let store = steward_store_tests::memory::MemoryStore::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The jobs, even if a panicking caller poisoned the lock: every write
    /// below is applied whole before anything can panic, so the data is
    /// consistent.
    fn jobs(&self) -> MutexGuard<'_, Jobs> {
        self.shared
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn schedules(&self) -> MutexGuard<'_, Schedules> {
        self.shared
            .schedules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn minutes(&self) -> MutexGuard<'_, History> {
        self.shared
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn node_rows(&self) -> MutexGuard<'_, Nodes> {
        self.shared
            .nodes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn queue_settings(&self) -> MutexGuard<'_, QueueSettings> {
        self.shared
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// `pause_queue` (`Some(now)`) and `resume_queue` (`None`).
    fn set_pause(
        &self,
        queue: &str,
        paused: Option<DateTime<Utc>>,
    ) -> Result<QueueChange, StoreError> {
        self.open()?;
        validate_queue_name(queue)?;
        let mut settings = self.queue_settings();
        let has_jobs = self.jobs().rows.values().any(|r| r.record.queue == queue);
        Ok(settings.set(queue, paused, has_jobs))
    }

    fn wake(&self) {
        self.shared.work.wake();
    }

    /// Refuses a call on a closed store.
    fn open(&self) -> Result<(), StoreError> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable {
                message: "the store is closed".into(),
            });
        }
        Ok(())
    }
    /// `Store::enqueue` at `now`, for it and for a schedule's fire.
    fn insert(
        &self,
        jobs: Vec<NewJob>,
        now: chrono::DateTime<Utc>,
    ) -> Result<Vec<Enqueued>, StoreError> {
        // Validate the whole batch before touching anything: a refused batch
        // writes nothing, keys included.
        let holds = jobs
            .iter()
            .map(|job| validate(job, now))
            .collect::<Result<Vec<_>, _>>()?;
        // Noted before the insert: a duplicate's due time only costs a
        // spurious wake-up.
        self.shared.work.jobs_due(&jobs);
        let mut out = Vec::with_capacity(jobs.len());
        {
            let mut guard = self.jobs();
            for (job, hold) in jobs.into_iter().zip(holds) {
                let holder = hold.as_ref().and_then(|hold| guard.holder(hold));
                if let Some(holder) = holder {
                    out.push(Enqueued {
                        id: holder.record.id,
                        duplicate: true,
                    });
                    continue;
                }
                guard.last_id += 1;
                let id = JobId(guard.last_id);
                let run_at = match (job.run_at, job.delay) {
                    (Some(at), _) => at,
                    (None, Some(delay)) => later(now, delay),
                    (None, None) => now,
                };
                let mut row = Row {
                    record: JobRecord {
                        id,
                        kind: job.kind,
                        queue: job.queue,
                        state: if run_at > now {
                            JobState::Scheduled
                        } else {
                            JobState::Available
                        },
                        priority: job.priority,
                        payload: job.payload,
                        payload_version: job.payload_version,
                        attempt: 0,
                        max_attempts: job.max_attempts,
                        run_at,
                        created_at: now,
                        attempted_at: None,
                        finished_at: None,
                        errors: Vec::new(),
                        checkpoint: None,
                        worker: None,
                        lease_expires_at: None,
                        rescues: 0,
                        interrupted: 0,
                        cancel_requested: false,
                        timeout: job.timeout,
                        unique_key: None,
                    },
                    token: None,
                    hold: None,
                    given: hold.clone(),
                };
                row.set_hold(hold);
                guard.rows.insert(id, row);
                out.push(Enqueued {
                    id,
                    duplicate: false,
                });
            }
        }
        if out.iter().any(|e| !e.duplicate) {
            self.wake();
        }
        Ok(out)
    }
}

impl Store for MemoryStore {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.open()?;
        Ok(())
    }

    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, StoreError> {
        self.open()?;
        self.insert(jobs, Utc::now())
    }

    async fn claim(&self, request: ClaimRequest) -> Result<Vec<ClaimedJob>, StoreError> {
        self.open()?;
        let now = Utc::now();
        let expires = after(now, request.lease)?;
        let mut guard = self.jobs();
        let mut claimed = Vec::new();
        let mut suspects_left = request.max_suspects;
        for queue in &request.queues {
            let mut due: Vec<&Row> = guard
                .rows
                .values()
                .filter(|row| {
                    let r = &row.record;
                    r.queue == queue.queue
                        && matches!(
                            r.state,
                            JobState::Scheduled | JobState::Available | JobState::Retryable
                        )
                        && r.run_at <= now
                        && request.kinds.as_ref().is_none_or(|k| k.contains(&r.kind))
                })
                .collect();
            due.sort_by_key(|row| (row.record.priority, row.record.run_at, row.record.id));
            let mut ids: Vec<JobId> = Vec::new();
            for row in due {
                if ids.len() >= usize::try_from(queue.limit).unwrap_or(usize::MAX) {
                    break;
                }
                if row.record.rescues >= steward_core::store::SUSPECT_RESCUES {
                    if suspects_left == 0 {
                        continue;
                    }
                    suspects_left -= 1;
                }
                ids.push(row.record.id);
            }
            for id in ids {
                let Some(row) = guard.rows.get_mut(&id) else {
                    continue;
                };
                // A fresh token: never the one an earlier attempt held, so a
                // stale worker can never pass the fence by chance.
                let mut token = LeaseToken::random();
                while row.token == Some(token) {
                    token = LeaseToken::random();
                }
                row.token = Some(token);
                row.let_go_of_key(Moment::Claimed);
                let r = &mut row.record;
                r.state = JobState::Running;
                r.attempt += 1;
                r.attempted_at = Some(now);
                r.worker = Some(request.worker.clone());
                r.lease_expires_at = Some(expires);
                claimed.push(ClaimedJob {
                    lease: Lease { id, token },
                    kind: r.kind.clone(),
                    queue: r.queue.clone(),
                    payload: r.payload.clone(),
                    payload_version: r.payload_version,
                    attempt: r.attempt,
                    max_attempts: r.max_attempts,
                    checkpoint: r.checkpoint.clone(),
                    timeout: r.timeout,
                    created_at: r.created_at,
                    rescues: r.rescues,
                });
            }
        }
        Ok(claimed)
    }

    async fn heartbeat(
        &self,
        leases: Vec<Lease>,
        lease: Duration,
    ) -> Result<Vec<HeartbeatResult>, StoreError> {
        let expires = after(Utc::now(), lease)?;
        let mut guard = self.jobs();
        Ok(leases
            .iter()
            .map(|l| match guard.rows.get_mut(&l.id) {
                Some(row) if row.holds(l) => {
                    row.record.lease_expires_at = Some(expires);
                    if row.record.cancel_requested {
                        HeartbeatResult::CancelRequested
                    } else {
                        HeartbeatResult::Extended
                    }
                }
                _ => HeartbeatResult::Lost,
            })
            .collect())
    }

    async fn finish(&self, batch: Vec<Finish>) -> Result<Vec<bool>, StoreError> {
        self.open()?;
        let now = Utc::now();
        self.shared.work.finishes_due(&batch);
        let mut woke = false;
        let applied = {
            let mut guard = self.jobs();
            batch
                .into_iter()
                .map(|item| {
                    let Some(row) = guard.rows.get_mut(&item.lease.id) else {
                        return false;
                    };
                    if !row.holds(&item.lease) {
                        return false;
                    }
                    row.record.rescues = 0;
                    match item.outcome {
                        FinishOutcome::Completed => row.finalize(JobState::Completed, now),
                        FinishOutcome::Failed {
                            error,
                            retry_in: Some(delay),
                        } => {
                            let at = later(now, delay);
                            row.record.errors.push(error);
                            row.record.state = JobState::Retryable;
                            row.record.run_at = at;
                            row.clear_lease();
                            woke |= at <= now;
                            row.settle_cancel(now);
                        }
                        FinishOutcome::Failed {
                            error,
                            retry_in: None,
                        } => {
                            row.record.errors.push(error);
                            row.finalize(JobState::Dead, now);
                        }
                        FinishOutcome::Snoozed { delay } => {
                            let until = later(now, delay);
                            let r = &mut row.record;
                            r.state = if until > now {
                                JobState::Scheduled
                            } else {
                                JobState::Available
                            };
                            r.run_at = until;
                            r.attempt = r.attempt.saturating_sub(1);
                            row.clear_lease();
                            woke = true;
                            row.settle_cancel(now);
                        }
                        FinishOutcome::Cancelled { reason } => {
                            let attempt = row.record.attempt;
                            row.record.errors.push(AttemptError {
                                attempt,
                                at: now,
                                kind: ErrorKind::Cancelled,
                                message: reason,
                            });
                            row.finalize(JobState::Cancelled, now);
                        }
                    }
                    true
                })
                .collect()
        };
        if woke {
            self.wake();
        }
        Ok(applied)
    }

    async fn checkpoint(&self, lease: Lease, state: String) -> Result<(), StoreError> {
        self.open()?;
        let mut guard = self.jobs();
        match guard.rows.get_mut(&lease.id) {
            Some(row) if row.holds(&lease) => {
                row.record.checkpoint = Some(state);
                Ok(())
            }
            _ => Err(StoreError::LeaseLost { id: lease.id }),
        }
    }

    async fn release(&self, leases: Vec<Lease>) -> Result<u64, StoreError> {
        self.open()?;
        let now = Utc::now();
        let mut released = 0;
        {
            let mut guard = self.jobs();
            for lease in &leases {
                let Some(row) = guard.rows.get_mut(&lease.id) else {
                    continue;
                };
                if !row.holds(lease) {
                    continue;
                }
                row.clear_lease();
                let r = &mut row.record;
                r.state = JobState::Available;
                r.run_at = now;
                r.attempt = r.attempt.saturating_sub(1);
                r.interrupted += 1;
                row.settle_cancel(now);
                released += 1;
            }
        }
        if released > 0 {
            self.wake();
        }
        Ok(released)
    }

    async fn cancel(&self, id: JobId) -> Result<CancelResult, StoreError> {
        self.open()?;
        let now = Utc::now();
        Ok(self.jobs().cancel(id, now))
    }

    async fn retry(&self, id: JobId) -> Result<bool, StoreError> {
        self.open()?;
        let now = Utc::now();
        let retried = self.jobs().retry(id, now);
        if retried {
            self.wake();
        }
        Ok(retried)
    }

    async fn rescue_expired(&self, max_rescues: u32) -> Result<RescueReport, StoreError> {
        self.open()?;
        let now = Utc::now();
        let mut report = RescueReport::default();
        let mut seen = Vec::new();
        {
            let mut guard = self.jobs();
            for row in guard.rows.values_mut() {
                let expired = row.record.state == JobState::Running
                    && row.record.lease_expires_at.is_some_and(|at| at < now);
                if !expired {
                    continue;
                }
                row.record.rescues += 1;
                let rescues = row.record.rescues;
                let attempt = row.record.attempt;
                let dead = rescues >= max_rescues;
                row.record.errors.push(AttemptError {
                    attempt,
                    at: now,
                    kind: ErrorKind::WorkerLost,
                    message: if dead {
                        steward_core::store::worker_lost_times(rescues)
                    } else {
                        steward_core::store::WORKER_LOST.to_string()
                    },
                });
                seen.push((row.record.queue.clone(), row.record.kind.clone(), dead));
                if dead {
                    row.finalize(JobState::Dead, now);
                    report.dead += 1;
                } else {
                    row.clear_lease();
                    let r = &mut row.record;
                    r.state = JobState::Available;
                    r.run_at = now;
                    r.attempt = r.attempt.saturating_sub(1);
                    if row.settle_cancel(now) {
                        report.cancelled += 1;
                    } else {
                        report.rescued += 1;
                    }
                }
            }
        }
        let mut history = self.minutes();
        for ((queue, kind), tally) in steward_core::store::rescue_tallies(seen) {
            history.count(&queue, &kind, tally, now);
        }
        drop(history);
        if report.rescued > 0 {
            self.wake();
        }
        Ok(report)
    }

    async fn prune(
        &self,
        completed_older_than: Duration,
        dead_older_than: Duration,
    ) -> Result<u64, StoreError> {
        let now = Utc::now();
        let completed_before = earlier(now, completed_older_than);
        let dead_before = earlier(now, dead_older_than);
        let mut guard = self.jobs();
        let before = guard.rows.len();
        guard.rows.retain(|_, row| {
            let r = &row.record;
            let cutoff = match r.state {
                JobState::Completed => completed_before,
                JobState::Dead | JobState::Cancelled => dead_before,
                _ => return true,
            };
            r.finished_at.is_none_or(|at| at >= cutoff)
        });
        Ok((before - guard.rows.len()) as u64)
    }

    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        self.open()?;
        Ok(self.jobs().rows.get(&id).map(|row| row.record.clone()))
    }

    async fn counts(&self) -> Result<StateCounts, StoreError> {
        self.open()?;
        let mut counts = StateCounts::default();
        for row in self.jobs().rows.values() {
            let state = row.record.state;
            counts.set(state, counts.get(state) + 1);
        }
        Ok(counts)
    }

    async fn try_lead(&self, role: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.open()?;
        let mut leaders = self
            .shared
            .leaders
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        leaders.try_lead(Utc::now(), role, holder, ttl)
    }

    async fn resign(&self, role: &str, holder: &str) -> Result<(), StoreError> {
        self.open()?;
        self.shared
            .leaders
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .resign(role, holder);
        Ok(())
    }

    async fn save_schedules(
        &self,
        defs: Vec<ScheduleDef>,
        remove_undeclared: bool,
    ) -> Result<SaveReport, StoreError> {
        self.open()?;
        validate_schedule_defs(&defs)?;
        Ok(self.schedules().save(defs, remove_undeclared, Utc::now()))
    }

    async fn schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        self.open()?;
        Ok(self.schedules().list())
    }

    async fn schedule(&self, id: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        self.open()?;
        Ok(self.schedules().get(id))
    }

    async fn pause_schedule(&self, id: &str, paused: bool) -> Result<bool, StoreError> {
        self.open()?;
        Ok(self.schedules().pause(id, paused, Utc::now()))
    }

    async fn delete_schedule(&self, id: &str) -> Result<bool, StoreError> {
        self.open()?;
        Ok(self.schedules().delete(id))
    }

    async fn due_schedules(&self, limit: u32) -> Result<DueSchedules, StoreError> {
        self.open()?;
        Ok(self.schedules().due(Utc::now(), limit))
    }

    async fn fire_schedule(
        &self,
        fire: ScheduleFire,
    ) -> Result<Option<Vec<FiredTick>>, StoreError> {
        self.open()?;
        validate_schedule_fire(&fire)?;
        let mut schedules = self.schedules();
        let Some(jobs) = schedules.admit(&fire) else {
            return Ok(None);
        };
        let ticks: Vec<_> = jobs.iter().filter_map(|j| j.run_at).collect();
        let enqueued = self.insert(jobs, Utc::now())?;
        let fired: Vec<FiredTick> = ticks
            .into_iter()
            .zip(enqueued)
            .map(|(tick, e)| FiredTick { tick, job: e.id })
            .collect();
        schedules.record(&fire.id, fire.next_at, &fired);
        Ok(Some(fired))
    }

    async fn schedule_fires(&self, id: &str, limit: u32) -> Result<Vec<FiredTick>, StoreError> {
        self.open()?;
        Ok(self.schedules().fires(id, limit))
    }

    async fn jobs(&self, query: JobQuery) -> Result<Vec<JobRecord>, StoreError> {
        self.open()?;
        query.validate()?;
        let guard = self.jobs();
        // The map is ordered by id: the range is the keyset cursor.
        let rows = guard.rows.range(query::past(&query));
        Ok(query::page(rows, &query, Utc::now()))
    }

    async fn time_travel(&self, by: Duration) -> Result<u64, StoreError> {
        self.open()?;
        if by.is_zero() {
            return Ok(0);
        }
        let now = Utc::now();
        // Locked in the documented order: schedules before jobs.
        self.schedules().shift(by);
        let mut moved = 0;
        let mut due_now = false;
        let mut next_due: Option<DateTime<Utc>> = None;
        {
            let mut guard = self.jobs();
            for row in guard.rows.values_mut() {
                let r = &mut row.record;
                let waiting = matches!(
                    r.state,
                    JobState::Scheduled | JobState::Available | JobState::Retryable
                );
                // A job already at the earliest time cannot move: not counted.
                if !waiting || r.run_at <= EARLIEST_TIME {
                    continue;
                }
                r.run_at = earlier(r.run_at, by).max(EARLIEST_TIME);
                moved += 1;
                if r.run_at <= now {
                    due_now = true;
                } else {
                    next_due = Some(next_due.map_or(r.run_at, |t| t.min(r.run_at)));
                }
            }
        }
        // As for other writes that make work due: wake the waiting workers
        // now, and re-aim their waits at the earliest job still ahead (the
        // due time noted at its enqueue is now too late).
        if due_now {
            self.wake();
        }
        if let Some(at) = next_due {
            self.shared
                .work
                .due_in((at - now).to_std().unwrap_or(Duration::ZERO));
        }
        Ok(moved)
    }

    async fn record_history(&self, deltas: Vec<HistoryDelta>) -> Result<(), StoreError> {
        self.open()?;
        steward_core::store::validate_history(&deltas)?;
        self.minutes().record(deltas, Utc::now());
        Ok(())
    }

    async fn history(&self, query: HistoryQuery) -> Result<Vec<HistoryRow>, StoreError> {
        self.open()?;
        query.validate()?;
        Ok(self.minutes().read(&query, Utc::now()))
    }

    async fn prune_history(&self, older_than: Duration) -> Result<u64, StoreError> {
        self.open()?;
        Ok(self.minutes().prune(older_than, Utc::now()))
    }

    async fn act_on_jobs(&self, chunk: ActOn) -> Result<Vec<Acted>, StoreError> {
        self.open()?;
        self.act(chunk)
    }

    async fn reschedule(&self, id: JobId, change: Reschedule) -> Result<Rescheduled, StoreError> {
        self.open()?;
        self.change(id, change)
    }

    async fn pause_queue(&self, queue: &str) -> Result<QueueChange, StoreError> {
        self.set_pause(queue, Some(Utc::now()))
    }

    async fn resume_queue(&self, queue: &str) -> Result<QueueChange, StoreError> {
        self.set_pause(queue, None)
    }

    async fn paused_queues(&self) -> Result<Vec<String>, StoreError> {
        self.open()?;
        Ok(self.queue_settings().paused())
    }

    async fn queues(&self) -> Result<Vec<QueueInfo>, StoreError> {
        self.open()?;
        let settings = self.queue_settings();
        let mut counts: BTreeMap<String, StateCounts> = BTreeMap::new();
        for row in self.jobs().rows.values() {
            let c = counts.entry(row.record.queue.clone()).or_default();
            c.set(row.record.state, c.get(row.record.state) + 1);
        }
        Ok(settings.list(counts))
    }

    async fn register_node(&self, info: NodeInfo, ttl: Duration) -> Result<(), StoreError> {
        self.open()?;
        self.node_rows().register(Utc::now(), info, ttl)
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        self.open()?;
        Ok(self.node_rows().list(Utc::now()))
    }

    async fn node(&self, id: &str) -> Result<Option<NodeRecord>, StoreError> {
        self.open()?;
        Ok(self.node_rows().get(Utc::now(), id))
    }

    async fn remove_node(&self, id: &str) -> Result<bool, StoreError> {
        self.open()?;
        Ok(self.node_rows().remove(id))
    }

    async fn grouped_counts(&self) -> Result<GroupedCounts, StoreError> {
        self.grouped()
    }

    async fn wait_for_work(&self, max_wait: Duration) {
        self.shared.work.wait(max_wait).await;
    }

    async fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.work.wake();
    }
}
