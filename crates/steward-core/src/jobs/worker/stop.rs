//! How the worker spends the time it has to stop.

use std::time::Duration;

use crate::Context;

/// How the worker spends the time it has to stop: the host's deadline for
/// the whole stop sequence, less what services stopped before it used.
pub(crate) struct StopBudget {
    /// Running jobs may finish until then; the rest are stopped.
    pub(crate) drain_until: tokio::time::Instant,
    /// Releases and outcome writes must be done by then.
    pub(crate) flush_until: tokio::time::Instant,
}

impl StopBudget {
    /// Kept back from the host's deadline for stopping the jobs still
    /// running, releasing them and writing the last outcomes: half the time
    /// left, at most two seconds. Half, not less, when little is left: a
    /// job not released waits for its lease to expire and is counted as
    /// rescued, while a job cut short of its drain is released and runs
    /// again at once. With a quarter of one second left, a release on a
    /// loaded machine missed its deadline (the shutdown engine case).
    fn reserve(left: Duration) -> Duration {
        (left / 2).min(Duration::from_secs(2))
    }

    pub(super) fn new(ctx: &Context, drain_timeout: Option<Duration>) -> Self {
        let now = tokio::time::Instant::now();
        let deadline = ctx
            .host()
            .stop_deadline()
            .unwrap_or_else(|| now + ctx.host().shutdown_timeout());
        let left = deadline.saturating_duration_since(now);
        let mut drain_until = now + (left - Self::reserve(left));
        if let Some(limit) = drain_timeout {
            drain_until = drain_until.min(now + limit);
        }
        StopBudget {
            drain_until,
            // A margin for the last log lines and the task's own exit.
            flush_until: now + left.saturating_sub(Duration::from_millis(100)),
        }
    }

    /// No time to drain: stop everything at once (the loop panicked).
    pub(super) fn now(ctx: &Context) -> Self {
        let now = tokio::time::Instant::now();
        StopBudget {
            drain_until: now,
            flush_until: now + ctx.host().shutdown_timeout(),
        }
    }
}
