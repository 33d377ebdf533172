//! A service made from a closure that runs on a fixed period.

use std::future::Future;
use std::time::Duration;

use crate::{BoxError, Context, MissedTick, Service};

/// Runs a closure every `period` on a drift-free schedule until the service is
/// asked to stop. Registered with
/// [`HostBuilder::periodic`](crate::HostBuilder::periodic), which refuses a
/// zero period.
///
/// An error or panic from one run is a failure of the service, handled by its
/// policy like any other.
///
/// ```
/// use std::time::Duration;
/// use steward_core::Host;
/// # fn demo() -> Result<(), steward_core::ConfigError> {
/// let mut builder = Host::builder();
/// builder.periodic("cleanup", Duration::from_secs(60), |_ctx| async {
///     // delete expired sessions...
///     Ok(())
/// })?;
/// # Ok(()) }
/// ```
pub struct Periodic<F> {
    period: Duration,
    missed: MissedTick,
    f: F,
}

impl<F> Periodic<F> {
    pub(crate) fn new(period: Duration, f: F) -> Self {
        Periodic {
            period,
            missed: MissedTick::Skip,
            f,
        }
    }
}

impl<F, Fut> Service for Periodic<F>
where
    F: FnMut(Context) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send,
{
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let mut ticker = ctx.every(self.period)?.missed(self.missed);
        while ticker.tick().await.is_some() {
            (self.f)(ctx.clone()).await?;
        }
        Ok(())
    }
}
