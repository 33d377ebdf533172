//! The server's own OS thread, with a current-thread runtime of its own.
//!
//! Health checks must answer, and answer the truth, while the host's runtime
//! is blocked (a service in `std::thread::sleep` or a long synchronous loop
//! holds its runtime threads): the host's watchdog then marks the service
//! blocked, and `/healthz` says so with a 503 naming it. Served from the
//! host's runtime, the accept loop would be stuck behind the very service it
//! should report. Handlers only read [`HostHandle::status`], which takes no
//! runtime, so they work from here.
//!
//! [`HostHandle::status`]: steward_core::HostHandle::status

use std::net::SocketAddr;

use axum::Router;
use steward_core::CancellationToken;
use tokio::sync::oneshot;
use tracing::{Instrument, Span};

use crate::Error;
use crate::serve::{Limits, serve};

/// Starts serving `app` on `listener` on a new thread until `stop` is
/// cancelled. The receiver completes when the thread is done: `Ok` after a
/// stop, `Err` if it could not serve; dropped unsent if the thread panicked.
pub(crate) fn start(
    addr: SocketAddr,
    listener: std::net::TcpListener,
    app: Router,
    stop: CancellationToken,
    limits: Limits,
    span: Span,
) -> Result<oneshot::Receiver<Result<(), Error>>, Error> {
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(format!("steward-http {addr}"))
        .spawn(move || {
            let result = run(addr, listener, app, &stop, &limits, span);
            let _ = done_tx.send(result);
        })
        .map_err(|source| Error::Thread { addr, source })?;
    Ok(done_rx)
}

fn run(
    addr: SocketAddr,
    listener: std::net::TcpListener,
    app: Router,
    stop: &CancellationToken,
    limits: &Limits,
    span: Span,
) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Thread { addr, source })?;
    runtime.block_on(
        async move {
            let listener = tokio::net::TcpListener::from_std(listener)
                .map_err(|source| Error::Listener { addr, source })?;
            serve(listener, app, stop, limits).await;
            Ok(())
        }
        .instrument(span),
    )
}
