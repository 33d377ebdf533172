//! The accept loop: one owned task per connection, a bounded number of them,
//! and a bounded drain at shutdown.
//!
//! `axum::serve` would do most of this, but it spawns every connection as a
//! detached task and, on graceful shutdown, waits for all of them without a
//! limit. A single client that stalls in the middle of a request would then
//! hold the host's shutdown until the host's timeout aborts this service and
//! reports `ExitStatus::ShutdownTimedOut` for what was a clean stop. Driving
//! hyper directly (the same hyper axum uses, so nothing new is built) keeps
//! every connection in a `JoinSet` that is drained for at most
//! `drain_timeout` and then aborted and awaited.

use std::io;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use steward_core::CancellationToken;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinError, JoinSet};
use tracing::Instrument;

/// How long to wait before accepting again after the listener failed for a
/// reason other than one connection going wrong (for example, out of file
/// descriptors): retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Limits the accept loop works within.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    pub(crate) drain_timeout: Duration,
}

/// Serves `app` on `listener` until `stop` is cancelled, then lets open
/// connections finish their current request for up to `limits.drain_timeout`
/// and aborts the rest. Returns once no connection task is left. Runs inside
/// the HTTP service's span; every connection task carries it too.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    stop: &CancellationToken,
    limits: &Limits,
) {
    let span = tracing::Span::current();
    let mut builder = http1::Builder::new();
    // With a timer, hyper closes connections whose request headers do not
    // arrive within its header read timeout (30 s), so idle half-open
    // clients cannot pin connection slots forever.
    builder.timer(TokioTimer::new());

    let mut connections = JoinSet::new();
    loop {
        // Reap finished connections so the set only holds live ones.
        while let Some(joined) = connections.try_join_next() {
            log_join(joined);
        }
        if connections.len() >= limits.max_connections {
            // At the limit: new clients wait in the kernel's accept queue
            // until a connection closes.
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                joined = connections.join_next() => {
                    if let Some(joined) = joined {
                        log_join(joined);
                    }
                    continue;
                }
            }
        }
        let accepted = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(err) if is_connection_error(&err) => continue,
            Err(err) => {
                tracing::error!(error = %err, "cannot accept HTTP connections; retrying in {ACCEPT_BACKOFF:?}");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        connections.spawn(drive(conn, stop.clone()).instrument(span.clone()));
    }
    // Stop accepting now; clients get "connection refused" rather than
    // waiting in a queue nobody reads.
    drop(listener);

    let open = connections.len();
    if open == 0 {
        return;
    }
    tracing::debug!(open, "draining HTTP connections");
    let drained = tokio::time::timeout(limits.drain_timeout, async {
        while let Some(joined) = connections.join_next().await {
            log_join(joined);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = connections.len(),
            drain_timeout = ?limits.drain_timeout,
            "HTTP connections still open after the drain timeout; closing them"
        );
        connections.shutdown().await;
    }
}

type Connection = http1::Connection<TokioIo<TcpStream>, TowerToHyperService<Router>>;

/// Serves one connection; on `stop`, finishes the request in flight (if any)
/// and closes instead of waiting for the next one.
async fn drive(conn: Connection, stop: CancellationToken) {
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = result {
        // Clients that hang up or send garbage are routine, not our failure.
        tracing::debug!(error = %err, "HTTP connection ended with an error");
    }
}

fn log_join(joined: Result<(), JoinError>) {
    match joined {
        Ok(()) => {}
        Err(err) if err.is_cancelled() => {}
        // A panicking handler takes only its own connection down; say so
        // loudly, since nothing else will.
        Err(err) => tracing::error!(error = %err, "HTTP connection task panicked"),
    }
}

/// Errors that concern one connection (it was reset before we accepted it),
/// not the listener.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
