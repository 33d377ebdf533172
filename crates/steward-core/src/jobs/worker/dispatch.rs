//! What a running worker holds, in one place: each queue's free slots and
//! prefetch buffer, the running attempts, the leases waiting to be
//! released, and the channel to the outcome writer. Keeping it together is
//! what lets the worker give everything back at once, whether it stops
//! (shutdown) or its loop panics.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::attempt::{self, AttemptDeps, AttemptEnd, StopReason, Stopper};
use super::heartbeat::{Held, Running, lock};
use super::history::Tag;
use super::pace::Pace;
use super::{QueueConfig, StopBudget, WorkerConfig};
use crate::store::{ClaimedJob, Finish, Lease, QueueClaim, SUSPECT_RESCUES, Store};

/// A claimed job's slot: which queue it counts against.
pub(super) struct Slot {
    queue: usize,
    kind: String,
    lease: Lease,
    started: tokio::time::Instant,
    suspect: bool,
}

pub(super) struct Dispatcher {
    queues: Vec<QueueConfig>,
    /// The queues' names, shared by every attempt's history tag.
    names: Vec<Arc<str>>,
    free: Vec<usize>,
    /// Whether each queue is paused (see `pauses.rs`): not claimed from,
    /// its buffered jobs not started.
    paused: Vec<bool>,
    buffers: Vec<VecDeque<(ClaimedJob, Stopper)>>,
    jobs: JoinSet<(Slot, AttemptEnd)>,
    running: Running,
    to_release: Vec<Lease>,
    /// Suspects held, running or buffered (see `max_suspects`).
    suspects: usize,
    pub(super) pace: Pace,
    finish_tx: mpsc::Sender<Finish>,
    deps: Arc<AttemptDeps>,
}

impl Dispatcher {
    pub(super) fn new(
        config: &WorkerConfig,
        running: Running,
        finish_tx: mpsc::Sender<Finish>,
        deps: Arc<AttemptDeps>,
    ) -> Self {
        Dispatcher {
            queues: config.queues.clone(),
            names: config
                .queues
                .iter()
                .map(|q| Arc::from(q.name.as_str()))
                .collect(),
            free: config.queues.iter().map(|q| q.concurrency).collect(),
            paused: vec![false; config.queues.len()],
            buffers: config.queues.iter().map(|_| VecDeque::new()).collect(),
            jobs: JoinSet::new(),
            running,
            to_release: Vec::new(),
            suspects: 0,
            pace: Pace::new(config.queues.len()),
            finish_tx,
            deps,
        }
    }

    /// Each queue's prefetch now (see `pace.rs`).
    pub(super) fn prefetch(&self, cap: usize) -> Vec<usize> {
        self.queues
            .iter()
            .enumerate()
            .map(|(i, q)| self.pace.prefetch(i, q.concurrency, cap))
            .collect()
    }

    /// What to claim for each queue that wants more (see [`wants_more`]):
    /// room for its free slots and its prefetch, at most `fetch_batch`.
    pub(super) fn wanted_claims(&self, prefetch: &[usize], fetch_batch: u32) -> Vec<QueueClaim> {
        self.queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| {
                if self.paused[i] || !wants_more(self.free[i], self.buffers[i].len(), prefetch[i]) {
                    return None;
                }
                let room = (self.free[i] + prefetch[i]).saturating_sub(self.buffers[i].len());
                let limit = u32::try_from(room).unwrap_or(u32::MAX).min(fetch_batch);
                (limit > 0).then(|| QueueClaim {
                    queue: q.name.clone(),
                    limit,
                })
            })
            .collect()
    }

    /// Whether any queue has room for more work.
    pub(super) fn has_room(&self, prefetch: &[usize]) -> bool {
        (0..self.buffers.len()).any(|i| {
            !self.paused[i] && wants_more(self.free[i], self.buffers[i].len(), prefetch[i])
        })
    }

    /// How many suspects (rescued jobs) the next claim may return: one
    /// while this worker holds none, else none. A job that kills its
    /// process then takes down with it only jobs that were never rescued,
    /// which become suspects themselves and later run apart from it: only
    /// the real killer keeps collecting rescues.
    pub(super) fn max_suspects(&self) -> u32 {
        u32::from(self.suspects == 0)
    }

    /// Whether attempts are running.
    pub(super) fn is_busy(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// Puts claimed jobs in their queues' buffers and lists them as running
    /// (so they are heartbeated, and released if never started).
    pub(super) fn buffer_claimed(&mut self, claimed: Vec<ClaimedJob>) {
        let mut running = lock(&self.running);
        for job in claimed {
            let Some(queue) = self.queues.iter().position(|q| q.name == job.queue) else {
                continue;
            };
            let stopper = Stopper::new();
            running.insert(job.lease, Held::Attempt(stopper.clone()));
            self.suspects += usize::from(job.rescues >= SUSPECT_RESCUES);
            self.buffers[queue].push_back((job, stopper));
        }
    }

    /// Starts buffered jobs into free slots.
    pub(super) fn start_buffered(&mut self) {
        for (queue, buffer) in self.buffers.iter_mut().enumerate() {
            while self.free[queue] > 0 && !self.paused[queue] {
                let Some((job, stopper)) = buffer.pop_front() else {
                    break;
                };
                self.free[queue] -= 1;
                let (lease, suspect) = (job.lease, job.rescues >= SUSPECT_RESCUES);
                let kind = job.kind.clone();
                let deps = self.deps.clone();
                let span = deps.span.clone();
                let started = tokio::time::Instant::now();
                // Inherits the worker service, so a panicking job is known to
                // be caught (by its attempt) rather than counted as
                // unsupervised.
                self.jobs.spawn(crate::poll_mark::inherit(async move {
                    let end = attempt::run_guarded(job, stopper, deps)
                        .instrument(span)
                        .await;
                    (
                        Slot {
                            queue,
                            kind,
                            lease,
                            started,
                            suspect,
                        },
                        end,
                    )
                }));
            }
        }
    }

    /// The next attempt to end; pending forever while none runs.
    pub(super) async fn next_ended(
        &mut self,
    ) -> Option<Result<(Slot, AttemptEnd), tokio::task::JoinError>> {
        if self.jobs.is_empty() {
            return std::future::pending().await;
        }
        self.jobs.join_next().await
    }

    /// Books every attempt that has already ended; whether there was any.
    pub(super) async fn book_ended(&mut self) -> bool {
        let mut any = false;
        while let Some(joined) = self.jobs.try_join_next() {
            any = true;
            self.ended(joined).await;
        }
        any
    }

    /// Books an ended attempt: frees its slot and queues its outcome.
    pub(super) async fn ended(
        &mut self,
        joined: Result<(Slot, AttemptEnd), tokio::task::JoinError>,
    ) {
        let Ok((slot, end)) = joined else {
            // Attempt tasks catch the job's panics; only an abort lands here,
            // and aborted attempts are released by `drain`.
            return;
        };
        self.free[slot.queue] += 1;
        self.suspects = self.suspects.saturating_sub(usize::from(slot.suspect));
        let took = slot.started.elapsed();
        self.pace.ran(slot.queue, took);
        match end {
            AttemptEnd::Finish(finish) => {
                // Still held (and heartbeated) until the outcome writer has
                // written it: see `Held::Outcome`.
                let tag = Tag {
                    queue: self.names[slot.queue].clone(),
                    kind: slot.kind,
                    took,
                };
                lock(&self.running).insert(slot.lease, Held::Outcome(tag));
                if self.finish_tx.send(finish).await.is_err() {
                    lock(&self.running).remove(&slot.lease);
                    tracing::error!(job = %slot.lease.id, "outcome writer is gone; the job will be rescued");
                }
            }
            AttemptEnd::Release(lease) => {
                lock(&self.running).remove(&slot.lease);
                self.to_release.push(lease);
            }
            AttemptEnd::Nothing => {
                lock(&self.running).remove(&slot.lease);
            }
        }
    }

    /// Marks the queues named in `paused` as paused, the others as not.
    pub(super) fn set_paused(&mut self, paused: &[String]) {
        for (flag, queue) in self.paused.iter_mut().zip(&self.queues) {
            *flag = paused.contains(&queue.name);
        }
    }

    /// Takes the jobs buffered for paused queues out of the buffers (and
    /// out of the heartbeat), for the caller to release.
    pub(super) fn take_paused_buffers(&mut self) -> Vec<Lease> {
        let mut taken = Vec::new();
        let mut running = lock(&self.running);
        for (queue, buffer) in self.buffers.iter_mut().enumerate() {
            if !self.paused[queue] {
                continue;
            }
            for (job, _) in buffer.drain(..) {
                running.remove(&job.lease);
                self.suspects = self
                    .suspects
                    .saturating_sub(usize::from(job.rescues >= SUSPECT_RESCUES));
                taken.push(job.lease);
            }
        }
        taken
    }

    /// Gives back the jobs waiting in the prefetch buffers: they never
    /// started.
    pub(super) fn unbuffer(&mut self) {
        let mut running = lock(&self.running);
        for buffer in &mut self.buffers {
            for (job, _) in buffer.drain(..) {
                running.remove(&job.lease);
                self.suspects = self
                    .suspects
                    .saturating_sub(usize::from(job.rescues >= SUSPECT_RESCUES));
                self.to_release.push(job.lease);
            }
        }
    }

    /// Lets running jobs finish until the budget's drain time, then stops
    /// the rest (they get `grace` to return, within the budget) and releases
    /// them, with every buffered job, as interrupted.
    pub(super) async fn drain<S: Store>(
        &mut self,
        store: &S,
        budget: &StopBudget,
        grace: Duration,
    ) {
        self.unbuffer();
        let deadline = budget.drain_until;
        if !self.jobs.is_empty() && deadline > tokio::time::Instant::now() {
            let budget = deadline.saturating_duration_since(tokio::time::Instant::now());
            tracing::info!(running = self.jobs.len(), budget = ?budget, "worker stopping: letting running jobs finish");
        }
        while !self.jobs.is_empty() {
            match tokio::time::timeout_at(deadline, self.jobs.join_next()).await {
                Ok(Some(joined)) => self.ended(joined).await,
                Ok(None) | Err(_) => break,
            }
        }
        if !self.jobs.is_empty() {
            tracing::warn!(
                running = self.jobs.len(),
                "stopping and releasing the jobs still running"
            );
            for held in lock(&self.running).values() {
                if let Held::Attempt(stopper) = held {
                    stopper.stop(StopReason::Shutdown);
                }
            }
            // Each attempt returns within its stop grace; wait a little
            // longer, but leave time to release them.
            let half_the_reserve = budget
                .flush_until
                .saturating_duration_since(budget.drain_until)
                / 2;
            let cut_off = (tokio::time::Instant::now() + grace + Duration::from_millis(500))
                .min(budget.drain_until + half_the_reserve);
            while !self.jobs.is_empty() {
                match tokio::time::timeout_at(cut_off, self.jobs.join_next()).await {
                    Ok(Some(joined)) => self.ended(joined).await,
                    _ => break,
                }
            }
            self.jobs.abort_all();
            while self.jobs.join_next().await.is_some() {}
            // Whatever attempt is still listed was aborted: release it too
            // (outcomes waiting to be written are the writer's).
            let aborted: Vec<Lease> = {
                let mut running = lock(&self.running);
                let leases: Vec<Lease> = running
                    .iter()
                    .filter(|(_, held)| matches!(held, Held::Attempt(_)))
                    .map(|(lease, _)| *lease)
                    .collect();
                for lease in &leases {
                    running.remove(lease);
                }
                leases
            };
            if !aborted.is_empty() {
                // Named, as a service that ignores its stop is: a job that
                // does not return when `ctx` fires holds up every shutdown.
                let ids: Vec<String> = aborted.iter().map(|l| l.id.to_string()).collect();
                tracing::warn!(
                    jobs = %ids.join(","),
                    "job(s) {} ignored the stop and were aborted after their grace; a job should \
                     return when its context fires (ctx.sleep, &ctx in scopes and channels)",
                    ids.join(", ")
                );
            }
            self.to_release.extend(aborted);
        }
        if self.to_release.is_empty() {
            return;
        }
        let leases = std::mem::take(&mut self.to_release);
        let jobs = leases.len();
        match tokio::time::timeout_at(budget.flush_until, store.release(leases)).await {
            Ok(Ok(n)) => tracing::info!(
                released = n,
                "released unfinished jobs as interrupted; they will run again"
            ),
            Ok(Err(err)) => tracing::error!(
                error = %err,
                jobs,
                "cannot release unfinished jobs; they will be rescued when their leases expire"
            ),
            Err(_) => tracing::error!(
                jobs,
                "the store did not answer in time to release unfinished jobs; they will be rescued when their leases expire"
            ),
        }
    }
}

/// Whether a queue should claim now: when a slot is free and nothing is
/// buffered for it, or when its prefetch buffer is down to half. Claiming
/// every time one job ends would cost a store round trip per job; refilling
/// at half keeps claims large while the buffer never runs dry.
fn wants_more(free: usize, buffered: usize, prefetch: usize) -> bool {
    if buffered >= free + prefetch {
        return false;
    }
    (free > 0 && buffered == 0) || buffered <= prefetch / 2
}
