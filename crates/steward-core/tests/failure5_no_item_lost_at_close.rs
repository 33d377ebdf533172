//! Failure 5 at close: no item sent through a host channel is lost without
//! a word, whatever order the producer and consumer were registered in.
//! Producers stop before their consumer, a consumer drains until every
//! sender is gone, a send to a gone consumer is an error, and items left at
//! exit are counted in the exit status.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Journal, capture_logs, state_of, wait_for};
use steward_core::{
    BoxError, ConfigError, Context, ExitStatus, FailureKind, FailurePolicy, Host, HostBuilder,
    Receiver, SendError, Sender, Service, ServiceState,
};

fn builder() -> HostBuilder {
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .shutdown_timeout(Duration::from_secs(30));
    builder
}

/// Sends 0, 1, 2, ... as fast as the channel takes them, journaling every
/// item whose send succeeded, until asked to stop.
struct Producer {
    tx: Sender<u64>,
    sent: Journal,
    refused: Journal,
}

impl Service for Producer {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let mut n = 0;
        loop {
            match self.tx.send(n, ctx).await {
                Ok(()) => self.sent.push(n.to_string()),
                Err(SendError::Cancelled(_)) => return Ok(()),
                Err(SendError::Closed(item)) => {
                    self.refused.push(item.to_string());
                    ctx.sleep(Duration::from_millis(10)).await?;
                }
            }
            n += 1;
        }
    }
}

/// Receives slowly (each item takes `work`) until `recv` says the channel
/// is done, or until it has taken `stop_after` items.
struct Consumer {
    rx: Receiver<u64>,
    work: Duration,
    received: Journal,
    stop_after: Option<usize>,
}

impl Service for Consumer {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        while let Some(item) = self.rx.recv(ctx).await {
            tokio::time::sleep(self.work).await;
            self.received.push(item.to_string());
            if self.stop_after == Some(self.received.events().len()) {
                break;
            }
        }
        Ok(())
    }
}

fn sorted(journal: &Journal) -> Vec<u64> {
    let mut v: Vec<u64> = journal
        .events()
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_registered_before_its_consumer_loses_nothing_at_shutdown() {
    let (sent, received) = (Journal::default(), Journal::default());
    let mut builder = builder();
    let (tx, rx) = builder.channel::<u64>("orders", 16).unwrap();
    // The mistake the old advice warned about: the producer first.
    builder
        .service(
            "producer",
            Producer {
                tx,
                sent: sent.clone(),
                refused: Journal::default(),
            },
        )
        .unwrap();
    builder
        .service(
            "consumer",
            Consumer {
                rx,
                work: Duration::from_millis(2),
                received: received.clone(),
                stop_after: None,
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "a full channel", |s| {
        s.channels[0].depth == 16
    })
    .await;
    handle.shutdown();
    let exit = run.await.unwrap();
    assert_eq!(exit, ExitStatus::Clean);
    let sent = sorted(&sent);
    assert!(sent.len() >= 16, "it did send: {}", sent.len());
    assert_eq!(sent, sorted(&received), "every item sent was received");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_send_to_a_consumer_that_is_gone_is_an_error_never_a_silent_success() {
    let (sent, received, refused) = (Journal::default(), Journal::default(), Journal::default());
    let mut builder = builder();
    let (tx, rx) = builder.channel::<u64>("orders", 4).unwrap();
    builder
        .service(
            "consumer",
            Consumer {
                rx,
                work: Duration::from_millis(1),
                received: received.clone(),
                stop_after: Some(10),
            },
        )
        .unwrap()
        .may_finish();
    builder
        .service(
            "producer",
            Producer {
                tx,
                sent: sent.clone(),
                refused: refused.clone(),
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "consumer gone", |s| {
        state_of(s, "consumer") == ServiceState::Stopped
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    handle.shutdown();
    let exit = run.await.unwrap();

    assert_eq!(received.events().len(), 10);
    assert!(
        !refused.events().is_empty(),
        "sends after it left are refused"
    );
    // The consumer took 10; what the producer was told went through but was
    // never received is exactly what the exit status reports as lost.
    let lost = sent.events().len() - received.events().len();
    assert!(lost > 0, "items were queued when the consumer left");
    let failure = exit
        .failures()
        .iter()
        .find(|f| f.kind == FailureKind::ItemsLeft)
        .unwrap_or_else(|| panic!("no ItemsLeft failure: {exit:?}"));
    assert_eq!(failure.name, "orders");
    assert!(
        failure.message.starts_with(&format!("{lost} items")),
        "{failure}"
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn items_left_in_a_channel_at_exit_are_counted_and_reported() {
    let (logs, _guard) = capture_logs();
    let mut builder = builder();
    let (tx, rx) = builder.channel::<u64>("orders", 8).unwrap();
    // The consumer fails on its first item and stays faulted; the queue fills.
    let took = Arc::new(AtomicUsize::new(0));
    let t = took.clone();
    struct Breaks {
        rx: Receiver<u64>,
        took: Arc<AtomicUsize>,
    }
    impl Service for Breaks {
        async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
            self.rx.recv(ctx).await;
            self.took.fetch_add(1, Ordering::SeqCst);
            Err("cannot parse order".into())
        }
    }
    builder
        .service("consumer", Breaks { rx, took: t })
        .unwrap()
        .policy(FailurePolicy::Ignore);
    builder
        .service(
            "producer",
            Producer {
                tx,
                sent: Journal::default(),
                refused: Journal::default(),
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    wait_for(&handle, Duration::from_secs(10), "full", |s| {
        s.channels[0].depth == 8
    })
    .await;
    handle.shutdown();
    let exit = run.await.unwrap();
    assert_eq!(took.load(Ordering::SeqCst), 1);
    let failure = exit
        .failures()
        .iter()
        .find(|f| f.kind == FailureKind::ItemsLeft)
        .unwrap_or_else(|| panic!("no ItemsLeft failure: {exit:?}"));
    assert!(failure.message.starts_with("8 items"), "{failure}");
    assert!(
        logs.text().contains("8 items") && logs.text().contains("orders"),
        "{}",
        logs.text()
    );
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_consumer_whose_sender_is_held_outside_every_service_still_stops() {
    let received = Journal::default();
    let mut builder = builder();
    let (tx, rx) = builder.channel::<u64>("orders", 8).unwrap();
    builder
        .service(
            "consumer",
            Consumer {
                rx,
                work: Duration::from_millis(1),
                received: received.clone(),
                stop_after: None,
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    let outside = tokio_util::sync::CancellationToken::new();
    for i in 0..5 {
        tx.send(i, &outside).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    handle.shutdown();
    // `tx` is still alive here: the consumer must not wait for it forever.
    let exit = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("stopped well within the shutdown timeout")
        .unwrap();
    assert_eq!(exit, ExitStatus::Clean);
    assert_eq!(received.events().len(), 5);
    assert!(
        matches!(tx.send(9, &outside).await, Err(SendError::Closed(9))),
        "the closed channel refuses later sends"
    );
}

#[test]
fn a_declared_producer_consumer_cycle_is_refused_with_a_clear_error() {
    let mut builder = builder();
    let (_a_tx, a_rx) = builder.channel::<u64>("requests", 4).unwrap();
    let (_b_tx, b_rx) = builder.channel::<u64>("replies", 4).unwrap();
    builder
        .service("server", common::Idle)
        .unwrap()
        .receives_from("requests")
        .sends_to("replies");
    builder
        .service("client", common::Idle)
        .unwrap()
        .receives_from("replies")
        .sends_to("requests");
    drop((a_rx, b_rx));
    let err = builder.build().unwrap_err();
    assert!(matches!(err, ConfigError::Invalid { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("cycle"), "{text}");
    assert!(text.contains("server") && text.contains("client"), "{text}");
}

#[test]
fn a_declaration_naming_an_unknown_channel_is_refused() {
    let mut builder = builder();
    builder
        .service("server", common::Idle)
        .unwrap()
        .receives_from("requets");
    let err = builder.build().unwrap_err();
    assert!(err.to_string().contains("`requets`"), "{err}");
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_declared_producer_stops_before_its_consumer_even_before_it_ever_sent() {
    let journal = Journal::default();
    let mut builder = builder();
    let (tx, rx) = builder.channel::<u64>("orders", 8).unwrap();
    struct Silent {
        _tx: Sender<u64>,
        journal: Journal,
    }
    impl Service for Silent {
        async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
            ctx.cancelled().await;
            self.journal.push("producer stopped");
            Ok(())
        }
    }
    struct Logs {
        rx: Receiver<u64>,
        journal: Journal,
    }
    impl Service for Logs {
        async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
            while self.rx.recv(ctx).await.is_some() {}
            self.journal.push("consumer stopped");
            Ok(())
        }
    }
    builder
        .service(
            "producer",
            Silent {
                _tx: tx,
                journal: journal.clone(),
            },
        )
        .unwrap()
        .sends_to("orders");
    builder
        .service(
            "consumer",
            Logs {
                rx,
                journal: journal.clone(),
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    tokio::time::sleep(Duration::from_secs(1)).await;
    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
    assert_eq!(journal.events(), ["producer stopped", "consumer stopped"]);
}

/// Found in CI: when the host is stopped before the consumer's task was
/// ever polled, the consumer was asked to stop before its `run` began and
/// never ran, so what was queued for it was lost (and reported).
#[tokio::test(flavor = "current_thread")]
async fn a_consumer_not_yet_started_at_shutdown_still_drains_its_channel() {
    let received = Journal::default();
    let mut builder = builder();
    let (tx, rx) = builder.channel::<u64>("orders", 8).unwrap();
    builder
        .service(
            "consumer",
            Consumer {
                rx,
                work: Duration::ZERO,
                received: received.clone(),
                stop_after: None,
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    for n in 0..3 {
        tx.try_send(n).unwrap();
    }
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    // Stop before any task of the host has been polled.
    handle.shutdown();
    drop(tx);
    let exit = run.await.unwrap();
    assert_eq!(exit, ExitStatus::Clean);
    assert_eq!(sorted(&received), [0, 1, 2]);
}
