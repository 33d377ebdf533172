//! One resource per unit of work: acquired at the start of the unit and
//! released on every way out of it (success, error, panic, cancellation).
//!
//! The naive loop opens a connection or transaction once and holds it across
//! every unit (failure 1 in `docs/seven-failures.md`): one bad unit poisons the
//! rest, and the resource is never returned to the pool. A [`Scope`] makes
//! the unit the only owner of the resource.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use tokio_util::sync::CancellationToken;
use tracing::Span;

use crate::error::panic_message;
use crate::{BoxError, CancelSignal, TaskError};

/// How a unit of work ended; the factory decides what that means for the
/// resource (commit on `Succeeded`, roll back otherwise, for example).
///
/// ```
/// use steward_core::UnitOutcome;
/// assert!(UnitOutcome::Succeeded.is_success());
/// assert!(!UnitOutcome::Panicked.is_success());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitOutcome {
    /// The unit returned `Ok`.
    Succeeded,
    /// The unit returned `Err`.
    Failed,
    /// The unit panicked.
    Panicked,
    /// The unit was cancelled before it finished.
    Cancelled,
}

impl UnitOutcome {
    /// True only for [`UnitOutcome::Succeeded`].
    ///
    /// ```
    /// assert!(!steward_core::UnitOutcome::Cancelled.is_success());
    /// ```
    pub fn is_success(self) -> bool {
        self == UnitOutcome::Succeeded
    }
}

/// Makes and takes back the resource a unit of work needs: a pooled
/// connection, a transaction, a temporary directory.
///
/// ```
/// use steward_core::{BoxError, ScopeFactory, UnitOutcome};
///
/// struct Buffers;
/// impl ScopeFactory for Buffers {
///     type Resource = Vec<u8>;
///     async fn acquire(&self) -> Result<Vec<u8>, BoxError> {
///         Ok(Vec::with_capacity(4096))
///     }
///     async fn release(&self, buf: Vec<u8>, outcome: UnitOutcome) {
///         // return to a pool, commit or roll back according to `outcome`...
///         drop(buf);
///     }
/// }
/// ```
pub trait ScopeFactory: Send + Sync {
    /// The per-unit resource.
    type Resource: Send;

    /// Gets a fresh resource for one unit of work.
    ///
    /// Must be cancel-safe: [`Scope::run_until_cancelled`] drops this future
    /// when cancellation fires during the wait (an exhausted pool), so
    /// anything it holds at that point must give itself back in its own
    /// `Drop`. A resource it has already returned is released by the scope.
    /// A panic here is caught and returned as [`TaskError::Panicked`].
    fn acquire(&self) -> impl Future<Output = Result<Self::Resource, BoxError>> + Send;

    /// Takes the resource back after the unit ended with `outcome`.
    ///
    /// A panic here is caught: after a successful unit it becomes the unit's
    /// result ([`TaskError::Panicked`], since a commit that panicked may not
    /// have happened); after a failed one the unit's own error is returned
    /// and the panic is logged at ERROR.
    fn release(
        &self,
        resource: Self::Resource,
        outcome: UnitOutcome,
    ) -> impl Future<Output = ()> + Send;

    /// Called instead of [`release`](ScopeFactory::release) when the whole
    /// unit is dropped mid-way (its task was aborted), where nothing async can
    /// run. The default drops the resource, which for pooled connections and
    /// `sqlx` transactions means "return to the pool" and "roll back".
    ///
    /// It runs inside a destructor, so it must be quick and must not block;
    /// a panic here is caught and logged at ERROR in the caller's span.
    fn release_dropped(&self, resource: Self::Resource) {
        drop(resource);
    }
}

/// Runs units of work, each with its own resource from a [`ScopeFactory`].
///
/// ```
/// # use steward_core::{BoxError, ScopeFactory, UnitOutcome, Scope};
/// # struct Buffers;
/// # impl ScopeFactory for Buffers {
/// #     type Resource = Vec<u8>;
/// #     async fn acquire(&self) -> Result<Vec<u8>, BoxError> { Ok(Vec::new()) }
/// #     async fn release(&self, _b: Vec<u8>, _o: UnitOutcome) {}
/// # }
/// # async fn demo() -> Result<(), steward_core::TaskError> {
/// let scope = Scope::new(Buffers);
/// let len = scope.run(async |buf: &mut Vec<u8>| {
///     buf.extend_from_slice(b"hello");
///     Ok(buf.len())
/// }).await?;
/// assert_eq!(len, 5);
/// # Ok(()) }
/// ```
pub struct Scope<F> {
    factory: F,
}

impl<F: ScopeFactory> Scope<F> {
    /// A scope over `factory`.
    ///
    /// ```
    /// # use steward_core::{BoxError, ScopeFactory, UnitOutcome, Scope};
    /// # struct Buffers;
    /// # impl ScopeFactory for Buffers {
    /// #     type Resource = Vec<u8>;
    /// #     async fn acquire(&self) -> Result<Vec<u8>, BoxError> { Ok(Vec::new()) }
    /// #     async fn release(&self, _b: Vec<u8>, _o: UnitOutcome) {}
    /// # }
    /// let scope = Scope::new(Buffers);
    /// ```
    pub fn new(factory: F) -> Self {
        Scope { factory }
    }

    /// The factory.
    ///
    /// ```
    /// # fn demo<F: steward_core::ScopeFactory>(scope: steward_core::Scope<F>) { let _f = scope.factory(); }
    /// ```
    pub fn factory(&self) -> &F {
        &self.factory
    }

    /// Runs one unit to completion with a fresh resource, released however
    /// the unit ends. A unit that should stop part-way on shutdown checks its
    /// own token; use [`run_until_cancelled`](Scope::run_until_cancelled) to
    /// cut it off instead.
    ///
    /// ```
    /// # async fn demo<F: steward_core::ScopeFactory<Resource = Vec<u8>>>(scope: steward_core::Scope<F>) {
    /// let result = scope.run(async |buf: &mut Vec<u8>| { buf.push(1); Ok(()) }).await;
    /// # }
    /// ```
    pub async fn run<T>(
        &self,
        unit: impl AsyncFnOnce(&mut F::Resource) -> Result<T, BoxError>,
    ) -> Result<T, TaskError> {
        self.run_until_cancelled(&CancellationToken::new(), unit)
            .await
    }

    /// Runs one unit with a fresh resource, abandoning it (and releasing the
    /// resource as [`UnitOutcome::Cancelled`]) if `cancel` fires first.
    /// Cancellation also ends the wait in `acquire`: the result is then
    /// [`TaskError::Cancelled`] at once, and nothing is released because
    /// nothing was acquired.
    ///
    /// ```
    /// # async fn demo<F: steward_core::ScopeFactory<Resource = Vec<u8>>>(scope: steward_core::Scope<F>, ctx: steward_core::Context) {
    /// let result = scope.run_until_cancelled(&ctx, async |buf: &mut Vec<u8>| { Ok(buf.len()) }).await;
    /// # }
    /// ```
    pub async fn run_until_cancelled<T>(
        &self,
        cancel: &impl CancelSignal,
        unit: impl AsyncFnOnce(&mut F::Resource) -> Result<T, BoxError>,
    ) -> Result<T, TaskError> {
        let token = cancel.token();
        if token.is_cancelled() {
            return Err(TaskError::Cancelled);
        }
        // Waiting for an exhausted pool is a wait like any other: cancellation
        // ends it, or the service is blamed for ignoring its token. Dropping
        // the acquire is safe only because `acquire` is documented to be
        // cancel-safe; a resource it already returned is handled below.
        let acquired = tokio::select! {
            biased;
            _ = token.cancelled() => return Err(TaskError::Cancelled),
            acquired = AssertUnwindSafe(self.factory.acquire()).catch_unwind() => acquired,
        };
        let resource = match acquired {
            Ok(Ok(resource)) => resource,
            Ok(Err(source)) => return Err(TaskError::Failed { source }),
            Err(payload) => {
                return Err(TaskError::Panicked {
                    message: format!("acquire panicked: {}", panic_message(payload.as_ref())),
                });
            }
        };
        // The guard owns the resource; if this future is dropped mid-unit the
        // guard hands it to `release_dropped`, so even an abort releases it.
        let mut guard = Guard {
            factory: &self.factory,
            resource: Some(resource),
            span: Span::current(),
        };
        let (result, outcome) = {
            let Some(resource) = guard.resource.as_mut() else {
                return Err(TaskError::Cancelled);
            };
            let unit = AssertUnwindSafe(unit(resource)).catch_unwind();
            // Biased: if cancellation fired while the acquire was finishing,
            // the unit never starts and the fresh resource goes back as
            // `Cancelled` below instead of leaking.
            tokio::select! {
                biased;
                _ = token.cancelled() => (Err(TaskError::Cancelled), UnitOutcome::Cancelled),
                caught = unit => match caught {
                    Ok(Ok(value)) => (Ok(value), UnitOutcome::Succeeded),
                    Ok(Err(source)) => (Err(TaskError::Failed { source }), UnitOutcome::Failed),
                    Err(payload) => (
                        Err(TaskError::Panicked { message: panic_message(payload.as_ref()) }),
                        UnitOutcome::Panicked,
                    ),
                },
            }
        };
        let Some(resource) = guard.resource.take() else {
            return result;
        };
        let released = AssertUnwindSafe(self.factory.release(resource, outcome))
            .catch_unwind()
            .await;
        let Err(payload) = released else {
            return result;
        };
        let message = format!("release panicked: {}", panic_message(payload.as_ref()));
        match result {
            // Release is where a unit commits: a success whose release
            // panicked may not have happened, so the caller must not see Ok.
            Ok(_) => Err(TaskError::Panicked { message }),
            // The unit's own failure is the news; the release panic is logged
            // so it is not lost.
            Err(err) => {
                tracing::error!(error = %message, unit_error = %err, outcome = ?outcome, "scope release panicked");
                Err(err)
            }
        }
    }
}

struct Guard<'a, F: ScopeFactory> {
    factory: &'a F,
    resource: Option<F::Resource>,
    // Drop may run outside any span (a task aborted by the host), so the
    // caller's span (the service's) is kept to log a panic under its name.
    span: Span,
}

impl<F: ScopeFactory> Drop for Guard<'_, F> {
    fn drop(&mut self) {
        let Some(resource) = self.resource.take() else {
            return;
        };
        // A panic escaping a destructor would surface, if at all, as an
        // anonymous JoinError on an aborted task; catch it and say whose it was.
        let dropped = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.factory.release_dropped(resource);
        }));
        if let Err(payload) = dropped {
            let _entered = self.span.enter();
            tracing::error!(
                error = %format!("release_dropped panicked: {}", panic_message(payload.as_ref())),
                "scope release panicked"
            );
        }
    }
}
