//! A real store with injected faults: its next claims can be made to panic,
//! as a bug in store code would, inside the worker's own loop; it can lose
//! contact (every call a worker makes fails as `Unavailable`) for as long as
//! a case likes; and it can refuse outcomes for a while. Otherwise every
//! call goes straight to the store underneath, so the faults work the same
//! over every store.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use steward_core::store::{
    ActOn, Acted, CancelResult, ClaimRequest, ClaimedJob, DueSchedules, Enqueued, Finish,
    FiredTick, GroupedCounts, HeartbeatResult, HistoryDelta, HistoryQuery, HistoryRow, JobId,
    JobQuery, JobRecord, Lease, NewJob, NodeInfo, NodeRecord, QueueChange, QueueInfo, Reschedule,
    Rescheduled, RescueReport, SaveReport, ScheduleDef, ScheduleFire, ScheduleRecord, StateCounts,
    Store, StoreError,
};

/// A store `S` with faults injected on demand (see the module docs).
pub struct Faulty<S> {
    /// The real store underneath.
    pub inner: Arc<S>,
    panics: AtomicU32,
    cut: AtomicBool,
    refuse_outcomes: AtomicBool,
    fail_pause_reads: AtomicBool,
}

impl<S: Store> Faulty<S> {
    /// `inner`, with no fault injected yet.
    pub fn new(inner: Arc<S>) -> Self {
        Faulty {
            inner,
            panics: AtomicU32::new(0),
            cut: AtomicBool::new(false),
            refuse_outcomes: AtomicBool::new(false),
            fail_pause_reads: AtomicBool::new(false),
        }
    }

    /// The next `n` claims panic before reaching the store.
    pub fn panic_next_claims(&self, n: u32) {
        self.panics.store(n, Ordering::SeqCst);
    }

    /// Loses (`true`) or regains contact: while lost, claims, heartbeats,
    /// outcomes, checkpoints and releases fail.
    pub fn cut(&self, lost: bool) {
        self.cut.store(lost, Ordering::SeqCst);
    }

    /// While set, only outcome writes fail (as `Unavailable`): claims and
    /// heartbeats still work.
    pub fn refuse_outcomes(&self, refuse: bool) {
        self.refuse_outcomes.store(refuse, Ordering::SeqCst);
    }

    /// While set, only reads of the paused queues fail (as `Unavailable`).
    pub fn fail_pause_reads(&self, fail: bool) {
        self.fail_pause_reads.store(fail, Ordering::SeqCst);
    }

    fn reachable(&self) -> Result<(), StoreError> {
        if self.cut.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable {
                message: "injected: contact with the store is lost".into(),
            });
        }
        Ok(())
    }
}

impl<S: Store> Store for Faulty<S> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    async fn migrate(&self) -> Result<(), StoreError> {
        self.inner.migrate().await
    }
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, StoreError> {
        self.inner.enqueue(jobs).await
    }
    async fn claim(&self, request: ClaimRequest) -> Result<Vec<ClaimedJob>, StoreError> {
        let armed = self
            .panics
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if armed {
            panic!("injected: a bug in the store's claim");
        }
        self.reachable()?;
        self.inner.claim(request).await
    }
    async fn heartbeat(
        &self,
        leases: Vec<Lease>,
        lease: Duration,
    ) -> Result<Vec<HeartbeatResult>, StoreError> {
        self.reachable()?;
        self.inner.heartbeat(leases, lease).await
    }
    async fn finish(&self, batch: Vec<Finish>) -> Result<Vec<bool>, StoreError> {
        self.reachable()?;
        if self.refuse_outcomes.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable {
                message: "injected: outcomes cannot be written".into(),
            });
        }
        self.inner.finish(batch).await
    }
    async fn checkpoint(&self, lease: Lease, state: String) -> Result<(), StoreError> {
        self.reachable()?;
        self.inner.checkpoint(lease, state).await
    }
    async fn release(&self, leases: Vec<Lease>) -> Result<u64, StoreError> {
        self.reachable()?;
        self.inner.release(leases).await
    }
    async fn cancel(&self, id: JobId) -> Result<CancelResult, StoreError> {
        self.inner.cancel(id).await
    }
    async fn retry(&self, id: JobId) -> Result<bool, StoreError> {
        self.inner.retry(id).await
    }
    async fn rescue_expired(&self, max_rescues: u32) -> Result<RescueReport, StoreError> {
        self.inner.rescue_expired(max_rescues).await
    }
    async fn prune(
        &self,
        completed_older_than: Duration,
        dead_older_than: Duration,
    ) -> Result<u64, StoreError> {
        self.inner
            .prune(completed_older_than, dead_older_than)
            .await
    }
    async fn job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        self.inner.job(id).await
    }
    async fn counts(&self) -> Result<StateCounts, StoreError> {
        self.inner.counts().await
    }
    async fn try_lead(&self, role: &str, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.inner.try_lead(role, holder, ttl).await
    }
    async fn resign(&self, role: &str, holder: &str) -> Result<(), StoreError> {
        self.inner.resign(role, holder).await
    }
    async fn save_schedules(
        &self,
        defs: Vec<ScheduleDef>,
        remove_undeclared: bool,
    ) -> Result<SaveReport, StoreError> {
        self.reachable()?;
        self.inner.save_schedules(defs, remove_undeclared).await
    }
    async fn schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        self.inner.schedules().await
    }
    async fn schedule(&self, id: &str) -> Result<Option<ScheduleRecord>, StoreError> {
        self.inner.schedule(id).await
    }
    async fn pause_schedule(&self, id: &str, paused: bool) -> Result<bool, StoreError> {
        self.inner.pause_schedule(id, paused).await
    }
    async fn delete_schedule(&self, id: &str) -> Result<bool, StoreError> {
        self.inner.delete_schedule(id).await
    }
    async fn due_schedules(&self, limit: u32) -> Result<DueSchedules, StoreError> {
        self.reachable()?;
        self.inner.due_schedules(limit).await
    }
    async fn fire_schedule(
        &self,
        fire: ScheduleFire,
    ) -> Result<Option<Vec<FiredTick>>, StoreError> {
        self.reachable()?;
        self.inner.fire_schedule(fire).await
    }
    async fn schedule_fires(&self, id: &str, limit: u32) -> Result<Vec<FiredTick>, StoreError> {
        self.inner.schedule_fires(id, limit).await
    }
    async fn jobs(&self, query: JobQuery) -> Result<Vec<JobRecord>, StoreError> {
        self.inner.jobs(query).await
    }
    async fn time_travel(&self, by: Duration) -> Result<u64, StoreError> {
        self.inner.time_travel(by).await
    }
    async fn record_history(&self, deltas: Vec<HistoryDelta>) -> Result<(), StoreError> {
        self.inner.record_history(deltas).await
    }
    async fn history(&self, query: HistoryQuery) -> Result<Vec<HistoryRow>, StoreError> {
        self.inner.history(query).await
    }
    async fn prune_history(&self, older_than: Duration) -> Result<u64, StoreError> {
        self.inner.prune_history(older_than).await
    }

    async fn act_on_jobs(&self, chunk: ActOn) -> Result<Vec<Acted>, StoreError> {
        self.inner.act_on_jobs(chunk).await
    }
    async fn reschedule(&self, id: JobId, change: Reschedule) -> Result<Rescheduled, StoreError> {
        self.inner.reschedule(id, change).await
    }

    async fn pause_queue(&self, queue: &str) -> Result<QueueChange, StoreError> {
        self.inner.pause_queue(queue).await
    }
    async fn resume_queue(&self, queue: &str) -> Result<QueueChange, StoreError> {
        self.inner.resume_queue(queue).await
    }
    async fn paused_queues(&self) -> Result<Vec<String>, StoreError> {
        if self.fail_pause_reads.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable {
                message: "injected: the paused queues cannot be read".into(),
            });
        }
        self.inner.paused_queues().await
    }
    async fn queues(&self) -> Result<Vec<QueueInfo>, StoreError> {
        self.inner.queues().await
    }

    async fn register_node(&self, info: NodeInfo, ttl: Duration) -> Result<(), StoreError> {
        // A node's refresh is one of the worker's calls: it fails with them.
        self.reachable()?;
        self.inner.register_node(info, ttl).await
    }
    async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        self.inner.nodes().await
    }
    async fn node(&self, id: &str) -> Result<Option<NodeRecord>, StoreError> {
        self.inner.node(id).await
    }
    async fn remove_node(&self, id: &str) -> Result<bool, StoreError> {
        self.reachable()?;
        self.inner.remove_node(id).await
    }

    async fn grouped_counts(&self) -> Result<GroupedCounts, StoreError> {
        self.inner.grouped_counts().await
    }
    async fn wait_for_work(&self, max_wait: Duration) {
        self.inner.wait_for_work(max_wait).await
    }
    async fn close(&self) {
        self.inner.close().await;
    }
}
