//! How healthy each service is, beyond its state: a crash loop is
//! `Degraded` although the service is up between failures, and a service
//! that stopped beating (a periodic service whose ticks stopped, or one
//! with a declared liveness interval that stopped calling
//! [`Context::heartbeat`](crate::Context::heartbeat)) is `Unhealthy`
//! although its state still says `Running`.

use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::ServiceState;

/// How many liveness intervals may pass without a beat before a service is
/// unhealthy: one late beat is noise, three in a row is a stuck loop.
pub(crate) const MISSED_BEATS: u32 = 3;

/// A service's (or the host's) health.
///
/// ```
/// use steward_core::Health;
/// assert!(Health::Degraded > Health::Healthy);
/// assert!(Health::Unhealthy > Health::Degraded);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Working as expected.
    Healthy,
    /// Up, but not well: crash-looping (restarting within its budget, or
    /// restarted and not yet stable). `/healthz` still answers 200.
    Degraded,
    /// Not doing its work: faulted, or silent for too long. `/healthz`
    /// answers 503 naming it.
    Unhealthy,
}

/// What the supervisor knows that health is judged from.
pub(crate) struct Vitals {
    /// Expected beat interval in milliseconds, 0 if the service declared
    /// none (periodic services: their period). Milliseconds in a `u32`
    /// (49 days at most, saturated), because every service carries these.
    pub(crate) liveness_ms: u32,
    /// How long a restarted service must run before it counts as stable
    /// again (its policy's `max_backoff`), in milliseconds.
    pub(crate) stable_after_ms: u32,
    /// When its current `run` began.
    pub(crate) running_since: Option<Instant>,
    /// Its last tick or heartbeat in this run.
    pub(crate) last_beat: Option<Instant>,
}

/// Judges one service: its health and, unless healthy, why.
pub(crate) fn judge(
    state: &ServiceState,
    restarts: u32,
    vitals: &Vitals,
) -> (Health, Option<String>) {
    match state {
        ServiceState::Faulted { error, .. } => {
            return (Health::Unhealthy, Some(format!("faulted: {error}")));
        }
        ServiceState::Restarting { attempt, .. } => {
            return (
                Health::Degraded,
                Some(format!("crash-looping: waiting for restart {attempt}")),
            );
        }
        ServiceState::Running => {}
        // Starting again after a failure: an init that keeps failing is a
        // crash loop too, although it never reaches Running.
        ServiceState::Starting if restarts > 0 => {
            return (
                Health::Degraded,
                Some(format!(
                    "crash-looping: starting again after {restarts} restarts"
                )),
            );
        }
        _ => return (Health::Healthy, None),
    }
    let now = Instant::now();
    let liveness =
        (vitals.liveness_ms > 0).then(|| Duration::from_millis(vitals.liveness_ms.into()));
    if let (Some(interval), Some(since)) = (liveness, vitals.running_since) {
        let last = vitals.last_beat.unwrap_or(since);
        let silent = now.saturating_duration_since(last);
        if silent > interval.saturating_mul(MISSED_BEATS) {
            return (
                Health::Unhealthy,
                Some(format!(
                    "no tick or heartbeat for {:.1} s (liveness interval {interval:?}, {MISSED_BEATS} missed)",
                    silent.as_secs_f64()
                )),
            );
        }
    }
    if restarts > 0 {
        if let Some(since) = vitals.running_since {
            let up = now.saturating_duration_since(since);
            let stable_after = Duration::from_millis(vitals.stable_after_ms.into());
            if up < stable_after {
                return (
                    Health::Degraded,
                    Some(format!(
                        "crash-looping: restarted {restarts} times, up {:.1} s of the {:.1} s that count as stable",
                        up.as_secs_f64(),
                        stable_after.as_secs_f64()
                    )),
                );
            }
        }
    }
    (Health::Healthy, None)
}

/// A duration in whole milliseconds, saturated to `u32` (but at least 1 ms
/// for a non-zero duration, so a declared interval never reads as none).
pub(crate) fn millis_u32(d: Duration) -> u32 {
    let ms = u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    if ms == 0 && !d.is_zero() { 1 } else { ms }
}
