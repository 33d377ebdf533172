//! Steward: background work for Rust services.
//!
//! This facade re-exports [`steward_core`] (the host, services, channels, task
//! groups, scopes) and, with the default `http` feature, [`steward_http`]
//! (the `/healthz` and `/readyz` endpoints).
//!
//! ```
//! use steward::{Host, Service};
//! let builder = Host::builder();
//! ```
#![deny(missing_docs)]

pub use steward_core::*;

/// Health endpoints (feature `http`).
#[cfg(feature = "http")]
pub use steward_http as http;
