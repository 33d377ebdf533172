//! The errors the HTTP server can fail with once it runs.
//!
//! Mistakes in configuration (an address that does not parse or cannot be
//! bound, routes that overlap) are [`steward_core::ConfigError`]s returned
//! while the host is being built; this type is only for what can go wrong
//! after that, and the host's supervisor records it with the service's name.

use std::net::SocketAddr;

/// Why the [`HttpServer`](crate::HttpServer) service stopped serving.
///
/// ```
/// use steward_http::Error;
/// let err = Error::Listener {
///     addr: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
///     source: std::io::Error::other("too many open files"),
/// };
/// assert!(err.to_string().contains("127.0.0.1:8080"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The socket bound by [`HttpServer::bind`](crate::HttpServer::bind)
    /// could not be handed to the async runtime.
    #[error("cannot serve HTTP on {addr}: the listening socket is unusable: {source}")]
    Listener {
        /// The address the socket is bound to.
        addr: SocketAddr,
        /// What the operating system or runtime said.
        source: std::io::Error,
    },
    /// The server's own thread, or its runtime, could not be started.
    #[error("cannot serve HTTP on {addr}: cannot start the server's thread: {source}")]
    Thread {
        /// The address the socket is bound to.
        addr: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The server's thread ended by a panic.
    #[error("HTTP server on {addr} crashed: its thread panicked")]
    Crashed {
        /// The address the socket is bound to.
        addr: SocketAddr,
    },
}
