//! The watchdog: one OS thread per running host, with a small runtime of its
//! own, so that it keeps working while every thread of the host's runtime is
//! blocked (failure 4 of the issue: `std::thread::sleep` in a service froze
//! health checks, init timeouts and the shutdown timeout alike).
//!
//! Every tick it:
//! - advances the coarse clock and reads each service's poll mark
//!   (`poll_mark.rs`): a service inside one poll for longer than
//!   [`HostBuilder::blocked_after`] is *blocked*: logged at ERROR, shown in
//!   its status (`blocked`), and the host is not live until it yields. An
//!   init that blocks past its init timeout is reported here, since the
//!   async timer cannot fire on a blocked thread;
//! - listens for SIGINT/SIGTERM (`signals.rs`), when the host handles them;
//! - bounds the process's exit when [`HostBuilder::hard_exit`] is on: once
//!   shutdown was requested, the process ends at the shutdown timeout plus
//!   [`EXIT_GRACE`] with exit code 2, after one ERROR line naming what is
//!   stuck, if the host has not returned by then or left work running
//!   (a service that could not be aborted, a blocking call).
//!
//! It detects; it cannot interrupt. A blocked thread stays blocked until its
//! code returns, and blocking work is abandoned, never stopped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::HostHandle;
use super::signals::{Received, Signals, on_signal, on_signal_after_return};
use super::watch_config::WatchConfig;
use crate::ServiceState;
use crate::poll_mark::{self, Blocked, ServiceKey};
use crate::status::Slot;

/// How long after the shutdown timeout the watchdog ends the process: the
/// host's own abort of late services (one second each) normally finishes
/// well within it.
pub(crate) const EXIT_GRACE: Duration = Duration::from_secs(2);
/// The code a hard exit ends the process with: the same as
/// [`ExitStatus::ShutdownTimedOut`](crate::ExitStatus::ShutdownTimedOut).
pub(crate) const EXIT_SHUTDOWN_TIMED_OUT: i32 = 2;

/// Hosts between `arm` and their return, in this process.
static RUNNING_HOSTS: AtomicUsize = AtomicUsize::new(0);
/// A watchdog thread already listens for signals after its host returned.
static LINGERING: AtomicBool = AtomicBool::new(false);

/// The running watchdog, owned by [`Host::run`](crate::Host::run).
pub(crate) struct Watchdog {
    host: HostHandle,
    hard_exit: bool,
    /// Dropped when the host returns (or its `run` is dropped): the thread
    /// then only waits for leftovers.
    _returned: Option<oneshot::Sender<()>>,
}

/// Installs the panic hook if asked and starts the watchdog thread. Returns
/// once signals are listened for, so none sent after `run` started is lost.
pub(crate) fn arm(host: &HostHandle, config: &WatchConfig, handle_signals: bool) -> Watchdog {
    if config.panic_hook {
        crate::panics::install_hook();
    }
    let hard_exit = config.hard_exit.unwrap_or(handle_signals);
    RUNNING_HOSTS.fetch_add(1, Ordering::SeqCst);
    // Up to date before any service is polled, so no mark reads a stale tick.
    poll_mark::advance_clock();
    let tick = poll_mark::TICK.as_nanos().max(1);
    let watch = Watch {
        host: host.clone(),
        blocked_after: u64::try_from(config.blocked_after.as_nanos().div_ceil(tick))
            .unwrap_or(u64::MAX)
            .max(1),
        hard_exit,
        episodes: vec![None; host.shared.slots.len()],
        shutdown_at: None,
        returned: false,
        signaled: false,
    };
    let (returned_tx, returned_rx) = oneshot::channel();
    let (ready_tx, ready_rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("steward-watchdog".to_string())
        .spawn(move || watch.run_thread(handle_signals, returned_rx, ready_tx));
    match spawned {
        // Registering the listeners takes microseconds; waiting for it here
        // is the one blocking wait on the runtime, once per run.
        Ok(_) => {
            let _ = ready_rx.recv();
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot start the watchdog thread: blocked services go undetected and signals unheard")
        }
    }
    Watchdog {
        host: host.clone(),
        hard_exit,
        _returned: Some(returned_tx),
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        RUNNING_HOSTS.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Watchdog {
    /// The host returned: name the blocking work it abandons. The watchdog
    /// thread keeps the exit bound armed while any is left.
    pub(crate) fn host_returned(self) {
        let slots = &self.host.shared.slots;
        for (service, calls) in self.host.blocking().still_running() {
            let name = name_of(slots, service);
            let bound = if self.hard_exit {
                format!(
                    "; the process exits with code {EXIT_SHUTDOWN_TIMED_OUT} if it is still running {:?} after shutdown began",
                    self.host.shutdown_timeout() + EXIT_GRACE
                )
            } else {
                String::new()
            };
            tracing::error!(
                service = %name,
                calls,
                "blocking work still running after the host stopped: abandoned, not stopped (a blocking call cannot be interrupted){bound}"
            );
        }
    }
}

struct Watch {
    host: HostHandle,
    /// In ticks.
    blocked_after: u64,
    hard_exit: bool,
    /// Per service: the blocked poll being reported, if any.
    episodes: Vec<Option<Episode>>,
    shutdown_at: Option<Instant>,
    returned: bool,
    /// A signal already started the shutdown: the next one ends the process.
    signaled: bool,
}

#[derive(Debug, Clone, Copy)]
struct Episode {
    /// The tick the blocked poll began at.
    since: u64,
    init_reported: bool,
}

impl Watch {
    fn run_thread(
        mut self,
        handle_signals: bool,
        mut returned: oneshot::Receiver<()>,
        ready: mpsc::SyncSender<()>,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        let runtime = match runtime {
            Ok(runtime) => runtime,
            Err(err) => {
                tracing::error!(error = %err, "cannot start the watchdog's runtime: blocked services go undetected and signals unheard");
                let _ = ready.send(());
                return;
            }
        };
        runtime.block_on(async move {
            let mut signals = if handle_signals {
                match Signals::listen() {
                    Ok(signals) => Some(signals),
                    Err(err) => {
                        tracing::error!(error = %err, "cannot listen for signals; stop the host with its handle");
                        None
                    }
                }
            } else {
                None
            };
            let _ = ready.send(());
            let mut ticks = tokio::time::interval(poll_mark::TICK);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = &mut returned, if !self.returned => self.returned = true,
                    signal = next_signal(&mut signals) => {
                        on_signal(signal, &self.host, self.signaled);
                        self.signaled = true;
                    }
                }
                if !self.tick() {
                    break;
                }
            }
            // The host is done, but tokio's handlers stay installed for the
            // life of the process and would swallow every later signal:
            // keep listening, so an operator can still end a `main` that
            // hangs after the host returned. One such thread per process,
            // and it leaves signals to any host that runs meanwhile.
            if signals.is_some() && !LINGERING.swap(true, Ordering::SeqCst) {
                loop {
                    let signal = next_signal(&mut signals).await;
                    if RUNNING_HOSTS.load(Ordering::SeqCst) == 0 {
                        on_signal_after_return(signal);
                    }
                }
            }
        });
    }

    /// One pass; false once there is nothing left to watch.
    fn tick(&mut self) -> bool {
        let now = poll_mark::advance_clock();
        let host = self.host.clone();
        for (i, slot) in host.shared.slots.iter().enumerate() {
            self.check(i, slot, now);
        }
        if self.shutdown_at.is_none() && self.host.is_shutting_down() {
            self.shutdown_at = Some(Instant::now());
        }
        let leftovers = if self.returned {
            let left = self.stuck(now);
            if left.is_empty() || !self.hard_exit {
                return false;
            }
            left
        } else {
            Vec::new()
        };
        let Some(shutdown_at) = self.shutdown_at else {
            return true;
        };
        let bound = self.host.shutdown_timeout() + EXIT_GRACE;
        if self.hard_exit && shutdown_at.elapsed() >= bound {
            let stuck = if self.returned {
                leftovers
            } else {
                self.stuck(now)
            };
            tracing::error!(
                code = EXIT_SHUTDOWN_TIMED_OUT,
                shutdown_timeout = ?self.host.shutdown_timeout(),
                "the process did not finish shutting down within the shutdown timeout plus {EXIT_GRACE:?}: exiting now with code {EXIT_SHUTDOWN_TIMED_OUT}; stuck: {}",
                if stuck.is_empty() { "the host's own shutdown (its runtime is blocked)".to_string() } else { stuck.join(", ") }
            );
            std::process::exit(EXIT_SHUTDOWN_TIMED_OUT);
        }
        true
    }

    /// Reports a service that stays inside one poll, and clears the report
    /// once it yields.
    fn check(&mut self, i: usize, slot: &Slot, now: u64) {
        let held_since = slot
            .poll
            .oldest_poll()
            .filter(|since| now.saturating_sub(*since) >= self.blocked_after);
        let Some(since) = held_since else {
            if let Some(episode) = self.episodes[i].take() {
                slot.poll.set_blocked(None);
                tracing::warn!(
                    service = %slot.name,
                    "service yielded its runtime thread again after at least {:.1} s",
                    poll_mark::ticks_to_duration(now.saturating_sub(episode.since)).as_secs_f64()
                );
            }
            return;
        };
        let held = poll_mark::ticks_to_duration(now.saturating_sub(since));
        let since_utc = chrono::Duration::from_std(held)
            .ok()
            .and_then(|d| Utc::now().checked_sub_signed(d))
            .unwrap_or_else(Utc::now);
        let episode = match self.episodes[i] {
            Some(episode) if episode.since == since => episode,
            _ => {
                tracing::error!(
                    service = %slot.name,
                    held = ?held,
                    "service is blocking its runtime thread: inside one poll for {:.1} s; nothing async (timeouts, cancellation, other tasks on that thread) can run until it returns. Move blocking work to ctx.spawn_blocking",
                    held.as_secs_f64()
                );
                slot.poll.set_blocked(Some(Blocked {
                    since: since_utc,
                    message: "blocking its runtime thread".to_string(),
                }));
                Episode {
                    since,
                    init_reported: false,
                }
            }
        };
        let init_timeout = slot.poll.init_timeout();
        // Only the service's own poll is its init: a child's block (even
        // one left over from an earlier start) is not an init overrun.
        let init_held = slot
            .poll
            .polled_since()
            .map(|own| poll_mark::ticks_to_duration(now.saturating_sub(own)));
        let mut episode = episode;
        if !episode.init_reported
            && !init_timeout.is_zero()
            && init_held.is_some_and(|held| held >= init_timeout)
            && slot.state() == ServiceState::Starting
        {
            let message =
                format!("init did not finish within {init_timeout:?}: blocking its runtime thread");
            tracing::error!(
                service = %slot.name,
                init_timeout = ?init_timeout,
                held = ?held,
                "{message} for {:.1} s, so its async timeout cannot fire",
                held.as_secs_f64()
            );
            slot.poll.set_blocked(Some(Blocked {
                since: since_utc,
                message,
            }));
            episode.init_reported = true;
        }
        self.episodes[i] = Some(episode);
    }

    /// What still holds the process: services inside a poll (or, before the
    /// host returned, not yet stopped) and blocking calls still running.
    fn stuck(&self, now: u64) -> Vec<String> {
        let slots = &self.host.shared.slots;
        let mut stuck = Vec::new();
        for slot in slots.iter() {
            if let Some(since) = slot.poll.polled_since() {
                let held = poll_mark::ticks_to_duration(now.saturating_sub(since));
                stuck.push(format!(
                    "service `{}` (inside one poll for {:.1} s)",
                    slot.name,
                    held.as_secs_f64()
                ));
            } else if !self.returned && slot.state() != ServiceState::Stopped {
                stuck.push(format!("service `{}` (not stopped)", slot.name));
            }
        }
        for (service, calls) in self.host.blocking().still_running() {
            stuck.push(format!(
                "{calls} blocking call(s) of service `{}`",
                name_of(slots, service)
            ));
        }
        stuck
    }
}

async fn next_signal(signals: &mut Option<Signals>) -> Received {
    match signals {
        Some(signals) => signals.recv().await,
        None => std::future::pending().await,
    }
}

fn name_of(slots: &[Arc<Slot>], service: Option<ServiceKey>) -> String {
    service
        .and_then(|key| slots.iter().find(|s| ServiceKey::of(s) == key))
        .map_or_else(|| "(none)".to_string(), |s| s.name.to_string())
}
