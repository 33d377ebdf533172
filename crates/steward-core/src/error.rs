//! Error types shared by the host, its services and its helpers.

use std::error::Error as StdError;
use std::time::Duration;

/// The error type a service, a periodic task or a unit of work returns.
///
/// Any `std::error::Error + Send + Sync` converts into it with `?`, and so does
/// `anyhow::Error`, so services can use whichever error style they like.
///
/// ```
/// use steward_core::BoxError;
/// fn parse(s: &str) -> Result<u32, BoxError> {
///     Ok(s.parse::<u32>()?)
/// }
/// assert!(parse("x").is_err());
/// ```
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// A mistake in how the host was configured, found while it is built.
///
/// Every check that can fail returns this instead of panicking, so a bad
/// configuration is a clear message at start-up, not a crash later.
///
/// ```
/// use steward_core::{ConfigError, Host};
/// let mut builder = Host::builder();
/// let err = builder.channel::<u32>("work", 0).unwrap_err();
/// assert!(matches!(err, ConfigError::ZeroCapacity { .. }));
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Two services were registered under the same name.
    #[error("a service named `{name}` is already registered; service names must be unique")]
    DuplicateService {
        /// The name used twice.
        name: String,
    },
    /// Two channels were created under the same name.
    #[error("a channel named `{name}` already exists; channel names must be unique")]
    DuplicateChannel {
        /// The name used twice.
        name: String,
    },
    /// A service or channel name was empty.
    #[error("{what} name must not be empty")]
    EmptyName {
        /// What was being named (`service`, `channel`).
        what: &'static str,
    },
    /// A bounded channel was asked for with no room at all.
    #[error("channel `{name}` has capacity 0; a bounded channel needs at least 1 slot")]
    ZeroCapacity {
        /// The channel's name.
        name: String,
    },
    /// A concurrency limit of zero, which would never run anything.
    #[error("{what} has concurrency 0; at least 1 task must be allowed to run")]
    ZeroConcurrency {
        /// What the limit was for.
        what: String,
    },
    /// A periodic task or ticker with a zero period.
    #[error("{what} has period 0; a periodic task needs a positive period")]
    ZeroPeriod {
        /// What the period was for.
        what: String,
    },
    /// An HTTP (or other) listen address that does not parse or cannot be bound.
    #[error("cannot listen on `{addr}`: {reason}")]
    BindAddress {
        /// The address as given.
        addr: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Any other out-of-range setting.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The setting.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A value in [`Settings`](crate::Settings) that is unknown, of the wrong
    /// type or out of range, named by its key and where it came from.
    #[error("{}", setting_text(key, origin.as_deref(), reason))]
    Setting {
        /// The dotted key, such as `steward.host.shutdown_timeout` (empty
        /// for a whole file that cannot be read).
        key: String,
        /// The file or environment variable that gave it, if known.
        origin: Option<String>,
        /// What is wrong with it.
        reason: String,
    },
    /// A service's own configuration has mistakes (see
    /// [`Service::check`](crate::Service::check)); reported by
    /// [`HostBuilder::build`](crate::HostBuilder::build), every one of them.
    #[error("service `{name}` is misconfigured: {}", join(problems))]
    Service {
        /// The service's name.
        name: String,
        /// Each mistake, in the order it was made.
        problems: Vec<ConfigError>,
    },
}

fn setting_text(key: &str, origin: Option<&str>, reason: &str) -> String {
    match (key.is_empty(), origin) {
        (false, Some(origin)) => format!("setting `{key}` (from {origin}): {reason}"),
        (false, None) => format!("setting `{key}`: {reason}"),
        (true, Some(origin)) => format!("settings from {origin}: {reason}"),
        (true, None) => format!("settings: {reason}"),
    }
}

fn join(problems: &[ConfigError]) -> String {
    let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
    texts.join("; ")
}

/// Returned by cancel-aware waits (`sleep`, `send`, ...) when the service was
/// asked to stop.
///
/// A service may simply propagate it with `?`: the host treats a service that
/// ends with `Cancelled` after being asked to stop as a clean stop, not a failure.
///
/// ```
/// # async fn demo(ctx: steward_core::Context) -> Result<(), steward_core::BoxError> {
/// loop {
///     ctx.sleep(std::time::Duration::from_secs(1)).await?; // ends on shutdown
/// }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled: asked to stop")]
pub struct Cancelled;

/// Why a child task, a blocking call or a unit of work did not produce a value.
///
/// ```
/// use steward_core::TaskError;
/// let err = TaskError::Panicked { message: "boom".into() };
/// assert_eq!(err.to_string(), "panicked: boom");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The task returned an error.
    #[error("{}", error_chain(source.as_ref()))]
    Failed {
        /// The task's own error.
        source: BoxError,
    },
    /// The task panicked; the panic was caught and its message kept.
    #[error("panicked: {message}")]
    Panicked {
        /// The panic's message.
        message: String,
    },
    /// The task was cancelled before it finished.
    #[error("cancelled before it finished")]
    Cancelled,
    /// The task did not finish in the time it was given.
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
}

/// Formats an error with all of its sources: `outer: middle: root cause`.
///
/// ```
/// use steward_core::error_chain;
/// let err = std::io::Error::other("disk full");
/// assert_eq!(error_chain(&err), "disk full");
/// ```
pub fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // anyhow and friends sometimes repeat the cause in the outer message.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// Turns a caught panic's payload into its message.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}
