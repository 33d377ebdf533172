//! The stop sequence: reverse order of registration, one shutdown timeout for
//! all, and services that ignore cancellation named and aborted.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::supervisor::RunningService;
use super::{ExitStatus, HostHandle};
use crate::ServiceState;

/// How long an aborted service gets to unwind before we stop waiting for it
/// (a task blocking its thread cannot be aborted at all).
const ABORT_GRACE: Duration = Duration::from_secs(1);

pub(crate) async fn stop_all(host: &HostHandle, mut running: Vec<RunningService>) -> ExitStatus {
    let timeout = host.shutdown_timeout();
    host.shared.shutting_down.store(true, Ordering::Relaxed);
    tracing::info!(timeout = ?timeout, services = running.len(), "shutting down");
    let deadline = Instant::now() + timeout;
    let mut asked_at: Vec<Option<Instant>> = vec![None; running.len()];
    let mut finished = vec![false; running.len()];

    let mut timed_out = false;
    for i in (0..running.len()).rev() {
        let service = &mut running[i];
        ask_to_stop(service);
        asked_at[i] = Some(Instant::now());
        match tokio::time::timeout_at(deadline, &mut service.handle).await {
            Ok(joined) => {
                finished[i] = true;
                if let Err(err) = joined {
                    // The supervisor catches the service's panics; this is a bug in it.
                    tracing::error!(service = %service.name, error = %err, "service supervisor crashed");
                }
            }
            Err(_) => {
                timed_out = true;
                break;
            }
        }
    }

    let mut aborted = Vec::new();
    if timed_out {
        // The budget is spent: tell everyone left, then cut off whoever is
        // still running and say who, and for how long they were asked.
        // Services only reached now had no time to stop: they are aborted
        // too, but must not be blamed for ignoring cancellation.
        let mut late = vec![false; running.len()];
        for (i, service) in running.iter().enumerate() {
            if asked_at[i].is_none() {
                ask_to_stop(service);
                asked_at[i] = Some(Instant::now());
                late[i] = true;
            }
        }
        tokio::task::yield_now().await;
        for (i, service) in running.iter_mut().enumerate() {
            if finished[i] || service.handle.is_finished() {
                continue;
            }
            let waited = asked_at[i].map_or(Duration::ZERO, |at| at.elapsed());
            if late[i] {
                tracing::error!(
                    service = %service.name,
                    shutdown_timeout = ?timeout,
                    "service not stopped: the shutdown timeout ran out before its turn to stop (services stop in reverse order of registration); aborting it"
                );
            } else {
                tracing::error!(
                    service = %service.name,
                    waited = ?waited,
                    shutdown_timeout = ?timeout,
                    "service ignored cancellation: still running {:.1} s after it was asked to stop; aborting it",
                    waited.as_secs_f64()
                );
            }
            abort(&mut service.handle, &service.name).await;
            service.slot.fault(if late[i] {
                format!(
                    "did not stop within the shutdown timeout ({timeout:?}): the timeout ran out before its turn to stop; aborted"
                )
            } else {
                format!(
                    "did not stop within the shutdown timeout ({timeout:?}): still running {:.1} s after it was asked to stop; aborted",
                    waited.as_secs_f64()
                )
            });
            aborted.push(service.name.to_string());
        }
    }

    let failure = host
        .shared
        .failure
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let status = match failure {
        Some(failure) => failure,
        None if !aborted.is_empty() => ExitStatus::ShutdownTimedOut { services: aborted },
        None => ExitStatus::Clean,
    };
    tracing::info!(code = status.code(), "host stopped");
    status
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

async fn abort(handle: &mut JoinHandle<()>, name: &str) {
    handle.abort();
    if tokio::time::timeout(ABORT_GRACE, handle).await.is_err() {
        tracing::error!(service = %name, "service could not be aborted (is it blocking its thread?); leaving it behind");
    }
}
