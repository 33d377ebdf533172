//! Steward's host: named long-running services that cannot fail silently.
//!
//! A [`Host`] runs [`Service`]s concurrently, supervises them (every error and
//! panic is caught, logged with the service's name, shown in [`HostStatus`] and
//! handled by a [`FailurePolicy`]), gives each a [`Context`] with cancel-aware
//! waits, and stops them in order (producers before their consumers) within a
//! shutdown timeout.
//!
//! ```no_run
//! use std::time::Duration;
//! use steward_core::{BoxError, Context, Host, Service};
//!
//! struct Consumer { rx: steward_core::Receiver<u64> }
//! impl Service for Consumer {
//!     async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
//!         while let Some(n) = self.rx.recv(ctx).await {
//!             tracing::info!(n, "consumed");
//!         }
//!         Ok(())
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<std::process::ExitCode, BoxError> {
//!     let mut builder = Host::builder();
//!     let (tx, rx) = builder.channel::<u64>("numbers", 64)?;
//!     builder.service("consumer", Consumer { rx })?; // stopped after the producer that feeds it
//!     let mut n = 0;
//!     builder.periodic("producer", Duration::from_millis(100), move |ctx| {
//!         let tx = tx.clone();
//!         n += 1;
//!         async move { Ok(tx.send(n, &ctx).await?) }
//!     })?;
//!     let status = builder.build()?.run().await; // until Ctrl-C or SIGTERM
//!     Ok(status.into())
//! }
//! ```
//!
//! The seven failures this guards against, and the tests that prove it, are
//! described in `docs/seven-failures.md`.
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod blocking;
mod channel;
mod children;
mod context;
mod error;
mod health;
mod host;
pub mod jobs;
mod panics;
mod periodic;
mod policy;
mod poll_mark;
mod scope;
mod service;
mod settings;
mod status;
pub mod store;
mod sync;
mod task_group;
pub mod testing;
mod ticker;

pub use channel::{Receiver, SendError, Sender, TrySendError};
pub use context::{CancelSignal, Context};
pub use error::{BoxError, Cancelled, ConfigError, TaskError, error_chain};
pub use health::Health;
pub use host::{ExitStatus, Failure, FailureKind, Host, HostBuilder, HostHandle, ServiceConfig};
pub use periodic::Periodic;
pub use policy::{FailurePolicy, RestartPolicy};
pub use poll_mark::Blocked;
pub use scope::{Scope, ScopeFactory, UnitOutcome};
pub use service::Service;
pub use settings::{Section, Settings};
pub use status::{ChannelStatus, ErrorRecord, HostStatus, ServiceState, ServiceStatus};
pub use task_group::TaskGroup;
pub use ticker::{MissedTick, Ticker};
pub use tokio_util::sync::CancellationToken;
