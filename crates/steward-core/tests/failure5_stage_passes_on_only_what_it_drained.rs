//! Failure 5 at close, the pipeline-stage rule: after it is asked to stop, a
//! service passes on only the items it received and has not sent yet. A
//! generator that once read a config item, or whose child reads one, still
//! stops producing; a stage whose consumer is faulted does not hang; channel
//! depth returns to zero after a drain.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Stage, capture_logs, wait_for};
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

/// An endless generator that also takes its settings from a channel (it
/// receives, so the host treats it as a pipeline stage). The natural code:
/// produce until `send` says stop.
struct GeneratorWithConfig {
    config: Receiver<u64>,
    out: Sender<u64>,
}

impl Service for GeneratorWithConfig {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let step = self.config.recv(ctx).await.unwrap_or(1);
        let mut n = 0u64;
        loop {
            n += step;
            match self.out.send(n, ctx).await {
                Ok(()) => {}
                Err(SendError::Cancelled(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            // A little work per item, as a real generator does.
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Consumes `out`, a bit slower than the generator produces.
struct Consumer {
    rx: Receiver<u64>,
    got: Arc<AtomicUsize>,
}

impl Service for Consumer {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        while let Some(_n) = self.rx.recv(ctx).await {
            tokio::time::sleep(Duration::from_millis(2)).await;
            self.got.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// Holds the config sender (a config source), idle.
struct ConfigSource {
    tx: Sender<u64>,
}

impl Service for ConfigSource {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        self.tx.send(3, ctx).await?;
        ctx.cancelled().await;
        Ok(())
    }
}

/// Guarantee (§5): a producer asked to stop gets `Cancelled` beyond what it
/// drained, so an endless producer loop ends, even one that once read a
/// config item from a channel. (When any service that had received was
/// treated as a stage, this generator and its consumer kept each other alive
/// until the shutdown timeout.)
#[tokio::test(flavor = "current_thread", start_paused = true)]

async fn generator_that_reads_config_from_a_channel_stops_when_asked() {
    let (logs, _guard) = capture_logs();
    let mut b = builder(Duration::from_secs(10));
    let (cfg_tx, cfg_rx) = b.channel::<u64>("config", 4).unwrap();
    let (out_tx, out_rx) = b.channel::<u64>("numbers", 8).unwrap();
    let got = Arc::new(AtomicUsize::new(0));
    b.service("config-source", ConfigSource { tx: cfg_tx })
        .unwrap();
    b.service(
        "generator",
        GeneratorWithConfig {
            config: cfg_rx,
            out: out_tx,
        },
    )
    .unwrap();
    b.service(
        "consumer",
        Consumer {
            rx: out_rx,
            got: got.clone(),
        },
    )
    .unwrap();
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(5), "items flowing", |_| {
        got.load(Ordering::SeqCst) > 20
    })
    .await;
    let asked = tokio::time::Instant::now();
    handle.shutdown();
    let status = run.await.unwrap();
    let took = asked.elapsed();
    assert_eq!(
        status,
        ExitStatus::Clean,
        "took {took:?}; logs:\n{}",
        logs.errors().join("\n")
    );
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
}

/// Same, with the receive in a `ctx.spawn` child (a config watcher beside the
/// producing loop): the credit belongs to the service, but one config item
/// only lets one send through, so the producing loop still stops.
struct ProducerWithWatcher {
    config: Option<Receiver<u64>>,
    out: Sender<u64>,
}

impl Service for ProducerWithWatcher {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        if let Some(mut config) = self.config.take() {
            let child_ctx = ctx.clone();
            ctx.spawn(move |_token| async move {
                while let Some(_cfg) = config.recv(&child_ctx).await {}
                Ok(())
            });
        }
        let mut n = 0u64;
        loop {
            n += 1;
            match self.out.send(n, ctx).await {
                Ok(()) => {}
                Err(SendError::Cancelled(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]

async fn producer_whose_child_watches_a_config_channel_stops_when_asked() {
    let (logs, _guard) = capture_logs();
    let mut b = builder(Duration::from_secs(10));
    let (cfg_tx, cfg_rx) = b.channel::<u64>("config", 4).unwrap();
    let (out_tx, out_rx) = b.channel::<u64>("numbers", 8).unwrap();
    let got = Arc::new(AtomicUsize::new(0));
    b.service("config-source", ConfigSource { tx: cfg_tx })
        .unwrap();
    b.service(
        "producer",
        ProducerWithWatcher {
            config: Some(cfg_rx),
            out: out_tx,
        },
    )
    .unwrap();
    b.service(
        "consumer",
        Consumer {
            rx: out_rx,
            got: got.clone(),
        },
    )
    .unwrap();
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(5), "items flowing", |_| {
        got.load(Ordering::SeqCst) > 20
    })
    .await;
    let asked = tokio::time::Instant::now();
    handle.shutdown();
    let status = run.await.unwrap();
    let took = asked.elapsed();
    assert_eq!(
        status,
        ExitStatus::Clean,
        "took {took:?}; logs:\n{}",
        logs.errors().join("\n")
    );
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
}

struct Source {
    tx: Sender<u64>,
    n: u64,
    sent: Arc<AtomicUsize>,
}

impl Service for Source {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        for i in 0..self.n {
            match self.tx.send(i, ctx).await {
                Ok(()) => {
                    self.sent.fetch_add(1, Ordering::SeqCst);
                }
                // Asked to stop: the item goes back to its (durable) origin.
                Err(SendError::Cancelled(_)) => return Ok(()),
                Err(e) => return Err(e.into()),
            }
        }
        ctx.cancelled().await;
        Ok(())
    }
}

/// Receives one item then fails (Ignore: it stays faulted, holding its receiver).
struct FailingSink {
    rx: Receiver<u64>,
}

impl Service for FailingSink {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let _ = self.rx.recv(ctx).await;
        Err("sink database is down".into())
    }
}

/// A stage whose consumer is faulted under Ignore and no longer receives:
/// the host must not hang, and must say what was lost.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn stage_with_faulted_downstream_does_not_hang_and_reports_loss() {
    let (logs, _guard) = capture_logs();
    let mut b = builder(Duration::from_secs(10));
    let (a_tx, a_rx) = b.channel::<u64>("a", 4).unwrap();
    let (b_tx, b_rx) = b.channel::<u64>("b", 2).unwrap();
    b.service("sink", FailingSink { rx: b_rx })
        .unwrap()
        .policy(FailurePolicy::Ignore);
    b.service("stage", Stage { rx: a_rx, tx: b_tx }).unwrap();
    b.service(
        "source",
        Source {
            tx: a_tx,
            n: 20,
            sent: Arc::default(),
        },
    )
    .unwrap();
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(5), "sink faulted", |s| {
        s.service("sink").unwrap().state.is_faulted()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let asked = tokio::time::Instant::now();
    handle.shutdown();
    let status = run.await.unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "took {:?}",
        asked.elapsed()
    );
    let kinds: Vec<_> = status.failures().iter().map(|f| f.kind).collect();
    assert!(kinds.contains(&FailureKind::Faulted), "{status}");
    assert!(
        kinds.contains(&FailureKind::ItemsLeft) || kinds.contains(&FailureKind::DrainFailed),
        "{status}\n{}",
        logs.errors().join("\n")
    );
    assert_ne!(status.code(), 2, "{status}");
}

/// Depth after a clean pipeline run with drains: zero, and a clean status.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn depth_returns_to_zero_after_drain_and_run_is_clean() {
    let (_logs, _guard) = capture_logs();
    let mut b = builder(Duration::from_secs(10));
    let (a_tx, a_rx) = b.channel::<u64>("a", 4).unwrap();
    let (b_tx, b_rx) = b.channel::<u64>("b", 2).unwrap();
    let got = Arc::new(AtomicUsize::new(0));
    // Registered backwards: roles learnt from use.
    b.service(
        "sink",
        Consumer {
            rx: b_rx,
            got: got.clone(),
        },
    )
    .unwrap();
    b.service("stage", Stage { rx: a_rx, tx: b_tx }).unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    b.service(
        "source",
        Source {
            tx: a_tx,
            n: 50,
            sent: sent.clone(),
        },
    )
    .unwrap();
    let host = b.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(5), "some through", |_| {
        got.load(Ordering::SeqCst) >= 10
    })
    .await;
    handle.shutdown();
    let status = run.await.unwrap();
    assert_eq!(status, ExitStatus::Clean);
    assert_eq!(got.load(Ordering::SeqCst), sent.load(Ordering::SeqCst));
    for c in handle.status().channels {
        assert_eq!(c.depth, 0, "{c:?}");
    }
}
