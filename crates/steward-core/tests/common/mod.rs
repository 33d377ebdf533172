//! Helpers shared by the integration tests: log capture, status polling and
//! a few tiny services. Each test file uses only some of them.
#![allow(dead_code)]

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use steward_core::{BoxError, Context, HostHandle, HostStatus, Service};
use tracing_subscriber::fmt::MakeWriter;

/// Everything logged while the guard returned by [`capture_logs`] is alive,
/// on this thread (so use it in a `current_thread` test, where every task the
/// host spawns runs on this thread too).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// The whole log so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The ERROR lines so far.
    pub fn errors(&self) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(" ERROR "))
            .map(str::to_owned)
            .collect()
    }

    /// The first ERROR line whose `service` field is `service` and that
    /// contains every one of `needles`, if any.
    pub fn error_for(&self, service: &str, needles: &[&str]) -> Option<String> {
        self.errors()
            .into_iter()
            .find(|l| names_service(l, service) && needles.iter().all(|n| l.contains(n)))
    }
}

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Echoed through libtest's capture too: shown only when the test
        // fails, and then with the failed assertion's message, which the
        // host's panic hook logs here instead of printing it.
        eprint!("{}", String::from_utf8_lossy(buf));
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Writes through libtest's output capture.
struct TestOutput;

impl io::Write for TestOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        eprint!("{}", String::from_utf8_lossy(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// True if a log line's `service` field is `name`. The field is written
/// `service=name` or `service="name"` depending on how it was recorded.
pub fn names_service(line: &str, name: &str) -> bool {
    let quoted = format!("service=\"{name}\"");
    let bare = format!("service={name}");
    line.contains(&quoted)
        || line
            .match_indices(&bare)
            .any(|(at, _)| matches!(line[at + bare.len()..].chars().next(), None | Some(' ')))
}

/// Sends this thread's logs (DEBUG and up, no colours) into a buffer until
/// the guard is dropped.
pub fn capture_logs() -> (Logs, tracing::subscriber::DefaultGuard) {
    // A global subscriber interested in everything, so no log or span call
    // site is ever cached as "never wanted" by a thread without a capture of
    // its own while another thread is setting one up (tracing computes a
    // call site's interest once, across dispatchers). It writes through
    // libtest's capture: shown only for a failing test, panics included.
    static GLOBAL: std::sync::Once = std::sync::Once::new();
    GLOBAL.call_once(|| {
        let _ = tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_writer(|| TestOutput)
                .with_ansi(false)
                .with_max_level(tracing::Level::TRACE)
                .finish(),
        );
    });
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    (logs, guard)
}

/// Polls the host's status until `pred` holds, or panics with the last
/// status after `limit`. Under paused time the polling costs nothing; under
/// real time `limit` is a generous bound, not a speed assertion.
pub async fn wait_for(
    handle: &HostHandle,
    limit: Duration,
    what: &str,
    pred: impl Fn(&HostStatus) -> bool,
) -> HostStatus {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let status = handle.status();
        if pred(&status) {
            return status;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {limit:?} waiting for {what}; last status: {status:#?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The state of service `name` in `status`.
pub fn state_of(status: &HostStatus, name: &str) -> steward_core::ServiceState {
    status
        .service(name)
        .unwrap_or_else(|| panic!("no service named {name} in {status:#?}"))
        .state
        .clone()
}

/// A service that waits for cancellation and returns.
pub struct Idle;

impl Service for Idle {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Ok(())
    }
}

/// A service that counts its beats (one per `period`, cancel-aware) so a
/// test can see that it keeps running while others fail.
pub struct Beating {
    pub beats: Arc<AtomicUsize>,
    pub period: Duration,
}

impl Beating {
    pub fn new(period: Duration) -> (Self, Arc<AtomicUsize>) {
        let beats = Arc::new(AtomicUsize::new(0));
        (
            Beating {
                beats: beats.clone(),
                period,
            },
            beats,
        )
    }
}

impl Service for Beating {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let mut ticker = ctx.every(self.period)?;
        while ticker.tick().await.is_some() {
            self.beats.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// A shared, ordered record of events, for asserting orders.
#[derive(Clone, Default)]
pub struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    pub fn push(&self, event: impl Into<String>) {
        self.0.lock().unwrap().push(event.into());
    }
    pub fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// The body of a one-off service: runs once, hands its result back, then
/// waits to be stopped.
pub struct Body<F, T>(Option<(F, tokio::sync::oneshot::Sender<T>)>);

impl<F, Fut, T> Service for Body<F, T>
where
    F: FnOnce(Context) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        if let Some((body, tx)) = self.0.take() {
            let _ = tx.send(body(ctx.clone()).await);
        }
        ctx.cancelled().await;
        Ok(())
    }
}

/// Runs `body` in a service named `name` (groups only exist inside a
/// service) and returns its result once the host stopped cleanly.
pub async fn in_service<F, Fut, T>(name: &str, body: F) -> T
where
    F: FnOnce(Context) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut builder = steward_core::Host::builder();
    builder
        .handle_signals(false)
        .shutdown_timeout(Duration::from_secs(30));
    builder.service(name, Body(Some((body, tx)))).unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    let out = rx.await.expect("the service body ran");
    handle.shutdown();
    assert_eq!(run.await.unwrap(), steward_core::ExitStatus::Clean);
    out
}

/// Counts a child as ended when its future is dropped, however that happens,
/// after lingering a while (a synchronous cleanup in a destructor).
pub struct SetOnDrop(pub Arc<AtomicUsize>, pub Duration);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        std::thread::sleep(self.1);
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A pipeline stage written the natural way: forwards every item it
/// receives, until its receiver ends.
pub struct Stage {
    pub rx: steward_core::Receiver<u64>,
    pub tx: steward_core::Sender<u64>,
}

impl steward_core::Service for Stage {
    async fn run(&mut self, ctx: &steward_core::Context) -> Result<(), steward_core::BoxError> {
        while let Some(item) = self.rx.recv(ctx).await {
            self.tx.send(item, ctx).await?;
        }
        Ok(())
    }
}
