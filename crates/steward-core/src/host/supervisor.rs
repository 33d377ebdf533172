//! One supervisor task per service: init (bounded by its timeout), run, the
//! failure policy, the stop hook and the drop. Every error and panic ends
//! here, is logged at ERROR with the service's name, shows in the service's
//! status, and is kept for the exit status when the host cannot recover it.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::FutureExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::builder::Registered;
use super::{FailureKind, HostHandle};
use crate::error::{error_chain, panic_message};
use crate::policy::RestartBudget;
use crate::status::Slot;
use crate::{BoxError, Cancelled, Context, FailurePolicy, ServiceState, TaskError};

/// Identical failures within this window after a logged one are counted
/// instead of logged, so a crash loop cannot flood the logs.
const REPEAT_WINDOW: Duration = Duration::from_secs(10);

/// A started service as the shutdown sequence sees it.
pub(crate) struct RunningService {
    pub(crate) name: Arc<str>,
    pub(crate) token: CancellationToken,
    pub(crate) handle: JoinHandle<()>,
    pub(crate) slot: Arc<Slot>,
    /// Its task was awaited to the end (a `JoinHandle` must not be polled
    /// again after that).
    pub(crate) joined: bool,
    /// When the shutdown sequence asked it to stop.
    pub(crate) asked_at: Option<Instant>,
    /// Stopped after every other service.
    pub(crate) stops_last: bool,
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
            let stops_last = registered.stops_last;
            // One future that owns the registration: an `async move` block
            // around it would keep a second, dead copy of it in every task.
            let supervised = supervise(registered, ctx).instrument(span);
            // Every poll marked for the watchdog and run as this service
            // (see poll_mark.rs).
            let handle = tokio::spawn(crate::poll_mark::record(slot.clone(), supervised));
            RunningService {
                name,
                token,
                handle,
                slot: slot.clone(),
                joined: false,
                asked_at: None,
                stops_last,
            }
        })
        .collect()
}

/// How one start (init + run) of a service ended.
enum Ended {
    /// Asked to stop (during init or run), and it did.
    Stopped,
    /// `run` returned `Ok(())` while the host was not shutting down.
    Returned,
    /// Failed: error chain or panic message.
    Failed(String),
}

/// What the supervisor remembers of the current start.
struct Start {
    /// The most recent init finished, so the service's state is its own and
    /// `on_stop` may save it; after an init cut short it must not.
    init_done: bool,
    /// It is faulted and stays so until the host stops it.
    faulted: bool,
}

async fn supervise(mut reg: Registered, ctx: Context) {
    // ctx.spawn children die with this task, even when the host aborts it.
    let _children = ctx.abort_children_on_drop();
    let ctx = &ctx;
    ctx.slot().began.store(true, Ordering::SeqCst);
    ctx.host().shared.progress.notify_waiters();
    let mut start = Start {
        init_done: false,
        faulted: false,
    };
    // Made on the first failure: most services never fail, and every idle
    // one would carry it.
    let mut recovery: Option<Box<Recovery>> = None;
    loop {
        if ctx.is_cancelled() {
            break;
        }
        ctx.slot().set_state(ServiceState::Starting);
        let started = Instant::now();
        let message = match start_once(&mut reg, ctx, &mut start.init_done).await {
            Ended::Stopped => break,
            Ended::Returned if reg.may_finish => {
                tracing::info!(service = ctx.name(), "service finished by itself");
                break;
            }
            Ended::Returned => "ended by itself while the host was running: `run` returned Ok(()) \
                before it was asked to stop (register it with `.may_finish()` if that is expected)"
                .to_string(),
            Ended::Failed(message) => message,
        };
        if ctx.is_cancelled() {
            // Asked to stop, and the drain failed: its work may be lost.
            tracing::error!(service = ctx.name(), error = %message, "service failed while stopping");
            ctx.slot().record_error(message.clone());
            ctx.host()
                .record_failure(ctx.name(), FailureKind::DrainFailed, message);
            break;
        }
        let recovery = recovery.get_or_insert_with(Box::default);
        let logged = recovery.log.failed(ctx.name(), &message);
        ctx.slot().fault(message.clone());
        match &reg.policy {
            FailurePolicy::Ignore => {
                tracing::warn!(
                    service = ctx.name(),
                    "failure policy is Ignore: the service stays faulted"
                );
                ctx.host()
                    .record_failure(ctx.name(), FailureKind::Faulted, message);
                start.faulted = true;
                break;
            }
            FailurePolicy::StopHost => {
                tracing::error!(
                    service = ctx.name(),
                    "failure policy is StopHost: shutting the host down"
                );
                ctx.host().fail(ctx.name(), &message);
                start.faulted = true;
                break;
            }
            FailurePolicy::Restart(policy) => {
                if ctx.host().is_shutting_down() {
                    // No restart into a stopping host: it ends unrecovered.
                    unrecovered(ctx, "failed while the host was stopping", message);
                    break;
                }
                if started.elapsed() >= policy.max_backoff {
                    recovery.attempt = 0; // it ran stably for a while: start the backoff over
                }
                if !recovery.budget.try_take(policy) {
                    tracing::error!(
                        service = ctx.name(),
                        max_restarts = policy.max_restarts,
                        window = ?policy.window,
                        "service keeps failing: restart limit reached, it stays faulted"
                    );
                    ctx.host()
                        .record_failure(ctx.name(), FailureKind::RestartsExhausted, message);
                    start.faulted = true;
                    break;
                }
                recovery.attempt = recovery.attempt.saturating_add(1);
                let attempt = recovery.attempt;
                let delay = policy.backoff(attempt);
                // Checked: `now + TimeDelta::MAX` would panic for huge delays.
                let next_at = chrono::Duration::from_std(delay)
                    .ok()
                    .and_then(|d| chrono::Utc::now().checked_add_signed(d))
                    .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
                ctx.slot().restarting(attempt, next_at);
                if logged {
                    tracing::warn!(service = ctx.name(), attempt, delay = ?delay, "restarting after failure");
                }
                // Boxed: see `start_once`.
                if Box::pin(ctx.sleep(delay)).await.is_err() {
                    // Asked to stop while waiting to restart: its last
                    // start failed and it never recovered.
                    unrecovered(ctx, "stopped while waiting to restart after", message);
                    break;
                }
            }
        }
    }
    if start.faulted {
        // Keeps its Faulted status (and its resources) until the host stops it.
        ctx.cancelled().await;
    }
    // Boxed: see `start_once`.
    Box::pin(stop(&mut reg, ctx, &start)).await;
    drop_service(reg, ctx);
    // The service (and any task group it held) is dropped by now; wait for
    // the children to be gone too.
    ctx.children_ended().await;
}

/// Records that a service under `Restart` was stopped before it recovered
/// from its last failure.
fn unrecovered(ctx: &Context, how: &str, message: String) {
    ctx.host().record_failure(
        ctx.name(),
        FailureKind::Unrecovered,
        format!("{how}: {message}"),
    );
}

/// Runs init (bounded by its timeout) then run, catching errors and panics.
/// Sets `init_done` once init finished.
async fn start_once(reg: &mut Registered, ctx: &Context, init_done: &mut bool) -> Ended {
    *init_done = false;
    // Boxed, like the restart wait and the stop below: every idle service's
    // task carries its largest await for its whole life, and init's timer
    // and select are only alive for a moment (a tokio task is allocated in
    // 128-byte steps; unboxed, these cost 128 bytes per service).
    if let Err(ended) = Box::pin(init_once(reg, ctx)).await {
        return ended;
    }
    *init_done = true;
    if ctx.is_cancelled() {
        return Ended::Stopped;
    }
    ctx.slot().set_running();
    tracing::debug!(service = ctx.name(), "service running");
    let run = AssertUnwindSafe(reg.service.run(ctx)).catch_unwind();
    // A failed ctx.spawn child fails the service; dropping `child_failed` ends this start's children.
    let run = tokio::select! {
        run = run => run,
        message = ctx.child_failed() => return Ended::Failed(format!("child task failed: {message}")),
    };
    match run {
        // Returning while the host shuts down (but before this service's
        // turn) is how a service that watches the host's shutdown stops.
        Ok(Ok(())) if ctx.is_cancelled() || ctx.host().is_shutting_down() => Ended::Stopped,
        Ok(Ok(())) => Ended::Returned,
        Ok(Err(err)) if is_cancellation(ctx, &err) => Ended::Stopped,
        Ok(Err(err)) => Ended::Failed(error_chain(err.as_ref())),
        Err(payload) => Ended::Failed(format!("panicked: {}", panic_message(payload.as_ref()))),
    }
}

/// Runs init, bounded by its timeout; `Err` says how the start ended.
async fn init_once(reg: &mut Registered, ctx: &Context) -> Result<(), Ended> {
    let timeout = ctx.slot().poll.init_timeout();
    let init = AssertUnwindSafe(reg.service.init(ctx)).catch_unwind();
    let init = tokio::select! {
        biased;
        // Asked to stop during init: not a failure.
        _ = ctx.cancelled() => return Err(Ended::Stopped),
        init = tokio::time::timeout(timeout, init) => init,
    };
    match init {
        Err(_) => Err(Ended::Failed(format!(
            "init did not finish within {timeout:?}"
        ))),
        Ok(Err(payload)) => Err(Ended::Failed(format!(
            "init panicked: {}",
            panic_message(payload.as_ref())
        ))),
        Ok(Ok(Err(err))) if is_cancellation(ctx, &err) => Err(Ended::Stopped),
        Ok(Ok(Err(err))) => Err(Ended::Failed(format!(
            "init failed: {}",
            error_chain(err.as_ref())
        ))),
        Ok(Ok(Ok(()))) => Ok(()),
    }
}

/// `Err(Cancelled)` after being asked to stop is how a cancel-aware wait says
/// "stop", not a failure.
fn is_cancellation(ctx: &Context, err: &BoxError) -> bool {
    // Anywhere in the chain: a `SendError::Cancelled` returned with `?` has
    // `Cancelled` as its source.
    let first: &(dyn std::error::Error + 'static) = err.as_ref();
    ctx.is_cancelled()
        && std::iter::successors(Some(first), |e| e.source()).any(|e| {
            e.is::<Cancelled>()
                || matches!(e.downcast_ref::<TaskError>(), Some(TaskError::Cancelled))
        })
}

/// The stop hook, if the last init finished, then `Stopped` (a faulted
/// service keeps its `Faulted` state).
async fn stop(reg: &mut Registered, ctx: &Context, start: &Start) {
    if !start.faulted {
        ctx.slot().set_state(ServiceState::Stopping);
    }
    if start.init_done {
        let hook = AssertUnwindSafe(reg.service.on_stop(ctx))
            .catch_unwind()
            .await;
        let failure = match hook {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some(("stop hook failed", error_chain(err.as_ref()))),
            Err(payload) => Some(("stop hook panicked", panic_message(payload.as_ref()))),
        };
        if let Some((what, error)) = failure {
            let message = format!("{what}: {error}");
            tracing::error!(service = ctx.name(), error = %message, "service failed while stopping");
            ctx.slot().record_error(message);
            let error = if what == "stop hook panicked" {
                format!("panicked: {error}")
            } else {
                error
            };
            ctx.host()
                .record_failure(ctx.name(), FailureKind::StopFailed, error);
        }
    } else {
        tracing::debug!(
            service = ctx.name(),
            "init did not finish: on_stop skipped so it cannot save state init never restored"
        );
    }
    if !start.faulted {
        ctx.slot().set_state(ServiceState::Stopped);
    }
}

/// Drops the service (closing the channel ends it holds) and reports a
/// panic in its `Drop`.
fn drop_service(reg: Registered, ctx: &Context) {
    let Registered { service, .. } = reg;
    if let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(move || drop(service))) {
        let panic = panic_message(payload.as_ref());
        let message = format!("panicked when dropped: {panic}");
        tracing::error!(service = ctx.name(), error = %message, "service failed while stopping");
        ctx.slot().record_error(message);
        ctx.host()
            .record_failure(ctx.name(), FailureKind::DropPanicked, panic);
    }
}

/// What the supervisor keeps across failures of one service.
#[derive(Default)]
struct Recovery {
    budget: RestartBudget,
    log: FailureLog,
    attempt: u32,
}

/// Logs failures at ERROR, but counts an identical failure that comes within
/// [`REPEAT_WINDOW`] of the last logged one instead of logging it again.
#[derive(Default)]
struct FailureLog {
    last: Option<(String, Instant)>,
    repeated: u32,
}

impl FailureLog {
    /// Logs `message` unless it repeats; true if it was logged.
    fn failed(&mut self, service: &str, message: &str) -> bool {
        let now = Instant::now();
        if let Some((last, at)) = &self.last {
            if last == message && now.duration_since(*at) < REPEAT_WINDOW {
                self.repeated += 1;
                return false;
            }
            if last != message && self.repeated > 0 {
                tracing::error!(
                    service,
                    error = %last,
                    repeated = self.repeated,
                    "service failed {} more times with this error",
                    self.repeated
                );
                self.repeated = 0;
            }
        }
        if self.repeated > 0 {
            tracing::error!(service, error = %message, repeated = self.repeated, "service failed (the same error again, {} times since the last line)", self.repeated);
        } else {
            tracing::error!(service, error = %message, "service failed");
        }
        self.repeated = 0;
        self.last = Some((message.to_string(), now));
        true
    }
}
