//! A drift-free, cancel-aware periodic timer.

use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

use crate::status::Slot;

/// What a [`Ticker`] does when ticks were missed because the work between
/// them took longer than the period.
///
/// ```
/// use steward_core::MissedTick;
/// assert_eq!(MissedTick::default(), MissedTick::Skip);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedTick {
    /// Drop the missed ticks and stay on the original schedule (the default):
    /// tick `n` is always at `start + n * period`.
    #[default]
    Skip,
    /// Fire the missed ticks immediately, one after another, to catch up.
    Burst,
    /// Restart the schedule from the late tick: the period is kept between
    /// ticks but the schedule shifts.
    Delay,
}

impl From<MissedTick> for MissedTickBehavior {
    fn from(m: MissedTick) -> Self {
        match m {
            MissedTick::Skip => MissedTickBehavior::Skip,
            MissedTick::Burst => MissedTickBehavior::Burst,
            MissedTick::Delay => MissedTickBehavior::Delay,
        }
    }
}

/// Fires every period on a fixed schedule (`start + n * period`, so lateness
/// never accumulates) until the service is asked to stop.
///
/// Made by [`Context::every`](crate::Context::every). The first tick fires at
/// once.
///
/// ```
/// # async fn demo(ctx: steward_core::Context) -> Result<(), steward_core::BoxError> {
/// use std::time::Duration;
/// use steward_core::MissedTick;
/// let mut ticker = ctx.every(Duration::from_millis(100))?.missed(MissedTick::Burst);
/// while let Some(_at) = ticker.tick().await {
///     // periodic work
/// }
/// # Ok(()) }
/// ```
pub struct Ticker {
    interval: Interval,
    token: CancellationToken,
    slot: Option<Arc<Slot>>,
}

impl Ticker {
    pub(crate) fn new(period: Duration, token: CancellationToken, slot: Option<Arc<Slot>>) -> Self {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        Ticker {
            interval,
            token,
            slot,
        }
    }

    /// Chooses what happens to missed ticks.
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::Context) -> Result<(), steward_core::BoxError> {
    /// let t = ctx.every(std::time::Duration::from_secs(1))?.missed(steward_core::MissedTick::Delay);
    /// # Ok(()) }
    /// ```
    pub fn missed(mut self, behaviour: MissedTick) -> Self {
        self.interval.set_missed_tick_behavior(behaviour.into());
        self
    }

    /// The period.
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::Context) -> Result<(), steward_core::BoxError> {
    /// let t = ctx.every(std::time::Duration::from_secs(1))?;
    /// assert_eq!(t.period().as_secs(), 1);
    /// # Ok(()) }
    /// ```
    pub fn period(&self) -> Duration {
        self.interval.period()
    }

    /// Waits for the next tick and returns its scheduled time, or `None` once
    /// the service has been asked to stop.
    ///
    /// ```
    /// # async fn demo(ctx: steward_core::Context) -> Result<(), steward_core::BoxError> {
    /// let mut t = ctx.every(std::time::Duration::from_secs(1))?;
    /// let first = t.tick().await; // immediately
    /// # Ok(()) }
    /// ```
    pub async fn tick(&mut self) -> Option<Instant> {
        tokio::select! {
            biased;
            _ = self.token.cancelled() => None,
            at = self.interval.tick() => {
                if let Some(slot) = &self.slot {
                    slot.record_tick();
                }
                Some(at)
            }
        }
    }
}
