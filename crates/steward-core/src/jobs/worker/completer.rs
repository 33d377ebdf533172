//! Writes attempts' outcomes in batches. Whatever piled up while the last
//! write was in flight goes in the next one, so batches grow with load and a
//! lone completion is written at once. An outcome is never dropped because
//! the store failed: the batch is retried with backoff until it is written or
//! the worker is aborted (then the lease expires and the job is rescued).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::store::{Finish, Store};

/// The most outcomes written in one call.
pub(crate) const MAX_BATCH: usize = 512;

pub(crate) async fn run<S: Store>(store: Arc<S>, mut rx: mpsc::Receiver<Finish>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        write(&*store, &mut batch).await;
    }
}

async fn write<S: Store>(store: &S, batch: &mut Vec<Finish>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match store.finish(batch.clone()).await {
            Ok(applied) => {
                for (item, ok) in batch.iter().zip(applied) {
                    if !ok {
                        tracing::warn!(
                            job = %item.lease.id,
                            "outcome refused: the job's lease was lost (it was rescued and belongs to a newer attempt)"
                        );
                    }
                }
                batch.clear();
                return;
            }
            Err(err) => {
                tracing::error!(error = %err, jobs = batch.len(), retry_in = ?backoff, "cannot record job outcomes; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
