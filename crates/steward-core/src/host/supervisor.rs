//! One supervisor task per service: init (bounded by its timeout), run, and
//! the failure policy. Every error and panic ends here, is logged at ERROR with
//! the service's name, and shows in the service's status.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::HostHandle;
use super::builder::Registered;
use crate::error::{error_chain, panic_message};
use crate::policy::RestartBudget;
use crate::status::Slot;
use crate::{BoxError, Cancelled, Context, FailurePolicy, ServiceState, TaskError};

/// A started service as the shutdown sequence sees it.
pub(crate) struct RunningService {
    pub(crate) name: Arc<str>,
    pub(crate) token: CancellationToken,
    pub(crate) handle: JoinHandle<()>,
    pub(crate) slot: Arc<Slot>,
}

/// Starts every service at once; none waits for another's init.
pub(crate) fn start_all(services: Vec<Registered>, host: &HostHandle) -> Vec<RunningService> {
    services
        .into_iter()
        .zip(host.shared.slots.iter())
        .map(|(registered, slot)| {
            let token = CancellationToken::new();
            let ctx = Context::new(token.clone(), slot.clone(), host.clone());
            let span = ctx.span().clone();
            let name = registered.name.clone();
            let init_timeout = registered.init_timeout;
            let supervised = async move {
                // The service (and any task group it holds) is dropped
                // when `supervise` returns; then wait for the children.
                supervise(registered, ctx.clone()).await;
                ctx.children_ended().await;
            }
            .instrument(span);
            // Every poll marked for the watchdog (see poll_mark.rs).
            let handle = tokio::spawn(crate::poll_mark::record(
                slot.clone(),
                init_timeout,
                supervised,
            ));
            RunningService {
                name,
                token,
                handle,
                slot: slot.clone(),
            }
        })
        .collect()
}

/// How one start (init + run) of a service ended.
enum Ended {
    /// Returned after being asked to stop, or by itself.
    Finished,
    /// Failed: error chain or panic message.
    Failed(String),
}

async fn supervise(mut reg: Registered, ctx: Context) {
    let name = reg.name.clone();
    let mut budget = RestartBudget::default();
    let mut attempt: u32 = 0;
    loop {
        if ctx.is_cancelled() {
            break;
        }
        ctx.slot().set_state(ServiceState::Starting);
        let started = Instant::now();
        let message = match start_once(&mut reg, &ctx).await {
            Ended::Finished => break,
            Ended::Failed(message) => message,
        };
        if ctx.is_cancelled() {
            // Failed while stopping: visible, but it was stopping anyway.
            tracing::error!(service = %name, error = %message, "service failed while stopping");
            ctx.slot().record_error(message);
            break;
        }
        tracing::error!(service = %name, error = %message, "service failed");
        ctx.slot().fault(message.clone());
        match &reg.policy {
            FailurePolicy::Ignore => {
                tracing::warn!(service = %name, "failure policy is Ignore: the service stays faulted");
                return stay_faulted(&ctx).await;
            }
            FailurePolicy::StopHost => {
                tracing::error!(service = %name, "failure policy is StopHost: shutting the host down");
                ctx.host().fail(&name, &message);
                return stay_faulted(&ctx).await;
            }
            FailurePolicy::Restart(policy) => {
                if ctx.host().is_shutting_down() {
                    return stay_faulted(&ctx).await;
                }
                if started.elapsed() >= policy.max_backoff {
                    attempt = 0; // it ran stably for a while: start the backoff over
                }
                if !budget.try_take(policy) {
                    tracing::error!(
                        service = %name,
                        max_restarts = policy.max_restarts,
                        window = ?policy.window,
                        "service keeps failing: restart limit reached, it stays faulted"
                    );
                    return stay_faulted(&ctx).await;
                }
                attempt = attempt.saturating_add(1);
                let delay = policy.backoff(attempt);
                // Checked: `now + TimeDelta::MAX` would panic for huge delays.
                let next_at = chrono::Duration::from_std(delay)
                    .ok()
                    .and_then(|d| chrono::Utc::now().checked_add_signed(d))
                    .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
                ctx.slot().restarting(attempt, next_at);
                tracing::warn!(service = %name, attempt, delay = ?delay, "restarting after failure");
                if ctx.sleep(delay).await.is_err() {
                    break;
                }
            }
        }
    }
    stop(&mut reg, &ctx).await;
}

/// Keeps a faulted service's status until the host stops it.
async fn stay_faulted(ctx: &Context) {
    ctx.cancelled().await;
}

/// Runs init (bounded by its timeout) then run, catching errors and panics.
async fn start_once(reg: &mut Registered, ctx: &Context) -> Ended {
    let timeout = reg.init_timeout.unwrap_or(Duration::from_secs(60));
    let init = AssertUnwindSafe(reg.service.init(ctx)).catch_unwind();
    let init = tokio::select! {
        biased;
        // Asked to stop during init: not a failure.
        _ = ctx.cancelled() => return Ended::Finished,
        init = tokio::time::timeout(timeout, init) => init,
    };
    match init {
        Err(_) => return Ended::Failed(format!("init did not finish within {timeout:?}")),
        Ok(Err(payload)) => {
            return Ended::Failed(format!(
                "init panicked: {}",
                panic_message(payload.as_ref())
            ));
        }
        Ok(Ok(Err(err))) => {
            if is_cancellation(ctx, &err) {
                return Ended::Finished;
            }
            return Ended::Failed(format!("init failed: {}", error_chain(err.as_ref())));
        }
        Ok(Ok(Ok(()))) => {}
    }
    if ctx.is_cancelled() {
        return Ended::Finished;
    }
    ctx.slot().set_running();
    tracing::debug!(service = ctx.name(), "service running");
    let run = AssertUnwindSafe(reg.service.run(ctx)).catch_unwind().await;
    match run {
        Ok(Ok(())) => {
            if !ctx.is_cancelled() {
                tracing::info!(service = ctx.name(), "service finished by itself");
            }
            Ended::Finished
        }
        Ok(Err(err)) if is_cancellation(ctx, &err) => Ended::Finished,
        Ok(Err(err)) => Ended::Failed(error_chain(err.as_ref())),
        Err(payload) => Ended::Failed(format!("panicked: {}", panic_message(payload.as_ref()))),
    }
}

/// `Err(Cancelled)` after being asked to stop is how a cancel-aware wait says
/// "stop", not a failure.
fn is_cancellation(ctx: &Context, err: &BoxError) -> bool {
    ctx.is_cancelled()
        && (err.is::<Cancelled>()
            || matches!(err.downcast_ref::<TaskError>(), Some(TaskError::Cancelled)))
}

/// The stop hook, then `Stopped`.
async fn stop(reg: &mut Registered, ctx: &Context) {
    ctx.slot().set_state(ServiceState::Stopping);
    let hook = AssertUnwindSafe(reg.service.on_stop(ctx))
        .catch_unwind()
        .await;
    let failure = match hook {
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(format!("stop hook failed: {}", error_chain(err.as_ref()))),
        Err(payload) => Some(format!(
            "stop hook panicked: {}",
            panic_message(payload.as_ref())
        )),
    };
    if let Some(message) = failure {
        tracing::error!(service = ctx.name(), error = %message, "service failed while stopping");
        ctx.slot().record_error(message);
    }
    ctx.slot().set_state(ServiceState::Stopped);
}
