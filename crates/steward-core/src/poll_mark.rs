//! Cheap marks that let an OS thread outside the runtime see who is stuck.
//!
//! A service's supervised future is wrapped in [`Recorded`]: on every poll it
//! writes "polled since tick T" into the service's [`PollMark`] and clears it
//! when the poll returns. The host's watchdog thread (see
//! `host/watchdog.rs`) advances the coarse [`clock`] and reads the marks: a
//! mark that stays set for longer than the blocked threshold means the
//! service is holding its runtime thread (`std::thread::sleep`, a long
//! synchronous loop, a blocking lock) and cannot be cancelled or timed out
//! by anything async.
//!
//! A poll costs two relaxed stores, one relaxed load and a thread-local
//! counter: no clock read, no reference counting, no lock.
//!
//! The same thread-local counter tells the panic hook (`panics.rs`) whether
//! a panic happens where something catches and reports it or
//! in a task nobody supervises.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use pin_project_lite::pin_project;
use serde::Serialize;

use crate::status::Slot;
use crate::sync::LockExt;

/// One tick of the coarse clock: the resolution of "blocked since".
pub(crate) const TICK: Duration = Duration::from_millis(50);

/// Ticks since [`epoch`], plus one so that 0 can mean "not being polled".
/// Advanced only by watchdog threads; polls just read it.
static CLOCK: AtomicU64 = AtomicU64::new(1);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Brings the clock up to date. Several hosts' watchdogs may call this at
/// once: the clock is derived from one epoch and only moves forward.
pub(crate) fn advance_clock() -> u64 {
    let ticks = epoch().elapsed().as_millis() / TICK.as_millis();
    let now = u64::try_from(ticks).unwrap_or(u64::MAX - 1) + 1;
    CLOCK.fetch_max(now, Ordering::Relaxed).max(now)
}

/// Converts a number of ticks into a duration.
pub(crate) fn ticks_to_duration(ticks: u64) -> Duration {
    TICK.saturating_mul(u32::try_from(ticks).unwrap_or(u32::MAX))
}

thread_local! {
    /// How many polls of code whose panics Steward catches are on this
    /// thread's stack right now.
    static HANDLED_DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The service whose supervised future this thread is polling.
    static CURRENT: Cell<Option<ServiceKey>> = const { Cell::new(None) };
}

/// Identifies a service's [`Slot`] by its address and registration index:
/// free to copy into a thread-local on every poll (an `Arc` would cost two
/// atomic updates), and turned back into the slot only by whoever holds the
/// slots ([`ServiceKey::find`]), never dereferenced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ServiceKey {
    addr: usize,
    index: u32,
}

impl ServiceKey {
    pub(crate) fn of(slot: &Arc<Slot>) -> ServiceKey {
        ServiceKey {
            addr: Arc::as_ptr(slot) as usize,
            index: slot.index,
        }
    }

    /// This service's slot among a host's `slots`; `None` if it belongs to
    /// another host.
    pub(crate) fn find(self, slots: &[Arc<Slot>]) -> Option<&Arc<Slot>> {
        let index = usize::try_from(self.index).ok()?;
        slots.get(index).filter(|s| ServiceKey::of(s) == self)
    }
}

/// The service whose future this thread is polling right now, if any.
pub(crate) fn current_service() -> Option<ServiceKey> {
    CURRENT.with(Cell::get)
}

/// True while this thread polls a future whose panics are caught and
/// reported by Steward (a service, a task-group child, a blocking call).
pub(crate) fn in_handled_code() -> bool {
    HANDLED_DEPTH.with(Cell::get) > 0
}

/// Restores the depth even when the poll unwinds: the hook runs before the
/// unwind, so it still sees the mark set.
struct DepthGuard;

impl DepthGuard {
    fn enter() -> DepthGuard {
        HANDLED_DEPTH.with(|d| d.set(d.get().saturating_add(1)));
        DepthGuard
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        HANDLED_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

pin_project! {
    /// A task that runs as part of the service that spawned it (a job
    /// attempt of a worker service): its channel use counts as the
    /// service's, and its panics, which it catches itself, are not counted
    /// as unsupervised. It has no mark of its own: the watchdog does not
    /// watch it.
    pub(crate) struct Inherited<F> {
        #[pin]
        inner: F,
        service: Option<ServiceKey>,
    }
}

/// Runs `fut` as part of the service whose poll calls this, if any.
pub(crate) fn inherit<F: Future>(inner: F) -> Inherited<F> {
    Inherited {
        inner,
        service: current_service(),
    }
}

impl<F: Future> Future for Inherited<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _current = CurrentGuard::set(*this.service);
        let _depth = DepthGuard::enter();
        this.inner.poll(cx)
    }
}

/// Restores the thread's current service when a poll returns or unwinds.
struct CurrentGuard {
    outer: Option<ServiceKey>,
}

impl CurrentGuard {
    fn set(service: Option<ServiceKey>) -> CurrentGuard {
        CurrentGuard {
            outer: CURRENT.with(|c| c.replace(service)),
        }
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.outer));
    }
}

/// Runs `f` as code whose panics Steward catches and reports (a blocking
/// call's closure, for example).
pub(crate) fn handled<R>(f: impl FnOnce() -> R) -> R {
    let _depth = DepthGuard::enter();
    f()
}

/// Why a service shows as blocked in its status: its future has been inside
/// one poll, holding a runtime thread, for longer than the host's blocked
/// threshold ([`HostBuilder::blocked_after`](crate::HostBuilder::blocked_after)).
///
/// ```
/// # fn demo(status: steward_core::HostStatus) {
/// for s in status.blocked() {
///     let b = s.blocked.as_ref().expect("blocked() only yields blocked services");
///     eprintln!("{} is blocking its thread since {}: {}", s.name, b.since, b.message);
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocked {
    /// When the poll that does not return began (to the watchdog's tick).
    pub since: DateTime<Utc>,
    /// What the watchdog concluded, e.g. `blocking its runtime thread` or
    /// `init did not finish within 1s: blocking its runtime thread`.
    pub message: String,
}

impl crate::HostStatus {
    /// The services blocking their runtime thread right now.
    ///
    /// ```
    /// # fn demo(status: steward_core::HostStatus) {
    /// let names: Vec<_> = status.blocked().map(|s| s.name.as_str()).collect();
    /// # }
    /// ```
    pub fn blocked(&self) -> impl Iterator<Item = &crate::ServiceStatus> {
        self.services.iter().filter(|s| s.blocked.is_some())
    }
}

/// Where a service's supervised future is being polled, written by
/// [`Recorded`] and read by the watchdog thread.
#[derive(Default)]
pub(crate) struct PollMark {
    /// The clock's tick when the current poll began; 0 between polls.
    since: AtomicU64,
    /// The service's init timeout, in milliseconds, for the watchdog to
    /// enforce when init blocks its thread (the async timer cannot fire).
    init_timeout_ms: AtomicU32,
    /// What only a blocked service or one with child tasks needs: made on
    /// first use, because every idle service would carry it.
    rare: Mutex<Option<Box<Rare>>>,
    /// Set once a child registered a mark.
    child_marks: AtomicBool,
}

/// The parts of a [`PollMark`] most services never use.
#[derive(Default)]
struct Rare {
    /// Set and cleared by the watchdog; shown in the service's status.
    blocked: Option<Blocked>,
    /// The marks of the service's child tasks (task-group children,
    /// `ctx.spawn`), each written by its own [`Recorded`] wrapper; dead ones
    /// are pruned by the watchdog.
    children: Vec<Weak<AtomicU64>>,
}

impl PollMark {
    /// The tick the current poll began at, or `None` between polls.
    pub(crate) fn polled_since(&self) -> Option<u64> {
        match self.since.load(Ordering::Relaxed) {
            0 => None,
            tick => Some(tick),
        }
    }

    /// The earliest tick at which a poll still in progress began, the
    /// service's own or one of its children's; prunes ended children.
    pub(crate) fn oldest_poll(&self) -> Option<u64> {
        let mut oldest = self.polled_since();
        if !self.child_marks.load(Ordering::Relaxed) {
            // Most services never start a child: no lock on every scan.
            return oldest;
        }
        let mut rare = self.rare.lock_or_recover();
        let Some(rare) = rare.as_mut() else {
            return oldest;
        };
        rare.children.retain(|child| {
            let Some(child) = child.upgrade() else {
                return false;
            };
            let since = child.load(Ordering::Relaxed);
            if since != 0 {
                oldest = Some(oldest.map_or(since, |o| o.min(since)));
            }
            true
        });
        oldest
    }

    pub(crate) fn set_init_timeout(&self, timeout: Duration) {
        let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        self.init_timeout_ms.store(ms, Ordering::Relaxed);
    }

    pub(crate) fn init_timeout(&self) -> Duration {
        Duration::from_millis(self.init_timeout_ms.load(Ordering::Relaxed).into())
    }

    pub(crate) fn blocked(&self) -> Option<Blocked> {
        let rare = self.rare.lock_or_recover();
        rare.as_ref().and_then(|r| r.blocked.clone())
    }

    pub(crate) fn set_blocked(&self, blocked: Option<Blocked>) {
        let mut rare = self.rare.lock_or_recover();
        match (rare.as_mut(), blocked) {
            (Some(rare), blocked) => rare.blocked = blocked,
            (None, None) => {}
            (None, Some(blocked)) => {
                *rare = Some(Box::new(Rare {
                    blocked: Some(blocked),
                    children: Vec::new(),
                }));
            }
        }
    }

    fn add_child(&self, mark: &Arc<AtomicU64>) {
        let mut rare = self.rare.lock_or_recover();
        rare.get_or_insert_with(Box::default)
            .children
            .push(Arc::downgrade(mark));
        self.child_marks.store(true, Ordering::Relaxed);
    }
}

pin_project! {
    /// Marks every poll of a service's supervised future (or of one of its
    /// child tasks) in a mark the watchdog reads.
    pub(crate) struct Recorded<F> {
        #[pin]
        inner: F,
        slot: Arc<Slot>,
        // A child's own mark; `None` for the service's future, whose mark
        // is the slot's.
        child: Option<Arc<AtomicU64>>,
    }
}

/// Wraps a service's supervised future so the watchdog can see it poll.
pub(crate) fn record<F: Future>(slot: Arc<Slot>, inner: F) -> Recorded<F> {
    Recorded {
        inner,
        slot,
        child: None,
    }
}

/// Wraps a child task of the service (a task-group child, a `ctx.spawn`):
/// it has a mark of its own, because it may be polled on another thread at
/// the same time as the service, and a block in it is the service's.
pub(crate) fn record_child<F: Future>(slot: Arc<Slot>, inner: F) -> Recorded<F> {
    let mark = Arc::new(AtomicU64::new(0));
    slot.poll.add_child(&mark);
    Recorded {
        inner,
        slot,
        child: Some(mark),
    }
}

/// Clears the mark when the poll returns or unwinds.
struct SinceGuard<'a> {
    since: &'a AtomicU64,
}

impl Drop for SinceGuard<'_> {
    fn drop(&mut self) {
        self.since.store(0, Ordering::Relaxed);
    }
}

impl<F: Future> Future for Recorded<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let since = match this.child {
            Some(mark) => &**mark,
            None => &this.slot.poll.since,
        };
        since.store(CLOCK.load(Ordering::Relaxed), Ordering::Relaxed);
        let _current = CurrentGuard::set(Some(ServiceKey::of(this.slot)));
        let _since = SinceGuard { since };
        let _depth = DepthGuard::enter();
        this.inner.poll(cx)
    }
}
