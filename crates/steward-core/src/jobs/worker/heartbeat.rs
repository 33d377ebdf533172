//! Keeps the leases of running attempts alive, and hears operators' cancels.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::attempt::{StopReason, Stopper};
use crate::store::{HeartbeatResult, Lease, Store};
use crate::sync::LockExt;

/// The jobs this worker holds, by lease: job id *and* token, since after a
/// lease expiry the same worker may claim the same job again while the
/// stale attempt still runs, and the two must never be confused (the stale
/// one is told it lost its lease, the new one is heartbeated).
use super::history::Tag;

pub(crate) type Running = Arc<Mutex<HashMap<Lease, Held>>>;

/// Why the worker holds a job; either way its lease is renewed.
pub(crate) enum Held {
    /// Buffered or running: the attempt's stop handle.
    Attempt(Stopper),
    /// Ended, its outcome not yet written: the lease must outlive the
    /// write, or the job would be rescued and run again meanwhile. The tag
    /// goes to the history once the store has applied the outcome.
    Outcome(Tag),
}

pub(crate) async fn run<S: Store>(
    store: Arc<S>,
    running: Running,
    every: Duration,
    lease: Duration,
    stop: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate; claims are fresh
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let leases: Vec<Lease> = lock(&running).keys().copied().collect();
        if leases.is_empty() {
            continue;
        }
        match store.heartbeat(leases.clone(), lease).await {
            Ok(results) => {
                let running = lock(&running);
                for (lease, result) in leases.iter().zip(results) {
                    let Some(Held::Attempt(stopper)) = running.get(lease) else {
                        continue;
                    };
                    match result {
                        HeartbeatResult::Extended => {}
                        HeartbeatResult::CancelRequested => stopper.stop(StopReason::Operator),
                        HeartbeatResult::Lost => {
                            tracing::warn!(job = %lease.id, "lease lost: another worker rescued this job; stopping it here");
                            stopper.stop(StopReason::LeaseLost);
                        }
                    }
                }
            }
            Err(err) => {
                // The leases are still valid until they expire; the next beat
                // may get through. Fencing protects the job if it does not.
                tracing::error!(error = %err, jobs = leases.len(), "heartbeat failed");
            }
        }
    }
}

pub(crate) fn lock(running: &Running) -> std::sync::MutexGuard<'_, HashMap<Lease, Held>> {
    running.lock_or_recover()
}
