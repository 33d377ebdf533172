//! How long a failed job waits before its next attempt.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;

/// The delay before retry `n` of a job (after `n` failed attempts).
///
/// The default is exponential with ±20 % jitter: 1 s, 2 s, 4 s, ... capped at
/// one hour, so a burst of failures does not retry in lock-step.
///
/// ```
/// use std::time::Duration;
/// use steward_core::jobs::RetryPolicy;
/// let fixed = RetryPolicy::custom(|_attempt| Duration::from_secs(10));
/// assert_eq!(fixed.delay(3), Duration::from_secs(10));
/// let exp = RetryPolicy::exponential(Duration::from_millis(100), Duration::from_secs(5), 0.0);
/// assert_eq!(exp.delay(1), Duration::from_millis(100));
/// assert_eq!(exp.delay(3), Duration::from_millis(400));
/// assert_eq!(exp.delay(30), Duration::from_secs(5));
/// ```
#[derive(Clone)]
pub struct RetryPolicy {
    delay: Arc<dyn Fn(u32) -> Duration + Send + Sync>,
}

impl RetryPolicy {
    /// `base * 2^(attempt-1)`, capped at `max`, spread by ±`jitter` (0.0–1.0).
    ///
    /// ```
    /// let p = steward_core::jobs::RetryPolicy::exponential(
    ///     std::time::Duration::from_secs(1), std::time::Duration::from_secs(60), 0.1);
    /// ```
    pub fn exponential(base: Duration, max: Duration, jitter: f64) -> Self {
        let jitter = jitter.clamp(0.0, 1.0);
        RetryPolicy {
            delay: Arc::new(move |attempt| {
                let exp = i32::try_from(attempt.saturating_sub(1))
                    .unwrap_or(i32::MAX)
                    .min(62);
                let raw = (base.as_secs_f64() * 2f64.powi(exp)).min(max.as_secs_f64());
                let spread = if jitter > 0.0 {
                    rand::rng().random_range(-jitter..=jitter)
                } else {
                    0.0
                };
                Duration::try_from_secs_f64((raw * (1.0 + spread)).max(0.0)).unwrap_or(max)
            }),
        }
    }

    /// Any function of the attempt number (1 after the first failure).
    ///
    /// ```
    /// let p = steward_core::jobs::RetryPolicy::custom(|n| std::time::Duration::from_secs(u64::from(n) * 30));
    /// ```
    pub fn custom(f: impl Fn(u32) -> Duration + Send + Sync + 'static) -> Self {
        RetryPolicy { delay: Arc::new(f) }
    }

    /// The delay after failed attempt number `attempt`.
    ///
    /// ```
    /// let d = steward_core::jobs::RetryPolicy::default().delay(1);
    /// assert!(d <= std::time::Duration::from_millis(1200));
    /// ```
    pub fn delay(&self, attempt: u32) -> Duration {
        (self.delay)(attempt)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::exponential(Duration::from_secs(1), Duration::from_secs(3600), 0.2)
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy").finish_non_exhaustive()
    }
}
