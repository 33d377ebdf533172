//! How a host ended: [`ExitStatus`], the failures it names, and the exit code
//! each class of ending maps to.
//!
//! Only a run in which every service stopped cleanly is [`ExitStatus::Clean`].
//! A run can fail in several ways at once (a service stops the host, then
//! another overruns the shutdown timeout); every failure is kept, in the order
//! it happened, and the most severe class decides the code:
//!
//! | code | variant | when |
//! |---|---|---|
//! | 0 | `Clean` | every service stopped cleanly |
//! | 2 | `ShutdownTimedOut` | a service did not stop within the shutdown timeout (wins over all others) |
//! | 1 | `ServiceFailed` | a service under `FailurePolicy::StopHost` failed |
//! | 5 | `StopFailed` | work may be lost at stop: an `on_stop` hook or a drain failed, a service panicked when dropped, items were left in a channel |
//! | 4 | `Faulted` | a service ended faulted (`FailurePolicy::Ignore`, out of restarts), or was waiting to restart after a failure when the host stopped |

use std::fmt;

/// What kind of failure a [`Failure`] is.
///
/// ```
/// use steward_core::FailureKind;
/// assert_eq!(FailureKind::StopFailed.to_string(), "stop hook failed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// Failed under [`FailurePolicy::StopHost`](crate::FailurePolicy::StopHost).
    StoppedHost,
    /// Failed under [`FailurePolicy::Ignore`](crate::FailurePolicy::Ignore) and
    /// stayed faulted.
    Faulted,
    /// Kept failing until its restart budget ran out, and stayed faulted.
    RestartsExhausted,
    /// Was waiting to restart after a failure when the host stopped: it
    /// never recovered.
    Unrecovered,
    /// Its `run` failed after it was asked to stop: the drain did not finish.
    DrainFailed,
    /// Its `on_stop` hook failed or panicked (a checkpoint may be lost).
    StopFailed,
    /// It panicked when the host dropped it.
    DropPanicked,
    /// It did not stop within the shutdown timeout and was aborted.
    TimedOut,
    /// Items were still queued in a channel when the host stopped (the name
    /// is the channel's).
    ItemsLeft,
}

impl FailureKind {
    /// The exit code this kind of failure maps to.
    fn code(self) -> u8 {
        match self {
            FailureKind::TimedOut => 2,
            FailureKind::StoppedHost => 1,
            FailureKind::DrainFailed
            | FailureKind::StopFailed
            | FailureKind::DropPanicked
            | FailureKind::ItemsLeft => 5,
            FailureKind::Faulted | FailureKind::RestartsExhausted | FailureKind::Unrecovered => 4,
        }
    }

    /// Higher is more severe; the most severe failure decides the code.
    fn severity(self) -> u8 {
        match self.code() {
            2 => 4,
            1 => 3,
            5 => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureKind::StoppedHost => "failed and stopped the host",
            FailureKind::Faulted => "failed and stayed faulted",
            FailureKind::RestartsExhausted => "ran out of restarts",
            FailureKind::Unrecovered => "did not recover",
            FailureKind::DrainFailed => "failed while draining",
            FailureKind::StopFailed => "stop hook failed",
            FailureKind::DropPanicked => "panicked when dropped",
            FailureKind::TimedOut => "did not stop within the shutdown timeout",
            FailureKind::ItemsLeft => "items left in the channel",
        })
    }
}

/// One failure named in an [`ExitStatus`].
///
/// ```
/// use steward_core::{Failure, FailureKind};
/// let f = Failure { name: "billing".into(), kind: FailureKind::Faulted, message: "boom".into() };
/// assert_eq!(f.to_string(), "billing: failed and stayed faulted: boom");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    /// The service (or, for [`FailureKind::ItemsLeft`], the channel).
    pub name: String,
    /// What went wrong.
    pub kind: FailureKind,
    /// The error with its chain, the panic message, or what was lost.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.name, self.kind, self.message)
    }
}

/// How the host ended; convert it into a process exit code.
///
/// ```
/// use steward_core::ExitStatus;
/// assert_eq!(ExitStatus::Clean.code(), 0);
/// assert!(ExitStatus::Clean.failures().is_empty());
/// let code: std::process::ExitCode = ExitStatus::Clean.into();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitStatus {
    /// Asked to stop, and every service stopped cleanly in time.
    Clean,
    /// A service with [`FailurePolicy::StopHost`](crate::FailurePolicy::StopHost)
    /// failed (exit code 1).
    ServiceFailed {
        /// The failing service.
        service: String,
        /// Its error.
        error: String,
        /// Every failure of the run, in the order they happened.
        failures: Vec<Failure>,
    },
    /// These services did not stop within the shutdown timeout and were
    /// aborted (exit code 2, whatever else failed).
    ShutdownTimedOut {
        /// The services that were aborted.
        services: Vec<String>,
        /// Every failure of the run, in the order they happened.
        failures: Vec<Failure>,
    },
    /// Something failed at stop, so work may be lost: a stop hook, a drain, a
    /// `Drop`, items left in a channel (exit code 5).
    StopFailed {
        /// Every failure of the run, in the order they happened.
        failures: Vec<Failure>,
    },
    /// A service ended faulted, under `Ignore` or out of restarts, or was
    /// waiting to restart after a failure when the host stopped (exit code 4).
    Faulted {
        /// Every failure of the run, in the order they happened.
        failures: Vec<Failure>,
    },
}

impl ExitStatus {
    /// Builds the status from every failure of a run: the most severe one
    /// decides the variant.
    pub(crate) fn from_failures(failures: Vec<Failure>) -> Self {
        let Some(worst) = failures.iter().map(|f| f.kind).max_by_key(|k| k.severity()) else {
            return ExitStatus::Clean;
        };
        match worst.code() {
            2 => ExitStatus::ShutdownTimedOut {
                services: failures
                    .iter()
                    .filter(|f| f.kind == FailureKind::TimedOut)
                    .map(|f| f.name.clone())
                    .collect(),
                failures,
            },
            1 => {
                let first = failures
                    .iter()
                    .find(|f| f.kind == FailureKind::StoppedHost)
                    .cloned();
                let (service, error) = first.map(|f| (f.name, f.message)).unwrap_or_default();
                ExitStatus::ServiceFailed {
                    service,
                    error,
                    failures,
                }
            }
            5 => ExitStatus::StopFailed { failures },
            _ => ExitStatus::Faulted { failures },
        }
    }

    /// The process exit code: 0 clean, 1 a service stopped the host, 2 the
    /// shutdown timed out, 4 a service ended faulted, 5 something failed at
    /// stop (see the module docs for the order when several apply).
    ///
    /// ```
    /// let s = steward_core::ExitStatus::ShutdownTimedOut { services: vec!["slow".into()], failures: vec![] };
    /// assert_eq!(s.code(), 2);
    /// ```
    pub fn code(&self) -> u8 {
        match self {
            ExitStatus::Clean => 0,
            ExitStatus::ServiceFailed { .. } => 1,
            ExitStatus::ShutdownTimedOut { .. } => 2,
            ExitStatus::StopFailed { .. } => 5,
            ExitStatus::Faulted { .. } => 4,
        }
    }

    /// Every failure of the run, in the order they happened; empty when clean.
    ///
    /// ```
    /// # fn demo(status: steward_core::ExitStatus) {
    /// for failure in status.failures() {
    ///     eprintln!("{failure}");
    /// }
    /// # }
    /// ```
    pub fn failures(&self) -> &[Failure] {
        match self {
            ExitStatus::Clean => &[],
            ExitStatus::ServiceFailed { failures, .. }
            | ExitStatus::ShutdownTimedOut { failures, .. }
            | ExitStatus::StopFailed { failures }
            | ExitStatus::Faulted { failures } => failures,
        }
    }

    /// True for [`ExitStatus::Clean`].
    ///
    /// ```
    /// assert!(steward_core::ExitStatus::Clean.is_success());
    /// ```
    pub fn is_success(&self) -> bool {
        *self == ExitStatus::Clean
    }
}

/// `clean`, or the code and every failure: `exit code 4: billing: failed and
/// stayed faulted: boom; exporter: stop hook failed: read-only`.
impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_success() {
            return f.write_str("clean");
        }
        write!(f, "exit code {}", self.code())?;
        for (i, failure) in self.failures().iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status.code())
    }
}
