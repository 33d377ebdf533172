//! Binding, stopping with the host, and the bounds on connections.

mod common;

use std::time::Duration;

use common::{Conn, Idle, Running, builder, get};
use steward_core::{ConfigError, ExitStatus};
use steward_http::HttpServer;
use tokio::io::AsyncWriteExt;

#[test]
fn address_that_does_not_parse_is_a_bind_error() {
    // No runtime here on purpose: binding happens while the host is configured.
    let err = HttpServer::bind("not-an-address").expect_err("must not bind");
    match err {
        ConfigError::BindAddress { addr, reason } => {
            assert_eq!(addr, "not-an-address");
            assert!(!reason.is_empty());
        }
        other => panic!("expected BindAddress, got {other:?}"),
    }
}

#[test]
fn port_in_use_is_a_bind_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port to occupy");
    let addr = taken.local_addr().expect("local addr").to_string();
    let err = HttpServer::bind(&addr).expect_err("the port is taken");
    match err {
        ConfigError::BindAddress {
            addr: given,
            reason,
        } => {
            assert_eq!(given, addr);
            assert!(!reason.is_empty());
        }
        other => panic!("expected BindAddress, got {other:?}"),
    }

    // The server holds its port from `bind` on, before any host runs.
    let server = HttpServer::bind("127.0.0.1:0").expect("bind");
    let second = HttpServer::bind(&server.local_addr().to_string());
    assert!(
        matches!(second, Err(ConfigError::BindAddress { .. })),
        "{second:?}"
    );
}

#[tokio::test]
async fn server_stops_when_the_host_shuts_down() {
    let server = HttpServer::bind("127.0.0.1:0").expect("bind");
    let addr = server.local_addr();
    let mut b = builder();
    b.service("worker", Idle).expect("register worker");
    b.service("http", server).expect("register http");
    let host = Running::start(b.build().expect("build"));
    common::wait_for_status(addr, "/healthz", 200).await;

    // An idle keep-alive connection must not hold the shutdown up.
    let mut idle = Conn::open(addr).await;
    idle.send("GET", "/healthz", true).await;
    assert_eq!(idle.read_response().await.status, 200);

    assert_eq!(host.stop().await, ExitStatus::Clean);
    assert!(idle.closed_by_server().await, "idle connection left open");
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(
        refused.is_err(),
        "still accepting connections after shutdown"
    );
}

#[tokio::test]
async fn stalled_client_does_not_hold_up_a_clean_shutdown() {
    let server = HttpServer::bind("127.0.0.1:0")
        .expect("bind")
        .drain_timeout(Duration::from_millis(500));
    let addr = server.local_addr();
    let mut b = builder();
    // Well below hyper's 30 s header timeout: only the drain timeout can
    // end the stalled connection in time.
    b.shutdown_timeout(Duration::from_secs(10));
    b.service("http", server).expect("register http");
    let host = Running::start(b.build().expect("build"));
    common::wait_for_status(addr, "/healthz", 200).await;

    // Half a request, and then nothing.
    let mut stalled = Conn::open(addr).await;
    stalled
        .stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: steward-test\r\n")
        .await
        .expect("send half a request");
    // Connections are accepted in order: once a later one is served, the
    // stalled one is in the server's hands.
    common::wait_for_status(addr, "/healthz", 200).await;

    assert_eq!(host.stop().await, ExitStatus::Clean);
    assert!(
        stalled.closed_by_server().await,
        "stalled connection left open"
    );
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_slot() {
    let server = HttpServer::bind("127.0.0.1:0")
        .expect("bind")
        .max_connections(1)
        .expect("limit");
    let addr = server.local_addr();
    let mut b = builder();
    b.service("http", server).expect("register http");
    let host = Running::start(b.build().expect("build"));

    let mut first = Conn::open(addr).await;
    first.send("GET", "/healthz", true).await;
    assert_eq!(first.read_response().await.status, 200);

    // The only slot is taken by `first`, so `second` is not served...
    let mut second = Conn::open(addr).await;
    second.send("GET", "/healthz", false).await;
    let early = tokio::time::timeout(Duration::from_millis(500), second.read_response()).await;
    assert!(early.is_err(), "served beyond the connection limit");

    // ...until `first` goes away.
    drop(first);
    assert_eq!(second.read_response().await.status, 200);

    assert_eq!(host.stop().await, ExitStatus::Clean);
}

#[test]
fn zero_connections_is_refused() {
    let err = HttpServer::bind("127.0.0.1:0")
        .expect("bind")
        .max_connections(0)
        .expect_err("zero must be refused");
    assert!(
        matches!(err, ConfigError::ZeroConcurrency { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn added_routes_are_served_with_the_host_as_state() {
    use axum::extract::State;
    use axum::routing::get as get_route;
    use steward_core::HostHandle;

    async fn service_count(State(host): State<HostHandle>) -> axum::Json<usize> {
        axum::Json(host.status().services.len())
    }

    let server = HttpServer::bind("127.0.0.1:0")
        .expect("bind")
        .with_router(axum::Router::new().route("/count", get_route(service_count)))
        .expect("no overlap");
    let addr = server.local_addr();
    let mut b = builder();
    b.service("http", server).expect("register http");
    b.service("worker", Idle).expect("register worker");
    let host = Running::start(b.build().expect("build"));

    let count = common::wait_for_status(addr, "/count", 200).await;
    assert_eq!(count.body, 2);
    // The built-in routes and the JSON 404 are still there.
    assert_eq!(get(addr, "/healthz").await.status, 200);
    assert_eq!(get(addr, "/nope").await.status, 404);

    assert_eq!(host.stop().await, ExitStatus::Clean);
}

#[test]
fn added_route_that_clashes_with_a_built_in_one_is_a_config_error() {
    let clash = axum::Router::new().route("/healthz", axum::routing::get(|| async { "mine" }));
    let err = HttpServer::bind("127.0.0.1:0")
        .expect("bind")
        .with_router(clash)
        .expect_err("overlap must be refused");
    match err {
        ConfigError::Invalid { what, reason } => {
            assert_eq!(what, "HTTP routes");
            assert!(reason.contains("/healthz"), "{reason}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}
