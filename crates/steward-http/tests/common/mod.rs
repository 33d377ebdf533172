//! A tiny HTTP/1.1 client over a plain `TcpStream` and the services the
//! tests run in a real host. Hand-written rather than a client crate because
//! the tests need raw control (half-sent requests, held-open connections)
//! and it keeps the build small.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use steward_core::{BoxError, Context, ExitStatus, Host, HostHandle, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Generous: these bound a hang, they do not measure speed.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A response as the tests look at it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: String,
    pub body: serde_json::Value,
}

/// One request on a fresh connection that asks the server to close it.
pub async fn request(addr: SocketAddr, method: &str, path: &str) -> Response {
    let mut conn = Conn::open(addr).await;
    conn.send(method, path, false).await;
    conn.read_response().await
}

/// `GET path` on a fresh connection.
pub async fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path).await
}

/// A client connection that can be kept open between requests.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Conn {
        let stream = tokio::time::timeout(PATIENCE, TcpStream::connect(addr))
            .await
            .expect("connecting timed out")
            .expect("cannot connect to the server");
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, method: &str, path: &str, keep_alive: bool) {
        let connection = if keep_alive { "keep-alive" } else { "close" };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: steward-test\r\nConnection: {connection}\r\n\r\n"
        );
        self.stream
            .write_all(request.as_bytes())
            .await
            .expect("cannot send the request");
    }

    /// Reads one response (bodies are sized by Content-Length).
    pub async fn read_response(&mut self) -> Response {
        tokio::time::timeout(PATIENCE, self.read_response_inner())
            .await
            .expect("no response in time")
    }

    async fn read_response_inner(&mut self) -> Response {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            self.fill().await;
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec()).expect("head is not UTF-8");
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line in {head:?}"));
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or_else(|| panic!("no content-length in {head:?}"));
        let start = head_end + 4;
        while self.buf.len() < start + length {
            self.fill().await;
        }
        let body: Vec<u8> = self.buf.drain(..start + length).skip(start).collect();
        let body = if body.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or_else(|err| {
                panic!(
                    "body is not JSON ({err}): {}",
                    String::from_utf8_lossy(&body)
                )
            })
        };
        Response {
            status,
            headers: head,
            body,
        }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await.expect("read failed");
        assert!(n > 0, "connection closed before a whole response arrived");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// True if the server closes this connection (EOF or reset) in time.
    pub async fn closed_by_server(&mut self) -> bool {
        let mut chunk = [0u8; 64];
        matches!(
            tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Polls `check` until it yields a value, panicking with `what` after
/// [`PATIENCE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// GETs `path` until it answers with `status`, and returns that response.
pub async fn wait_for_status(addr: SocketAddr, path: &str, status: u16) -> Response {
    eventually(&format!("GET {path} to answer {status}"), || async move {
        let response = get(addr, path).await;
        (response.status == status).then_some(response)
    })
    .await
}

/// A host running in a task the test owns and awaits.
pub struct Running {
    pub handle: HostHandle,
    pub task: JoinHandle<ExitStatus>,
}

impl Running {
    pub fn start(host: Host) -> Running {
        let handle = host.handle();
        Running {
            handle,
            task: tokio::spawn(host.run()),
        }
    }

    /// Asks the host to stop and returns how it ended.
    pub async fn stop(self) -> ExitStatus {
        self.handle.shutdown();
        self.wait().await
    }

    /// Waits for the host to end (shutdown already requested).
    pub async fn wait(self) -> ExitStatus {
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the host did not stop in time")
            .expect("the host task panicked")
    }
}

/// A host builder for tests: no signal handling, generous timeouts.
pub fn builder() -> steward_core::HostBuilder {
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .shutdown_timeout(Duration::from_secs(20));
    builder
}

/// Runs until asked to stop.
pub struct Idle;

impl Service for Idle {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
}

/// Runs normally until `fail` fires, then returns `error`.
pub struct FailOnSignal {
    pub fail: Option<oneshot::Receiver<()>>,
    pub error: &'static str,
}

impl Service for FailOnSignal {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let Some(fail) = self.fail.take() else {
            ctx.cancelled().await;
            return Ok(());
        };
        tokio::select! {
            _ = ctx.cancelled() => Ok(()),
            _ = fail => Err(self.error.into()),
        }
    }
}

/// An init that does not finish until `release` fires.
pub struct SlowInit {
    pub release: Option<oneshot::Receiver<()>>,
}

impl Service for SlowInit {
    async fn init(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        if let Some(release) = self.release.take() {
            release.await?;
        }
        Ok(())
    }

    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
}

/// A stop hook that does not finish until `release` fires.
pub struct SlowStop {
    pub release: Option<oneshot::Receiver<()>>,
}

impl Service for SlowStop {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }

    async fn on_stop(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        if let Some(release) = self.release.take() {
            release.await?;
        }
        Ok(())
    }
}
