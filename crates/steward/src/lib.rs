//! Steward: background work for Rust services.
//!
//! This facade re-exports [`steward_core`] (the host, services, channels, task
//! groups, scopes) and, with the default `http` feature, [`steward_http`] as
//! [`http`]: an `HttpServer` service answering `/healthz`, `/readyz` and
//! `/status`. The stores come with the default features `sqlite`
//! ([`sqlite`]) and `postgres` ([`postgres`]).
//!
//! ```
//! use steward::{Host, Service};
//! let builder = Host::builder();
//! ```
//!
//! ```no_run
//! # #[cfg(feature = "http")]
//! # async fn demo() -> Result<(), steward::BoxError> {
//! let mut builder = steward::Host::builder();
//! builder.service("http", steward::http::HttpServer::bind("127.0.0.1:8080")?)?;
//! let status = builder.build()?.run().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub use steward_core::*;

/// Health, readiness and status endpoints (feature `http`).
#[cfg(feature = "http")]
pub use steward_http as http;

/// The embedded SQLite store (feature `sqlite`).
#[cfg(feature = "sqlite")]
pub use steward_store_sqlite as sqlite;

/// The PostgreSQL store, for many workers on many machines (feature
/// `postgres`).
#[cfg(feature = "postgres")]
pub use steward_store_postgres as postgres;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod connect;
pub mod testing;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use connect::{AnyStore, connect};

/// The README's example, compiled as a doctest so it cannot rot.
#[cfg(all(doctest, feature = "http"))]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExample;

/// The examples of `docs/schedules.md`, compiled as doctests.
#[cfg(all(doctest, feature = "sqlite"))]
#[doc = include_str!("../../../docs/schedules.md")]
pub struct SchedulesDoc;

/// The examples of `docs/testing.md`, compiled as doctests.
#[cfg(all(doctest, feature = "sqlite"))]
#[doc = include_str!("../../../docs/testing.md")]
pub struct TestingDoc;
