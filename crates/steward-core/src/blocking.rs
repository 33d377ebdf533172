//! The host's bounded pool for blocking calls ([`Context::spawn_blocking`](crate::Context::spawn_blocking)).
//!
//! Blocking work cannot be interrupted: a closure that never returns holds its
//! thread, and tokio's runtime waits for it when dropped. The pool counts the
//! closures still running, per service, so that the host can name the ones
//! it abandons when it stops and its watchdog can still bound the process's
//! exit (see `host/watchdog.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::TaskError;
use crate::poll_mark::{self, ServiceKey};
use crate::sync::LockExt;
use crate::task_group::join_error;

/// The host's bounded pool for CPU-bound or blocking calls: at most `limit`
/// run at once, on tokio's blocking threads.
#[derive(Clone)]
pub(crate) struct BlockingPool {
    permits: Arc<Semaphore>,
    /// Closures started and not yet returned, by the service that started
    /// them (`None` when called outside a service's own task).
    running: Arc<Mutex<HashMap<Option<ServiceKey>, usize>>>,
}

impl BlockingPool {
    pub(crate) fn new(limit: usize) -> Self {
        BlockingPool {
            permits: Arc::new(Semaphore::new(limit)),
            running: Arc::default(),
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
        // The closure runs on another thread: carry the caller's span (the
        // service's) there so its logs name the service.
        let span = tracing::Span::current();
        let running = Running::start(self.running.clone(), poll_mark::current_service());
        let handle = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            // Counted until the closure itself returns, not until its
            // caller stops waiting: that is what can hold the process.
            let _running = running;
            let _entered = span.enter();
            poll_mark::handled(f)
        });
        // Blocking work cannot be interrupted; the caller waits for it so it
        // never outlives the service that started it (unless the service is
        // itself aborted at the shutdown timeout: then it is abandoned).
        handle.await.map_err(join_error)
    }

    /// Blocking calls still running, by the service that started them.
    pub(crate) fn still_running(&self) -> Vec<(Option<ServiceKey>, usize)> {
        let running = self.running.lock_or_recover();
        let mut calls: Vec<_> = running.iter().map(|(k, n)| (*k, *n)).collect();
        calls.sort_unstable();
        calls
    }
}

/// One running closure in the pool's count, removed when dropped (also when
/// the closure panics).
struct Running {
    running: Arc<Mutex<HashMap<Option<ServiceKey>, usize>>>,
    service: Option<ServiceKey>,
}

impl Running {
    fn start(
        running: Arc<Mutex<HashMap<Option<ServiceKey>, usize>>>,
        service: Option<ServiceKey>,
    ) -> Running {
        *running.lock_or_recover().entry(service).or_default() += 1;
        Running { running, service }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = self.running.lock_or_recover();
        if let Some(n) = running.get_mut(&self.service) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                running.remove(&self.service);
            }
        }
    }
}
