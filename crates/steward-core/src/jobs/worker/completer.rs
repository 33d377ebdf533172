//! Writes attempts' outcomes in batches. Whatever piled up while the last
//! write was in flight goes in the next one, so batches grow with load and a
//! lone completion is written at once.
//!
//! A failed write is retried only if trying again can help: a transient
//! error (the store busy or unreachable, a read-only failover) is retried
//! with backoff, the worker not ready meanwhile, until the write succeeds
//! or the worker gives up at the end of its shutdown budget. Any other
//! error is taken to be about the data: the batch is split in halves until
//! the outcome the store refuses stands alone, and that one is dropped with
//! an error (its job is rescued when its lease expires), so one bad outcome
//! never holds back the others.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::heartbeat::{Held, Running, lock};
use super::history::Tally;
use super::ready::Readiness;
use crate::store::{Finish, Store, StoreError};

/// The most outcomes written in one call.
pub(crate) const MAX_BATCH: usize = 512;

pub(crate) struct Completer<S> {
    pub(crate) store: Arc<S>,
    /// Jobs whose outcomes wait here stay held (heartbeated) until written.
    pub(crate) running: Running,
    pub(crate) ready: Arc<Readiness>,
    /// Cancelled when the worker's time to stop runs out: the outcomes not
    /// written by then are given up (their jobs are rescued later).
    pub(crate) give_up: CancellationToken,
    /// Where applied outcomes are counted for the history.
    pub(crate) tally: Tally,
}

impl<S: Store> Completer<S> {
    pub(crate) async fn run(self, mut rx: mpsc::Receiver<Finish>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = rx.recv().await {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
            if !self.write(std::mem::take(&mut batch)).await {
                // Given up: say once how much is left, and leave it to the
                // rescue.
                rx.close();
                let mut left = 0;
                while let Ok(item) = rx.try_recv() {
                    self.forget(std::slice::from_ref(&item));
                    left += 1;
                }
                if left > 0 {
                    tracing::error!(
                        outcomes = left,
                        "worker stopping: outcomes not written in time; their jobs will be rescued when their leases expire"
                    );
                }
                return;
            }
        }
    }

    /// Writes `batch`; false if it gave up (see `give_up`).
    async fn write(&self, batch: Vec<Finish>) -> bool {
        // Parts still to write, the next on top; a part the store refuses
        // for good is split in two until the refused outcome stands alone.
        let mut parts = vec![batch];
        while let Some(part) = parts.pop() {
            let mut backoff = Duration::from_millis(50);
            loop {
                let err = match self.store.finish(part.clone()).await {
                    Ok(applied) => {
                        self.written(&part, &applied);
                        break;
                    }
                    Err(err) => err,
                };
                if !retry_helps(&err) {
                    if part.len() > 1 {
                        let second = part[part.len() / 2..].to_vec();
                        let first = part[..part.len() / 2].to_vec();
                        parts.push(second);
                        parts.push(first);
                    } else {
                        tracing::error!(
                            job = %part[0].lease.id,
                            error = %err,
                            "the store refuses this job's outcome; it is dropped, and the job is rescued when its lease expires"
                        );
                        self.forget(&part);
                    }
                    break;
                }
                self.ready.outcomes(false);
                tracing::error!(error = %err, jobs = part.len(), retry_in = ?backoff, "cannot record job outcomes; retrying");
                tokio::select! {
                    _ = self.give_up.cancelled() => {
                        let left = part.len() + parts.iter().map(Vec::len).sum::<usize>();
                        tracing::error!(
                            outcomes = left,
                            "worker stopping: outcomes not written in time; their jobs will be rescued when their leases expire"
                        );
                        self.forget(&part);
                        for part in &parts {
                            self.forget(part);
                        }
                        return false;
                    }
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        true
    }

    fn written(&self, part: &[Finish], applied: &[bool]) {
        let mut ended = Vec::with_capacity(part.len());
        let mut running = lock(&self.running);
        for (item, ok) in part.iter().zip(applied) {
            let held = running.remove(&item.lease);
            if !ok {
                tracing::warn!(
                    job = %item.lease.id,
                    "outcome refused: the job's lease was lost (it was rescued and belongs to a newer attempt)"
                );
            } else if let Some(Held::Outcome(tag)) = held {
                ended.push((&item.outcome, tag));
            }
        }
        drop(running);
        self.tally.count(ended);
        self.ready.outcomes(true);
    }

    /// The worker no longer holds these jobs: their heartbeats stop.
    fn forget(&self, part: &[Finish]) {
        let mut running = lock(&self.running);
        for item in part {
            running.remove(&item.lease);
        }
    }
}

/// Whether writing the same outcomes again later may succeed.
fn retry_helps(err: &StoreError) -> bool {
    err.is_transient() || matches!(err, StoreError::ReadOnly { .. })
}
