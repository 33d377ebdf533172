//! Which service the running task belongs to: set around every supervised
//! service task, so that helpers used inside it (channel ends) can tell the
//! host who uses them without being handed a [`Context`](crate::Context).

use std::future::Future;
use std::sync::Arc;

use crate::status::Slot;

tokio::task_local! {
    static CURRENT: Current;
}

/// A service as seen from inside its own task.
#[derive(Clone)]
pub(crate) struct Current {
    /// Its registration index.
    pub(crate) index: usize,
    /// Its status record.
    pub(crate) slot: Arc<Slot>,
}

/// The service whose task is running now, if any.
pub(crate) fn current() -> Option<Current> {
    CURRENT.try_with(Current::clone).ok()
}

/// Runs `fut` as part of service `current`.
pub(crate) fn scope<F: Future>(current: Current, fut: F) -> impl Future<Output = F::Output> {
    CURRENT.scope(current, fut)
}

/// Runs `fut` as part of the service whose task calls this (if any), for a
/// child task spawned from it: the child's channel use counts as the
/// service's.
pub(crate) fn inherit<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let current = current();
    async move {
        match current {
            Some(current) => CURRENT.scope(current, fut).await,
            None => fut.await,
        }
    }
}

/// Runs `fut` as a child task of service `current` (a task-group child, a
/// `ctx.spawn`), whichever task spawns it: its channel use counts as the
/// service's, and its polls are marked for the watchdog, so a child that
/// blocks its runtime thread is named as its service.
pub(crate) fn child<F: Future>(current: Current, fut: F) -> impl Future<Output = F::Output> {
    let slot = current.slot.clone();
    CURRENT.scope(current, crate::poll_mark::record_child(slot, fut))
}
