//! `/healthz` answers, with the truth, while the host's runtime is blocked:
//! every worker thread held by services in `std::thread::sleep`. The server
//! runs on a thread of its own; the host's watchdog marks the services
//! blocked; the answer is a 503 naming them.
//!
//! Real time, a multi-thread runtime, and a plain blocking client: the
//! test's own runtime is as blocked as the host's.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{Running, builder};
use steward_core::{BoxError, Context, Service};
use steward_http::HttpServer;
use tokio::sync::watch;

/// Waits for the go, then holds its runtime thread.
struct Hog {
    go: watch::Receiver<bool>,
}

impl Service for Hog {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        self.go.wait_for(|go| *go).await?;
        std::thread::sleep(Duration::from_secs(6));
        ctx.cancelled().await;
        Ok(())
    }
}

/// One GET with std's blocking socket: `(status, body)`, or `None` if no
/// answer came within a second.
fn blocking_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    conn.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let body = response.split("\r\n\r\n").nth(1)?.to_string();
    Some((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_names_the_blocked_services_while_every_runtime_thread_is_blocked() {
    let server = HttpServer::bind("127.0.0.1:0").expect("bind");
    let addr = server.local_addr();
    let (go, go_rx) = watch::channel(false);
    let mut b = builder();
    b.service("http", server).expect("register http");
    // More hogs than worker threads: every worker ends up held.
    for i in 0..4 {
        b.service(format!("hog{i}"), Hog { go: go_rx.clone() })
            .expect("register hog");
    }
    let host = Running::start(b.build().expect("build"));
    common::wait_for_status(addr, "/healthz", 200).await;

    go.send(true).expect("hogs are waiting");
    // The watchdog's threshold is 1 s; the rest is slack for a loaded
    // machine. Plain blocking calls from here on: this runtime is held too.
    let start = Instant::now();
    let body = loop {
        let last = match blocking_get(addr, "/healthz") {
            Some((503, body)) if body.contains("\"hog") => break body,
            other => other,
        };
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no 503 naming a blocked hog within 5 s; last answer: {last:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(body["status"], "blocked", "{body}");
    let blocked = body["blocked"].as_array().expect("blocked is a list");
    assert!(!blocked.is_empty(), "{body}");
    for b in blocked {
        assert!(
            b["name"].as_str().is_some_and(|n| n.starts_with("hog")),
            "{body}"
        );
        assert_eq!(b["message"], "blocking its runtime thread", "{body}");
    }

    host.stop().await;
}
