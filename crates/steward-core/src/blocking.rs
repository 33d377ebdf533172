//! The host's bounded pool for blocking calls ([`Context::spawn_blocking`](crate::Context::spawn_blocking)).

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::TaskError;
use crate::task_group::join_error;

/// The host's bounded pool for CPU-bound or blocking calls: at most `limit`
/// run at once, on tokio's blocking threads.
#[derive(Clone)]
pub(crate) struct BlockingPool {
    permits: Arc<Semaphore>,
}

impl BlockingPool {
    pub(crate) fn new(limit: usize) -> Self {
        BlockingPool {
            permits: Arc::new(Semaphore::new(limit)),
        }
    }

    pub(crate) async fn run<F, R>(&self, f: F, cancel: &CancellationToken) -> Result<R, TaskError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let permit = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(TaskError::Cancelled),
            permit = self.permits.clone().acquire_owned() => permit.map_err(|_| TaskError::Cancelled)?,
        };
        let handle = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f()
        });
        // Blocking work cannot be interrupted; the caller waits for it so it
        // never outlives the service that started it.
        handle.await.map_err(join_error)
    }
}
