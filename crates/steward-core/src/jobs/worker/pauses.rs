//! Honouring queue pauses (`Store::pause_queue`) cluster-wide.
//!
//! A helper task reads [`Store::paused_queues`] once per poll interval and
//! publishes the set on a watch channel; the worker's loop hears of a change
//! at once. The claim path itself gains no round trip and no SQL: a paused
//! queue is simply left out of the claim request (one flag per queue).
//! When a queue is paused, the jobs this worker claimed for it but has not
//! started are given back at once (released, as at shutdown), so no node
//! sits on them until the resume; running ones finish normally.
//!
//! A failed read keeps the last known set (logged): a store hiccup must
//! neither stop the claims nor make every paused queue run.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::dispatch::Dispatcher;
use crate::store::Store;

/// The paused queues' names, as last read.
pub(super) type Paused = watch::Receiver<Vec<String>>;

/// The first read, before the worker claims anything, so that a worker
/// started while a queue is paused never claims from it. On an error the
/// worker starts with nothing paused (and the next poll tries again).
pub(super) async fn first_read<S: Store>(store: &S) -> Vec<String> {
    match store.paused_queues().await {
        Ok(paused) => paused,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the paused queues; assuming none until the next poll");
            Vec::new()
        }
    }
}

/// Reads the paused queues every `every` until `stop`, publishing changes.
pub(super) async fn watch<S: Store>(
    store: Arc<S>,
    every: Duration,
    tx: watch::Sender<Vec<String>>,
    stop: CancellationToken,
) {
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let read = tokio::select! {
            _ = stop.cancelled() => return,
            read = store.paused_queues() => read,
        };
        match read {
            Ok(paused) => {
                if failing {
                    tracing::info!("reading the paused queues works again");
                    failing = false;
                }
                tx.send_if_modified(|held| {
                    let changed = *held != paused;
                    if changed {
                        tracing::info!(paused = ?paused, "paused queues changed");
                        *held = paused;
                    }
                    changed
                });
            }
            Err(err) => {
                // Once per poll interval at most: no spin, no flood.
                tracing::warn!(error = %err, "cannot read the paused queues; keeping the last known ones");
                failing = true;
            }
        }
    }
}

/// Gives back the jobs claimed for paused queues and not started.
pub(super) async fn give_back<S: Store>(store: &S, d: &mut Dispatcher) {
    let leases = d.take_paused_buffers();
    if leases.is_empty() {
        return;
    }
    let jobs = leases.len();
    match store.release(leases).await {
        Ok(released) => tracing::info!(
            released,
            "queue paused: gave back the jobs claimed for it but not started"
        ),
        Err(err) => tracing::warn!(
            error = %err,
            jobs,
            "queue paused: cannot give back the jobs claimed for it; they will be rescued when \
             their leases expire"
        ),
    }
}
