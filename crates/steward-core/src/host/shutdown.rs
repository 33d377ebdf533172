//! The stop sequence: reverse order of registration, one shutdown timeout for
//! all, and services that ignore cancellation named and aborted.
//!
//! The [`Stopper`] owns the running services from the moment they start, so
//! that even a dropped `Host::run` future stops them instead of leaving them
//! running detached.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::supervisor::RunningService;
use super::watchdog::Watchdog;
use super::{ExitStatus, FailureKind, HostHandle, stop_order};
use crate::ServiceState;

/// How long aborted services get, together, to unwind before we stop
/// waiting for them (a task blocking its thread cannot be aborted at all).
const ABORT_GRACE: Duration = Duration::from_secs(1);

/// A service is blamed for ignoring cancellation only if it had at least
/// this long (or half the timeout, if that is shorter) between being asked
/// and the deadline; with less, it simply ran out of time.
const BLAME_AFTER: Duration = Duration::from_secs(1);

/// The running services and the one deadline they share once shutdown began.
pub(crate) struct Stopper {
    host: HostHandle,
    services: Vec<RunningService>,
    deadline: Option<Instant>,
    done: bool,
    watchdog: Option<Watchdog>,
}

impl Stopper {
    pub(crate) fn new(host: HostHandle, services: Vec<RunningService>, watchdog: Watchdog) -> Self {
        Stopper {
            host,
            services,
            deadline: None,
            done: false,
            watchdog: Some(watchdog),
        }
    }

    /// Stops every service and says how the run ended.
    pub(crate) async fn stop(mut self) -> ExitStatus {
        stop_all(&self.host, &mut self.services, &mut self.deadline).await;
        self.done = true;
        report_items_left(&self.host);
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.host_returned();
        }
        let status = ExitStatus::from_failures(self.host.failures());
        if status.is_success() {
            tracing::info!(code = 0, "host stopped cleanly");
        } else {
            for failure in status.failures() {
                tracing::error!(name = %failure.name, kind = %failure.kind, error = %failure.message, "failure during the run");
            }
            tracing::error!(
                code = status.code(),
                failures = status.failures().len(),
                "host stopped: {status}"
            );
        }
        status
    }
}

impl Drop for Stopper {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        // The host's future was dropped before the services stopped. Stop
        // them anyway, in order and within the timeout, on the runtime
        // they run on; without one, at least tell them all to stop.
        self.host
            .shared
            .shutting_down
            .store(true, Ordering::Relaxed);
        self.host.shutdown();
        let host = self.host.clone();
        let mut services = std::mem::take(&mut self.services);
        let mut deadline = self.deadline;
        let watchdog = self.watchdog.take();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                tracing::warn!(
                    "the host's run future was dropped: stopping its services in the background"
                );
                runtime.spawn(async move {
                    stop_all(&host, &mut services, &mut deadline).await;
                    report_items_left(&host);
                    if let Some(watchdog) = watchdog {
                        watchdog.host_returned();
                    }
                    let status = ExitStatus::from_failures(host.failures());
                    tracing::info!(
                        code = status.code(),
                        "host stopped after its run future was dropped: {status}"
                    );
                });
            }
            Err(_) => {
                for service in &services {
                    ask_to_stop(service);
                }
            }
        }
    }
}

async fn stop_all(
    host: &HostHandle,
    running: &mut [RunningService],
    deadline: &mut Option<Instant>,
) {
    let timeout = host.shutdown_timeout();
    host.shared.shutting_down.store(true, Ordering::Relaxed);
    host.shutdown();
    let deadline = *deadline.get_or_insert_with(|| {
        tracing::info!(timeout = ?timeout, services = running.len(), "shutting down");
        Instant::now() + timeout
    });
    let _ = host.shared.stop_deadline.set(deadline);

    // One timer for the whole sequence rather than one per service: a host
    // may stop thousands.
    let sequence = async {
        every_task_began(host, running).await;
        // Services that report on the others (the HTTP server) go last,
        // unless they feed a channel whose consumer must stop after them.
        let last: Vec<bool> = running.iter().map(|s| s.stops_last).collect();
        let order = stop_order::stop_order(
            running.len(),
            &stop_order::edges(&host.shared.channels),
            &last,
        );
        for i in order {
            let service = &mut running[i];
            if service.joined {
                continue;
            }
            ask_to_stop(service);
            service.asked_at.get_or_insert_with(Instant::now);
            stopped_or_parked(host, service).await;
        }
        drains_finished(host, running).await;
    };
    if tokio::time::timeout_at(deadline, sequence).await.is_err() {
        abort_the_rest(host, running, deadline, timeout).await;
    }
}

/// Waits until every service's task has been polled once. Channel ends
/// record who uses them, and a consumer asked to stop before its task ever
/// ran would never run at all: what was queued for it would be left.
async fn every_task_began(host: &HostHandle, running: &[RunningService]) {
    if host.shared.channels.is_empty() {
        return;
    }
    loop {
        let progress = host.shared.progress.notified();
        tokio::pin!(progress);
        progress.as_mut().enable();
        if running.iter().all(|s| s.slot.began.load(Ordering::SeqCst)) {
            return;
        }
        progress.await;
    }
}

/// Waits until `service` has stopped, or, when it is draining a channel
/// and waiting on senders, until it parks: the sequence goes on so that
/// those stop next.
async fn stopped_or_parked(host: &HostHandle, service: &mut RunningService) {
    if host.shared.channels.is_empty() {
        // Only a channel end parks a service: nothing to watch for but the
        // end of its task.
        let joined = (&mut service.handle).await;
        return joined_now(service, joined);
    }
    loop {
        let progress = host.shared.progress.notified();
        tokio::pin!(progress);
        progress.as_mut().enable();
        if service.slot.parked.load(Ordering::SeqCst) > 0 {
            return;
        }
        tokio::select! {
            joined = &mut service.handle => return joined_now(service, joined),
            _ = &mut progress => {}
        }
    }
}

fn joined_now(service: &mut RunningService, joined: Result<(), tokio::task::JoinError>) {
    service.joined = true;
    if let Err(err) = joined {
        // The supervisor catches the service's panics; this is a bug in it.
        tracing::error!(service = %service.name, error = %err, "service supervisor crashed");
    }
}

/// Every service has been asked; waits for the consumers still draining.
/// When all that is left waits on senders nobody will stop (a cycle, or a
/// sender held outside every service), closes the channels so their drains
/// end.
async fn drains_finished(host: &HostHandle, running: &mut [RunningService]) {
    loop {
        let mut left: Vec<&mut RunningService> = running.iter_mut().filter(|s| !s.joined).collect();
        if left.is_empty() {
            return;
        }
        let progress = host.shared.progress.notified();
        tokio::pin!(progress);
        progress.as_mut().enable();
        if left
            .iter()
            .all(|s| s.slot.parked.load(Ordering::SeqCst) > 0)
        {
            for channel in &host.shared.channels {
                if !channel.closing.is_cancelled() {
                    tracing::debug!(channel = %channel.name, "closing: its consumer waits on senders no service will drop");
                    channel.closing.cancel();
                }
            }
        }
        let joins = futures::future::select_all(left.iter_mut().map(|s| &mut s.handle));
        tokio::select! {
            _ = &mut progress => {}
            (joined, i, _) = joins => {
                left[i].joined = true;
                if let Err(err) = joined {
                    tracing::error!(service = %left[i].name, error = %err, "service supervisor crashed");
                }
            }
        }
    }
}

/// The budget is spent: tell everyone left, then cut off whoever is still
/// running and say who, and how long they really had.
async fn abort_the_rest(
    host: &HostHandle,
    running: &mut [RunningService],
    deadline: Instant,
    timeout: Duration,
) {
    for service in running.iter() {
        ask_to_stop(service);
    }
    tokio::task::yield_now().await;
    let blame_after = BLAME_AFTER.min(timeout / 2);
    let mut aborted = Vec::new();
    for (i, service) in running.iter_mut().enumerate() {
        if service.joined || service.handle.is_finished() {
            continue;
        }
        let had = service
            .asked_at
            .map(|at| deadline.saturating_duration_since(at));
        let detail = match had {
            Some(had) if had >= blame_after => {
                let waited = service.asked_at.map_or(Duration::ZERO, |at| at.elapsed());
                tracing::error!(
                    service = %service.name,
                    waited = ?waited,
                    shutdown_timeout = ?timeout,
                    "service ignored cancellation: still running {:.1} s after it was asked to stop; aborting it",
                    waited.as_secs_f64()
                );
                format!(
                    "still running {:.1} s after it was asked to stop; aborted",
                    waited.as_secs_f64()
                )
            }
            Some(had) => {
                tracing::error!(
                    service = %service.name,
                    shutdown_timeout = ?timeout,
                    "service not stopped: its turn to stop came {:.1} s before the shutdown timeout ran out (services stop in reverse order of registration); aborting it",
                    had.as_secs_f64()
                );
                format!(
                    "its turn came {:.1} s before the timeout ran out; aborted",
                    had.as_secs_f64()
                )
            }
            None => {
                tracing::error!(
                    service = %service.name,
                    shutdown_timeout = ?timeout,
                    "service not stopped: the shutdown timeout ran out before its turn to stop (services stop in reverse order of registration); aborting it"
                );
                "the timeout ran out before its turn to stop; aborted".to_string()
            }
        };
        let message = format!("did not stop within the shutdown timeout ({timeout:?}): {detail}");
        service.handle.abort();
        service.slot.fault(message);
        host.record_failure(
            &service.name,
            FailureKind::TimedOut,
            format!("{detail} (shutdown timeout {timeout:?})"),
        );
        aborted.push(i);
    }
    // One grace for all of them: aborts take effect concurrently.
    let grace_ends = Instant::now() + ABORT_GRACE;
    for i in aborted {
        let service = &mut running[i];
        if tokio::time::timeout_at(grace_ends, &mut service.handle)
            .await
            .is_ok()
        {
            service.joined = true;
        } else {
            tracing::error!(service = %service.name, "service could not be aborted (is it blocking its thread?); leaving it behind");
        }
    }
}

fn ask_to_stop(service: &RunningService) {
    match service.slot.state() {
        ServiceState::Starting | ServiceState::Running | ServiceState::Restarting { .. } => {
            service.slot.set_state(ServiceState::Stopping);
        }
        _ => {}
    }
    service.token.cancel();
}

/// Names every channel that still holds items (or lost them with a dropped
/// receiver) now that every service has stopped.
fn report_items_left(host: &HostHandle) {
    for channel in &host.shared.channels {
        let left = channel.left();
        if left > 0 {
            tracing::error!(channel = %channel.name, left, "{left} items were never received: they are lost");
            host.record_failure(
                &channel.name,
                FailureKind::ItemsLeft,
                format!("{left} items were still queued or dropped with the receiver when the host stopped"),
            );
        }
    }
}
