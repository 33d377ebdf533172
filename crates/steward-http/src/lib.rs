//! Steward's HTTP surface: health, readiness and status endpoints, served by
//! [`HttpServer`], an ordinary host service.
//!
//! ```no_run
//! use std::time::Duration;
//! use steward_core::{BoxError, Host};
//! use steward_http::HttpServer;
//!
//! #[tokio::main]
//! async fn main() -> Result<std::process::ExitCode, BoxError> {
//!     let mut builder = Host::builder();
//!     // Bound here, before anything runs: a bad or busy address is a
//!     // `ConfigError::BindAddress` now, not a failed service later.
//!     // Stopped after every other service, whatever the registration
//!     // order, so /readyz reports the shutdown while the others drain.
//!     builder.service("http", HttpServer::bind("127.0.0.1:8080")?)?;
//!     builder.periodic("report", Duration::from_secs(5), |_ctx| async {
//!         tracing::info!("reporting");
//!         Ok(())
//!     })?;
//!     let status = builder.build()?.run().await; // until Ctrl-C or SIGTERM
//!     Ok(status.into())
//! }
//! ```
//!
//! # Endpoints
//!
//! Every body is JSON, errors included. Services in the lists carry the same
//! fields `/status` gives them (`name`, `state` and its details, `ready`).
//!
//! - `GET /healthz`, liveness: 200
//!   `{"status":"ok","faulted":[],"blocked":[],"unhealthy":[],"degraded":[]}`
//!   while no service is unhealthy. A crash-looping service keeps the 200
//!   but the body says so: `"status":"degraded"` and
//!   `"degraded":[{"name":"flaky","problem":"crash-looping: waiting for restart 3"}]`.
//!   503 when a service is unhealthy, with `"status"` naming the worst kind:
//!   `"faulted"` (with
//!   `"faulted":[{"name":"flaky","state":"faulted","error":"database unreachable","at":"2025-01-01T12:00:00Z","ready":false}]`),
//!   `"blocked"` (blocking its runtime thread, seen by the host's watchdog:
//!   `"blocked":[{"name":"hog","since":"2025-01-01T12:00:00Z","message":"blocking its runtime thread"}]`)
//!   or `"unhealthy"` (silent past its liveness interval). Every unhealthy
//!   service is also in `"unhealthy":[{"name","problem"}]`. It is served
//!   from the server's own thread, so it answers while the host's runtime
//!   is blocked.
//! - `GET /readyz`, readiness: 200
//!   `{"status":"ready","shutting_down":false,"not_ready":[]}` when every
//!   service finished its init and reports ready, else 503 with `"status"`
//!   `"not_ready"` (or `"shutting_down"` once the host is stopping) and the
//!   services holding it back:
//!   `{"status":"not_ready","shutting_down":false,"not_ready":[{"name":"warming","state":"starting","ready":false}]}`.
//! - `GET /status`: 200 with the whole
//!   [`HostStatus`](steward_core::HostStatus): `live`, `health`, `ready`,
//!   `shutting_down`, `unsupervised_panics`, `services` (state, `health`,
//!   `problem`, `blocked`, `restarts`, `last_error`, `last_tick`) and
//!   `channels` (`name`, `capacity`, `depth`).
//! - Any other path: 404 `{"error":"not found","method":"GET","path":"/nope"}`;
//!   a known path with another method: 405 `{"error":"method not allowed",...}`.
//!
//! More routes (metrics, a JSON API, a dashboard) join the same server
//! through [`HttpServer::with_router`]; [`routes`] gives the built-in ones
//! for mounting in an axum application of your own.
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod error;
mod routes;
mod serve;
mod server;
mod thread;

pub use error::Error;
pub use routes::routes;
pub use server::HttpServer;
