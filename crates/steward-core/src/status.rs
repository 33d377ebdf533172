//! What the host knows about each service and channel, as plain data.
//!
//! The supervisor writes into a [`Slot`] per service; [`HostStatus`] is a
//! copied snapshot of all slots that health endpoints, the CLI and tests read.

use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::channel::ChannelShared;
use crate::health::{self, Health, Vitals};
use crate::poll_mark::{Blocked, PollMark};
use crate::sync::LockExt;

/// Where a service is in its life.
///
/// ```text
///  Starting ──init ok──▶ Running ──asked to stop──▶ Stopping ──▶ Stopped
///     ▲                    │ error / panic / init timeout
///     │                    ▼
///  Restarting ◀──policy── Faulted  (stays Faulted under Ignore, StopHost,
///                                   or when restarts are exhausted)
/// ```
///
/// ```
/// use steward_core::ServiceState;
/// assert!(ServiceState::Running.is_running());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ServiceState {
    /// Running its init phase (or about to).
    Starting,
    /// Init finished; `run` is executing.
    Running,
    /// Failed and waiting for its next attempt.
    Restarting {
        /// Which restart this will be (1 for the first).
        attempt: u32,
        /// When the next attempt starts.
        next_at: DateTime<Utc>,
    },
    /// Failed, and the policy does not restart it (yet or at all).
    Faulted {
        /// The error with its whole chain, or the panic message.
        error: String,
        /// When it failed.
        at: DateTime<Utc>,
    },
    /// Asked to stop; finishing its work and its stop hook.
    Stopping,
    /// Finished.
    Stopped,
}

impl ServiceState {
    /// True while the service's `run` is executing normally.
    ///
    /// ```
    /// assert!(!steward_core::ServiceState::Stopped.is_running());
    /// ```
    pub fn is_running(&self) -> bool {
        matches!(self, ServiceState::Running)
    }

    /// True if the service failed and is not being restarted.
    ///
    /// ```
    /// assert!(!steward_core::ServiceState::Starting.is_faulted());
    /// ```
    pub fn is_faulted(&self) -> bool {
        matches!(self, ServiceState::Faulted { .. })
    }
}

/// The last error a service had, kept after it recovers.
///
/// ```
/// let e = steward_core::ErrorRecord { message: "boom".into(), at: chrono::Utc::now() };
/// assert_eq!(e.message, "boom");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorRecord {
    /// The error with its chain, or `panicked: <message>`.
    pub message: String,
    /// When it happened.
    pub at: DateTime<Utc>,
}

/// A snapshot of one service.
///
/// ```
/// # async fn demo(handle: steward_core::HostHandle) {
/// for s in handle.status().services {
///     println!("{}: {:?} (restarts: {})", s.name, s.state, s.restarts);
/// }
/// # }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    /// The service's unique name.
    pub name: String,
    /// Where it is in its life.
    #[serde(flatten)]
    pub state: ServiceState,
    /// Whether it reports itself ready to serve.
    pub ready: bool,
    /// The most recent error, if any.
    pub last_error: Option<ErrorRecord>,
    /// How many times it has been restarted.
    pub restarts: u32,
    /// When its ticker last fired, for periodic services.
    pub last_tick: Option<DateTime<Utc>>,
    /// Healthy, degraded (crash-looping) or unhealthy (faulted, or silent
    /// past its liveness interval).
    pub health: Health,
    /// Why it is not healthy, when it is not.
    pub problem: Option<String>,
    /// Set while the service holds its runtime thread without yielding
    /// (see [`Blocked`]); the host is not live meanwhile.
    pub blocked: Option<Blocked>,
}

/// A snapshot of one bounded channel.
///
/// ```
/// let c = steward_core::ChannelStatus { name: "work".into(), capacity: 8, depth: 3 };
/// assert!(c.depth <= c.capacity);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelStatus {
    /// The channel's name.
    pub name: String,
    /// How many items it can hold.
    pub capacity: usize,
    /// How many items are queued now.
    pub depth: usize,
}

/// A snapshot of the whole host: every service, every channel, and the
/// liveness and readiness derived from them.
///
/// ```
/// # fn demo(status: steward_core::HostStatus) {
/// if !status.live {
///     for s in status.faulted() { eprintln!("{} is faulted", s.name); }
/// }
/// # }
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    /// False if any service is unhealthy: faulted, blocking its runtime
    /// thread, or silent past its liveness interval.
    pub live: bool,
    /// The worst health of any service.
    pub health: Health,
    /// True when every service finished its init, reports ready, and the
    /// host is not shutting down.
    pub ready: bool,
    /// True once shutdown has begun.
    pub shutting_down: bool,
    /// Every service, in registration order.
    pub services: Vec<ServiceStatus>,
    /// Every channel, in creation order.
    pub channels: Vec<ChannelStatus>,
    /// Panics in tasks nobody supervises (a plain `tokio::spawn`), counted
    /// for the whole process since the panic hook was installed.
    pub unsupervised_panics: u64,
}

impl HostStatus {
    /// The services that are faulted.
    ///
    /// ```
    /// # fn demo(status: steward_core::HostStatus) {
    /// let names: Vec<_> = status.faulted().map(|s| s.name.as_str()).collect();
    /// # }
    /// ```
    pub fn faulted(&self) -> impl Iterator<Item = &ServiceStatus> {
        self.services.iter().filter(|s| s.state.is_faulted())
    }

    /// The services whose health is `health`.
    ///
    /// ```
    /// # fn demo(status: steward_core::HostStatus) {
    /// for s in status.with_health(steward_core::Health::Degraded) {
    ///     eprintln!("{} is degraded: {:?}", s.name, s.problem);
    /// }
    /// # }
    /// ```
    pub fn with_health(&self, health: Health) -> impl Iterator<Item = &ServiceStatus> {
        self.services.iter().filter(move |s| s.health == health)
    }

    /// The services that are not ready (including those still starting).
    ///
    /// ```
    /// # fn demo(status: steward_core::HostStatus) {
    /// let waiting = status.not_ready().count();
    /// # }
    /// ```
    pub fn not_ready(&self) -> impl Iterator<Item = &ServiceStatus> {
        self.services.iter().filter(|s| !service_ready(s))
    }

    /// One service by name.
    ///
    /// ```
    /// # fn demo(status: steward_core::HostStatus) {
    /// let ticker = status.service("ticker");
    /// # }
    /// ```
    pub fn service(&self, name: &str) -> Option<&ServiceStatus> {
        self.services.iter().find(|s| s.name == name)
    }
}

/// A service that finished by itself does not hold readiness back.
fn service_ready(s: &ServiceStatus) -> bool {
    (s.state.is_running() && s.ready) || s.state == ServiceState::Stopped
}

pub(crate) fn snapshot(
    slots: &[Arc<Slot>],
    channels: &[Arc<ChannelShared>],
    shutting_down: bool,
) -> HostStatus {
    let services: Vec<ServiceStatus> = slots.iter().map(|s| s.snapshot()).collect();
    let health = services
        .iter()
        .map(|s| s.health)
        .max()
        .unwrap_or(Health::Healthy);
    let live = health != Health::Unhealthy;
    let ready = !shutting_down && services.iter().all(service_ready);
    HostStatus {
        live,
        health,
        ready,
        shutting_down,
        services,
        channels: channels.iter().map(|c| c.snapshot()).collect(),
        unsupervised_panics: crate::panics::unsupervised_panics(),
    }
}

/// The supervisor's record of one service. One small lock per service keeps
/// writes from different services independent.
pub(crate) struct Slot {
    pub(crate) name: Arc<str>,
    /// Its registration index in its host.
    pub(crate) index: u32,
    inner: Mutex<SlotInner>,
    /// How many of its receives are draining a channel and waiting on
    /// senders (see `channel.rs`): the shutdown sequence moves on to the
    /// producers instead of waiting for it.
    pub(crate) parked: AtomicU32,
    /// Items it received from channels and has not sent on yet: what a
    /// pipeline stage may still pass on after it was asked to stop (see
    /// `channel/mod.rs`).
    pub(crate) drained: AtomicU32,
    /// Set when its task is first polled: channel ends record their
    /// services when used, so the shutdown sequence orders producers and
    /// consumers only after every task has had that chance.
    pub(crate) began: AtomicBool,
    /// Written on every poll of the service (see `poll_mark.rs`).
    pub(crate) poll: PollMark,
}

struct SlotInner {
    state: ServiceState,
    ready: bool,
    /// What the service itself last said about readiness in this start, so
    /// a `set_ready(false)` during init is not overwritten when init ends.
    reported: Option<bool>,
    last_error: Option<ErrorRecord>,
    restarts: u32,
    last_tick: Option<DateTime<Utc>>,
    vitals: Vitals,
}

impl Slot {
    /// A slot for service `name`, registered `index`th, expected to beat every `liveness` (if
    /// set) and counted stable again `stable_after` a restart.
    pub(crate) fn new(
        name: Arc<str>,
        index: u32,
        liveness: Option<Duration>,
        stable_after: Duration,
    ) -> Self {
        Slot {
            name,
            index,
            parked: AtomicU32::new(0),
            drained: AtomicU32::new(0),
            began: AtomicBool::new(false),
            inner: Mutex::new(SlotInner {
                state: ServiceState::Starting,
                ready: false,
                reported: None,
                last_error: None,
                restarts: 0,
                last_tick: None,
                vitals: Vitals {
                    liveness_ms: liveness.map_or(0, health::millis_u32),
                    stable_after_ms: health::millis_u32(stable_after),
                    running_since: None,
                    last_beat: None,
                },
            }),
            poll: PollMark::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SlotInner> {
        // A panic while holding this lock can only come from our own short,
        // non-panicking updates; recover the data rather than poison status.
        self.inner.lock_or_recover()
    }

    pub(crate) fn state(&self) -> ServiceState {
        self.lock().state.clone()
    }

    pub(crate) fn set_state(&self, state: ServiceState) {
        let mut inner = self.lock();
        if !state.is_running() {
            inner.ready = false;
        }
        if state == ServiceState::Starting {
            inner.reported = None;
        }
        inner.state = state;
    }

    /// Init finished: the service runs and is ready unless it says otherwise.
    pub(crate) fn set_running(&self) {
        let mut inner = self.lock();
        inner.state = ServiceState::Running;
        inner.ready = inner.reported.unwrap_or(true);
        inner.vitals.running_since = Some(Instant::now());
        inner.vitals.last_beat = None;
    }

    pub(crate) fn set_ready(&self, ready: bool) {
        let mut inner = self.lock();
        inner.reported = Some(ready);
        // Readiness only shows while running; during init it is remembered.
        if inner.state.is_running() {
            inner.ready = ready;
        }
    }

    pub(crate) fn fault(&self, message: String) {
        let at = Utc::now();
        let mut inner = self.lock();
        inner.ready = false;
        inner.last_error = Some(ErrorRecord {
            message: message.clone(),
            at,
        });
        inner.state = ServiceState::Faulted { error: message, at };
    }

    pub(crate) fn record_error(&self, message: String) {
        self.lock().last_error = Some(ErrorRecord {
            message,
            at: Utc::now(),
        });
    }

    pub(crate) fn restarting(&self, attempt: u32, next_at: DateTime<Utc>) {
        let mut inner = self.lock();
        inner.restarts += 1;
        inner.ready = false;
        inner.state = ServiceState::Restarting { attempt, next_at };
    }

    pub(crate) fn record_tick(&self) {
        let mut inner = self.lock();
        inner.last_tick = Some(Utc::now());
        inner.vitals.last_beat = Some(Instant::now());
    }

    pub(crate) fn record_beat(&self) {
        self.lock().vitals.last_beat = Some(Instant::now());
    }

    pub(crate) fn snapshot(&self) -> ServiceStatus {
        let inner = self.lock();
        let blocked = self.poll.blocked();
        let (health, problem) = match &blocked {
            Some(b) => (Health::Unhealthy, Some(b.message.clone())),
            None => health::judge(&inner.state, inner.restarts, &inner.vitals),
        };
        ServiceStatus {
            name: self.name.to_string(),
            state: inner.state.clone(),
            ready: inner.ready,
            last_error: inner.last_error.clone(),
            restarts: inner.restarts,
            last_tick: inner.last_tick,
            health,
            problem,
            blocked,
        }
    }
}
