//! Failure 7, the end of a run: the exit summary names each timeout once,
//! failures keep their order and precedence, and a service that stops last
//! (`STOPS_LAST`) but feeds a channel still stops before its consumer.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Journal, capture_logs, wait_for};
use steward_core::{
    BoxError, Context, ExitStatus, FailureKind, FailurePolicy, Host, HostBuilder, Receiver,
    SendError, Sender, Service,
};

fn builder(timeout: Duration) -> HostBuilder {
    let mut b = Host::builder();
    b.handle_signals(false)
        .panic_hook(false)
        .shutdown_timeout(timeout);
    b
}

/// Ignores its token.
struct Stubborn;

impl Service for Stubborn {
    async fn run(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        std::future::pending::<()>().await;
        Ok(())
    }
}

/// The exit summary names a timeout once (the kind's Display and the message
/// once both said "did not stop within the shutdown timeout").
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn timed_out_summary_does_not_repeat_itself() {
    let (_logs, _guard) = capture_logs();
    let mut b = builder(Duration::from_secs(2));
    b.service("stubborn", Stubborn).unwrap();
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    tokio::time::sleep(Duration::from_millis(10)).await;
    handle.shutdown();
    let status = run.await.unwrap();
    assert_eq!(status.code(), 2);
    let text = status.to_string();
    assert_eq!(
        text.matches("did not stop within the shutdown timeout")
            .count(),
        1,
        "{text}"
    );
}

/// Precedence and order with several failures at once: Ignore fault (4),
/// its on_stop fails (5), a StopHost failure (1). Code 1, failures in the
/// order they happened.
struct FailsThenStopFails {
    run_err: &'static str,
}

impl Service for FailsThenStopFails {
    async fn run(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        Err(self.run_err.into())
    }
    async fn on_stop(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        Err("checkpoint write failed".into())
    }
}

struct FailsLater;

impl Service for FailsLater {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        ctx.sleep(Duration::from_millis(100)).await?;
        Err("billing provider down".into())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn precedence_and_order_of_failures() {
    let (_logs, _guard) = capture_logs();
    let mut b = builder(Duration::from_secs(5));
    b.service(
        "stats",
        FailsThenStopFails {
            run_err: "stats boom",
        },
    )
    .unwrap()
    .policy(FailurePolicy::Ignore);
    b.service("billing", FailsLater)
        .unwrap()
        .policy(FailurePolicy::StopHost);
    let host = b.build().unwrap();
    let status = host.run().await;
    assert_eq!(status.code(), 1, "{status}");
    let kinds: Vec<_> = status.failures().iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [
            FailureKind::Faulted,
            FailureKind::StoppedHost,
            FailureKind::StopFailed
        ],
        "{status}"
    );
    assert!(
        matches!(status, ExitStatus::ServiceFailed { ref service, .. } if service == "billing")
    );
}

/// A STOPS_LAST service that produces into a channel (an HTTP server taking
/// webhooks into a queue) and an ordinary consumer: the consumer is asked
/// first, but must still drain everything the STOPS_LAST producer sent
/// before it stopped; clean run, nothing lost.
struct Webhooks {
    tx: Sender<u64>,
    sent: Arc<AtomicUsize>,
}

impl Service for Webhooks {
    const STOPS_LAST: bool = true;
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let mut i = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            match self.tx.send(i, ctx).await {
                Ok(()) => {
                    self.sent.fetch_add(1, Ordering::SeqCst);
                }
                Err(SendError::Cancelled(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            i += 1;
        }
    }
}

struct Worker {
    rx: Receiver<u64>,
    got: Arc<AtomicUsize>,
    journal: Journal,
}

impl Service for Worker {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        while let Some(_i) = self.rx.recv(ctx).await {
            tokio::time::sleep(Duration::from_millis(7)).await;
            self.got.fetch_add(1, Ordering::SeqCst);
        }
        self.journal.push("worker drained");
        Ok(())
    }
}

/// Guarantee (§5, §7): producers stop before their consumer whatever the
/// registration order, a STOPS_LAST producer included (STOPS_LAST is a
/// priority inside the stop order, not a sort after it). It once sorted after,
/// so the consumer was asked first and waited on a backlog until the timeout.
#[tokio::test(flavor = "current_thread", start_paused = true)]

async fn stops_last_producer_and_its_consumer_lose_nothing() {
    let (logs, _guard) = capture_logs();
    let mut b = builder(Duration::from_secs(10));
    let (tx, rx) = b.channel::<u64>("hooks", 8).unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let got = Arc::new(AtomicUsize::new(0));
    let journal = Journal::default();
    b.service(
        "http",
        Webhooks {
            tx,
            sent: sent.clone(),
        },
    )
    .unwrap();
    b.service(
        "worker",
        Worker {
            rx,
            got: got.clone(),
            journal: journal.clone(),
        },
    )
    .unwrap();
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(5), "backlog", |s| {
        s.channels[0].depth >= 4
    })
    .await;
    let asked = tokio::time::Instant::now();
    handle.shutdown();
    let status = run.await.unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(status, ExitStatus::Clean, "{}", logs.errors().join("\n"));
    assert_eq!(got.load(Ordering::SeqCst), sent.load(Ordering::SeqCst));
}
