//! What the host does when a service fails.

use std::collections::VecDeque;
use std::time::Duration;

use rand::Rng;

use crate::ConfigError;

/// The shortest backoff a restart policy may have: below it, a service that
/// fails at once restarts in a tight loop (a restart storm).
const MIN_BACKOFF: Duration = Duration::from_millis(10);

/// What happens when a service returns an error, panics, or overruns its
/// start-up timeout.
///
/// ```
/// use steward_core::{FailurePolicy, RestartPolicy};
/// let default = FailurePolicy::default();
/// assert!(matches!(default, FailurePolicy::Restart(_)));
/// let strict = FailurePolicy::StopHost;
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Restart with exponential backoff and jitter; after too many restarts in
    /// the window the service stays faulted. The default.
    Restart(RestartPolicy),
    /// Shut the whole host down gracefully; [`Host::run`](crate::Host::run)
    /// returns a failure exit status naming the service.
    StopHost,
    /// Leave the service faulted (visible in status and health) and go on.
    Ignore,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        FailurePolicy::Restart(RestartPolicy::default())
    }
}

/// Backoff and limits for [`FailurePolicy::Restart`].
///
/// The delay before restart `n` (1-based) is
/// `min(initial_backoff * multiplier^(n-1), max_backoff)`, then moved by a
/// random ±`jitter` fraction so that services failing together do not retry
/// in lock-step.
///
/// ```
/// use std::time::Duration;
/// use steward_core::RestartPolicy;
/// let policy = RestartPolicy {
///     initial_backoff: Duration::from_millis(100),
///     max_restarts: 3,
///     ..RestartPolicy::default()
/// };
/// assert!(policy.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RestartPolicy {
    /// Delay before the first restart (at least 10 ms).
    pub initial_backoff: Duration,
    /// Upper bound of the delay.
    pub max_backoff: Duration,
    /// Growth factor per consecutive failure (at least 1.0).
    pub multiplier: f64,
    /// Random spread as a fraction of the delay, from 0.0 to 1.0.
    pub jitter: f64,
    /// Restarts allowed within `window`; one more failure leaves the service faulted.
    pub max_restarts: u32,
    /// The sliding window `max_restarts` is counted in.
    pub window: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.2,
            max_restarts: 10,
            window: Duration::from_secs(600),
        }
    }
}

impl RestartPolicy {
    /// Checks that the numbers make sense.
    ///
    /// ```
    /// let bad = steward_core::RestartPolicy { multiplier: 0.5, ..Default::default() };
    /// assert!(bad.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |reason: &str| ConfigError::Invalid {
            what: "restart policy",
            reason: reason.to_string(),
        };
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return Err(invalid(
                "multiplier must be a finite number of at least 1.0",
            ));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(invalid("jitter must be between 0.0 and 1.0"));
        }
        if self.initial_backoff < MIN_BACKOFF {
            return Err(invalid(
                "initial_backoff must be at least 10 ms: a service failing at once would otherwise restart thousands of times a second",
            ));
        }
        if self.max_backoff < self.initial_backoff {
            return Err(invalid("max_backoff must not be below initial_backoff"));
        }
        if self.window.is_zero() {
            return Err(invalid("window must be positive"));
        }
        Ok(())
    }

    /// The delay before restart `attempt` (1-based), jitter included.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = steward_core::RestartPolicy { jitter: 0.0, ..Default::default() };
    /// assert_eq!(p.backoff(1), Duration::from_millis(500));
    /// assert_eq!(p.backoff(2), Duration::from_secs(1));
    /// assert_eq!(p.backoff(100), Duration::from_secs(30));
    /// ```
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let base = self.initial_backoff.as_secs_f64() * self.multiplier.powi(exp);
        let capped = base.min(self.max_backoff.as_secs_f64());
        let spread = if self.jitter > 0.0 {
            rand::rng().random_range(-self.jitter..=self.jitter)
        } else {
            0.0
        };
        // An uncapped policy (max_backoff near Duration::MAX) saturates
        // instead of overflowing the conversion, which would panic.
        // Jitter may not take a delay below the floor either.
        Duration::try_from_secs_f64((capped * (1.0 + spread)).max(0.0))
            .unwrap_or(Duration::MAX)
            .max(MIN_BACKOFF)
    }
}

/// Counts restarts in the sliding window.
#[derive(Default)]
pub(crate) struct RestartBudget {
    recent: VecDeque<tokio::time::Instant>,
}

impl RestartBudget {
    /// Records a restart if the policy allows one now; false when exhausted.
    pub(crate) fn try_take(&mut self, policy: &RestartPolicy) -> bool {
        let now = tokio::time::Instant::now();
        while let Some(first) = self.recent.front() {
            if now.duration_since(*first) >= policy.window {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if self.recent.len() >= policy.max_restarts as usize {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}
