//! [`HttpServer`]: the host service that serves the HTTP endpoints.

use std::net::{SocketAddr, TcpListener};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use axum::Router;
use steward_core::{BoxError, ConfigError, Context, HostHandle, Service};

use crate::Error;
use crate::routes::{method_not_allowed, not_found, routes};
use crate::serve::Limits;
use crate::thread;

/// Connections served at once unless [`HttpServer::max_connections`] says
/// otherwise. Probes and dashboards need a handful; the bound is there so a
/// misbehaving client cannot exhaust file descriptors for the whole process.
const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// How long open connections may take to finish at shutdown unless
/// [`HttpServer::drain_timeout`] says otherwise. Well under the host's
/// default shutdown timeout (30 s), so a stalled client never makes a clean
/// stop look like a timed-out one.
const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How much longer than the drain timeout the service waits for its thread
/// to end after being asked to stop.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// A host [`Service`] serving `GET /healthz`, `GET /readyz` and `GET /status`
/// (plus any routes added with [`with_router`](HttpServer::with_router)) over
/// HTTP/1.1, until the host stops it.
///
/// The socket is bound by [`bind`](HttpServer::bind), before the host runs,
/// so a bad or busy address is a [`ConfigError`] at start-up and the
/// service's init has nothing left to do.
///
/// The host stops it after every other service, whatever the registration
/// order ([`Service::STOPS_LAST`]), so `/readyz` answers `503 shutting_down`
/// and `/healthz` keeps telling the truth while the other services drain.
///
/// ```
/// use steward_core::{ExitStatus, Host};
/// use steward_http::HttpServer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), steward_core::BoxError> {
/// let server = HttpServer::bind("127.0.0.1:0")?; // port 0: any free port
/// let addr = server.local_addr();
/// let mut builder = Host::builder();
/// builder.handle_signals(false);
/// builder.service("http", server)?;
/// let host = builder.build()?;
/// let handle = host.handle();
/// let running = tokio::spawn(host.run());
///
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// let mut conn = tokio::net::TcpStream::connect(addr).await?;
/// conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
/// let mut response = String::new();
/// conn.read_to_string(&mut response).await?;
/// assert!(response.starts_with("HTTP/1.1 200"));
/// assert!(response.ends_with(r#"{"status":"ok","faulted":[],"blocked":[],"unhealthy":[],"degraded":[]}"#));
///
/// handle.shutdown();
/// assert_eq!(running.await?, ExitStatus::Clean);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    /// Kept as a std socket, because a tokio socket can only be made inside
    /// a runtime and `bind` must work before there is one. The host drops
    /// the service, and so closes the port, as soon as the service stopped.
    listener: TcpListener,
    routes: Router<HostHandle>,
    limits: Limits,
}

impl HttpServer {
    /// Parses `addr` (an IP address and port, such as `127.0.0.1:8080` or
    /// `[::]:8080`) and binds it now, so the port is held from this moment
    /// and any problem surfaces before the host runs.
    ///
    /// Host names such as `localhost:8080` are refused rather than resolved:
    /// resolving could block, and could yield a different address than the
    /// one a probe is configured with.
    ///
    /// ```
    /// use steward_core::ConfigError;
    /// use steward_http::HttpServer;
    ///
    /// let server = HttpServer::bind("127.0.0.1:0")?;
    /// assert!(server.local_addr().port() != 0);
    ///
    /// let err = HttpServer::bind("not-an-address").unwrap_err();
    /// assert!(matches!(err, ConfigError::BindAddress { .. }));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn bind(addr: &str) -> Result<HttpServer, ConfigError> {
        let bind_error = |reason: String| ConfigError::BindAddress {
            addr: addr.to_string(),
            reason,
        };
        let parsed: SocketAddr = addr.parse().map_err(|err| {
            bind_error(format!(
                "{err}; expected an IP address and a port, such as 127.0.0.1:8080 or [::]:8080"
            ))
        })?;
        let listener = TcpListener::bind(parsed).map_err(|err| bind_error(err.to_string()))?;
        // Tokio requires a non-blocking socket; doing it here keeps the last
        // fallible socket call inside `bind`, where its error is a ConfigError.
        listener
            .set_nonblocking(true)
            .map_err(|err| bind_error(err.to_string()))?;
        let local = listener
            .local_addr()
            .map_err(|err| bind_error(err.to_string()))?;
        Ok(HttpServer {
            addr: local,
            listener,
            routes: routes(),
            limits: Limits {
                max_connections: DEFAULT_MAX_CONNECTIONS,
                drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            },
        })
    }

    /// The address the server is bound to, with the real port when it was
    /// bound to port 0.
    ///
    /// ```
    /// let server = steward_http::HttpServer::bind("127.0.0.1:0")?;
    /// println!("serving on http://{}", server.local_addr());
    /// # Ok::<(), steward_core::ConfigError>(())
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds routes to serve next to the built-in ones. Handlers can extract
    /// `State<HostHandle>` to read the host's status; a router with a state
    /// of its own joins with `.with_state(its_state)` first.
    ///
    /// A route that is already served (such as `/healthz`) is refused with
    /// [`ConfigError::Invalid`] instead of panicking. Paths no route matches
    /// always get the JSON 404.
    ///
    /// ```
    /// use axum::{Json, Router, extract::State, routing::get};
    /// use steward_core::{ConfigError, HostHandle};
    /// use steward_http::HttpServer;
    ///
    /// async fn services(State(host): State<HostHandle>) -> Json<Vec<String>> {
    ///     Json(host.status().services.into_iter().map(|s| s.name).collect())
    /// }
    ///
    /// let server = HttpServer::bind("127.0.0.1:0")?
    ///     .with_router(Router::new().route("/services", get(services)))?;
    ///
    /// let clash = HttpServer::bind("127.0.0.1:0")?
    ///     .with_router(Router::new().route("/healthz", get(|| async { "mine" })));
    /// assert!(matches!(clash, Err(ConfigError::Invalid { .. })));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn with_router(mut self, router: Router<HostHandle>) -> Result<Self, ConfigError> {
        let routes = self.routes;
        // axum reports overlapping routes only by panicking; this is the
        // configuration boundary, so it becomes a typed error here.
        let merged = catch_unwind(AssertUnwindSafe(move || routes.merge(router)));
        match merged {
            Ok(routes) => {
                self.routes = routes;
                Ok(self)
            }
            Err(payload) => Err(ConfigError::Invalid {
                what: "HTTP routes",
                reason: panic_message(payload.as_ref()),
            }),
        }
    }

    /// How many connections are served at once (default 256). More clients
    /// wait in the operating system's accept queue. Zero is refused.
    ///
    /// ```
    /// let server = steward_http::HttpServer::bind("127.0.0.1:0")?.max_connections(16)?;
    /// assert!(steward_http::HttpServer::bind("127.0.0.1:0")?.max_connections(0).is_err());
    /// # Ok::<(), steward_core::ConfigError>(())
    /// ```
    pub fn max_connections(mut self, limit: usize) -> Result<Self, ConfigError> {
        if limit == 0 {
            return Err(ConfigError::ZeroConcurrency {
                what: format!("the HTTP server on {}", self.addr),
            });
        }
        self.limits.max_connections = limit;
        Ok(self)
    }

    /// How long open connections get, once the server is asked to stop, to
    /// finish the request they are on (default 5 s); then they are closed.
    /// Keep it below the host's shutdown timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// let server = steward_http::HttpServer::bind("127.0.0.1:0")?
    ///     .drain_timeout(Duration::from_secs(2));
    /// # Ok::<(), steward_core::ConfigError>(())
    /// ```
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.limits.drain_timeout = timeout;
        self
    }

    /// The router actually served: built-in and added routes, the JSON
    /// fallbacks, and the host as state.
    fn app(&self, host: &HostHandle) -> Router {
        // Fallbacks are attached here, after every merge: axum refuses to
        // merge two routers that both have one, and a method fallback only
        // applies to routes that exist when it is set.
        self.routes
            .clone()
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .with_state(host.clone())
    }
}

/// Serving happens on the server's own thread (see thread.rs), so that
/// `/healthz` answers while the host's runtime is blocked; this future only
/// waits for the thread, and stops it when the service is asked to stop or
/// dropped.
impl Service for HttpServer {
    // It answers /readyz (503 `shutting_down`) and /healthz while the
    // other services drain, whatever order they were registered in.
    const STOPS_LAST: bool = true;

    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let addr = self.addr;
        // A duplicate of the socket, so that the bound port survives a
        // failed run and a restart serves on the very same socket.
        let listener = self
            .listener
            .try_clone()
            .map_err(|source| Error::Listener { addr, source })?;
        let stop = ctx.token().child_token();
        // Aborted rather than cancelled (the host's shutdown timeout): the
        // thread must stop all the same.
        let _stop_on_drop = stop.clone().drop_guard();
        let mut done = thread::start(
            addr,
            listener,
            self.app(ctx.host()),
            stop,
            self.limits.clone(),
            ctx.span().clone(),
        )?;
        tracing::info!(service = ctx.name(), %addr, "serving HTTP");
        let ended = tokio::select! {
            biased;
            ended = &mut done => Some(ended),
            _ = ctx.cancelled() => None,
        };
        let ended = match ended {
            Some(ended) => ended,
            // The drain is bounded by the drain timeout; the extra second
            // covers closing the aborted connections.
            None => {
                match tokio::time::timeout(self.limits.drain_timeout + STOP_GRACE, done).await {
                    Ok(ended) => ended,
                    Err(_) => {
                        tracing::warn!(service = ctx.name(), %addr, "the HTTP server's thread did not stop in time; leaving it behind");
                        return Ok(());
                    }
                }
            }
        };
        ended.map_err(|_| Error::Crashed { addr })??;
        tracing::info!(service = ctx.name(), %addr, "stopped serving HTTP");
        Ok(())
    }
}

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "axum refused the routes".to_string()
    }
}
