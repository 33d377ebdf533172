//! Failure 5: producers and consumers sharing unbounded mutable state.
//!
//! Host channels are bounded: a full channel makes `send` wait and
//! `try_send` report `Full`; depth and capacity show in the host's status;
//! and at shutdown the producers (registered after their consumer) stop
//! first, then the consumer drains what is queued, so nothing sent is lost.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Journal, state_of, wait_for};
use steward_core::{
    BoxError, ChannelStatus, Context, ExitStatus, Host, HostBuilder, Receiver, Sender, Service,
    ServiceState, TrySendError,
};
use tokio::sync::Semaphore;

fn builder() -> HostBuilder {
    let mut builder = Host::builder();
    builder
        .handle_signals(false)
        .shutdown_timeout(Duration::from_secs(30));
    builder
}

/// Sends `first..first + count` (or forever if `count` is None), recording
/// every item whose send succeeded.
struct Producer {
    tx: Sender<u64>,
    first: u64,
    count: Option<u64>,
    sent: Journal,
    journal: Journal,
    name: &'static str,
}

impl Service for Producer {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let mut n = self.first;
        while self.count.is_none_or(|c| n < self.first + c) {
            match self.tx.send(n, ctx).await {
                Ok(()) => self.sent.push(n.to_string()),
                Err(e) => {
                    // Asked to stop while the channel was full: the item was
                    // never sent, so it is not counted.
                    let _unsent = e.into_inner();
                    break;
                }
            }
            n += 1;
        }
        if self.count.is_some() {
            ctx.cancelled().await;
        }
        self.journal.push(format!("{} stopped", self.name));
        Ok(())
    }
}

/// Receives until `recv` says the channel is done; each item takes `work`
/// (plain sleep: a unit in flight is finished, not cut off). `gate`, when
/// set, holds each receive until the test adds a permit.
struct Consumer {
    rx: Receiver<u64>,
    work: Duration,
    gate: Option<Arc<Semaphore>>,
    received: Journal,
    after_shutdown: Arc<AtomicUsize>,
    journal: Journal,
}

impl Service for Consumer {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        loop {
            if let Some(gate) = &self.gate {
                tokio::select! {
                    permit = gate.acquire() => permit?.forget(),
                    _ = ctx.cancelled() => {}
                }
            }
            let Some(item) = self.rx.recv(ctx).await else {
                break;
            };
            if ctx.is_cancelled() {
                self.after_shutdown.fetch_add(1, Ordering::SeqCst);
            }
            tokio::time::sleep(self.work).await;
            self.received.push(item.to_string());
        }
        self.journal.push("consumer drained and stopped");
        Ok(())
    }
}

fn channel_status(handle: &steward_core::HostHandle, name: &str) -> ChannelStatus {
    handle
        .status()
        .channels
        .into_iter()
        .find(|c| c.name == name)
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn full_channel_makes_send_wait_and_try_send_report_full() {
    let mut builder = builder();
    let (tx, rx) = builder.channel::<u64>("orders", 2).unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let sent = Journal::default();
    let received = Journal::default();
    let journal = Journal::default();
    builder
        .service(
            "consumer",
            Consumer {
                rx,
                work: Duration::ZERO,
                gate: Some(gate.clone()),
                received: received.clone(),
                after_shutdown: Arc::default(),
                journal: journal.clone(),
            },
        )
        .unwrap();
    builder
        .service(
            "producer",
            Producer {
                tx: tx.clone(),
                first: 0,
                count: Some(5),
                sent: sent.clone(),
                journal: journal.clone(),
                name: "producer",
            },
        )
        .unwrap();
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());

    // The consumer holds back: two items fit, the third send waits.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(sent.events(), ["0", "1"], "send must wait while full");
    assert_eq!(
        channel_status(&handle, "orders"),
        ChannelStatus {
            name: "orders".into(),
            capacity: 2,
            depth: 2
        }
    );
    assert_eq!(tx.try_send(99), Err(TrySendError::Full(99)));

    // Let the consumer take one: exactly one more send goes through.
    gate.add_permits(1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(received.events(), ["0"]);
    assert_eq!(sent.events(), ["0", "1", "2"]);
    assert_eq!(channel_status(&handle, "orders").depth, 2);

    gate.add_permits(100);
    wait_for(&handle, Duration::from_secs(10), "channel empty", |s| {
        s.channels[0].depth == 0
    })
    .await;
    assert_eq!(received.events(), ["0", "1", "2", "3", "4"]);
    assert_eq!(tx.try_send(5), Ok(()), "room again once drained");
    assert_eq!(channel_status(&handle, "orders").depth, 1);

    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
}

#[tokio::test]
async fn every_channel_shows_its_depth_and_capacity_in_status() {
    let mut builder = builder();
    let (emails, _emails_rx) = builder.channel::<String>("emails", 8).unwrap();
    let (_jobs, _jobs_rx) = builder.channel::<u32>("jobs", 3).unwrap();
    let handle = builder.build().unwrap().handle();
    for i in 0..5 {
        emails.try_send(format!("mail {i}")).unwrap();
    }
    assert_eq!(
        handle.status().channels,
        [
            ChannelStatus {
                name: "emails".into(),
                capacity: 8,
                depth: 5
            },
            ChannelStatus {
                name: "jobs".into(),
                capacity: 3,
                depth: 0
            },
        ]
    );
    assert_eq!(emails.capacity(), 8);
}

#[tokio::test(start_paused = true)]
async fn producers_stop_first_and_the_consumer_drains_so_nothing_sent_is_lost() {
    let mut builder = builder();
    let (tx, rx) = builder.channel::<u64>("orders", 16).unwrap();
    let sent = Journal::default();
    let received = Journal::default();
    let journal = Journal::default();
    let after_shutdown = Arc::new(AtomicUsize::new(0));
    // The consumer is slow (10 ms per item) so the channel is full when
    // shutdown starts.
    builder
        .service(
            "consumer",
            Consumer {
                rx,
                work: Duration::from_millis(10),
                gate: None,
                received: received.clone(),
                after_shutdown: after_shutdown.clone(),
                journal: journal.clone(),
            },
        )
        .unwrap();
    for (i, name) in ["producer-a", "producer-b"].into_iter().enumerate() {
        builder
            .service(
                name,
                Producer {
                    tx: tx.clone(),
                    first: i as u64 * 1_000_000,
                    count: None,
                    sent: sent.clone(),
                    journal: journal.clone(),
                    name,
                },
            )
            .unwrap();
    }
    drop(tx);
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());

    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(channel_status(&handle, "orders").depth, 16, "full");
    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);

    let mut sent = sent.events();
    let mut received = received.events();
    assert!(sent.len() > 100, "the producers did run: {}", sent.len());
    sent.sort();
    received.sort();
    assert_eq!(sent, received, "every item sent must be received");
    assert!(
        after_shutdown.load(Ordering::SeqCst) >= 16,
        "what was queued at shutdown was drained, not dropped"
    );
    let events = journal.events();
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[2], "consumer drained and stopped",
        "producers stop before their consumer: {events:?}"
    );
    assert_eq!(channel_status(&handle, "orders").depth, 0);
    let status = handle.status();
    for name in ["consumer", "producer-a", "producer-b"] {
        assert_eq!(state_of(&status, name), ServiceState::Stopped);
    }
}

#[tokio::test(start_paused = true)]
async fn consumer_ends_when_every_producer_is_gone_and_the_channel_is_empty() {
    let mut builder = builder();
    let (tx, rx) = builder.channel::<u64>("orders", 4).unwrap();
    let received = Journal::default();
    let journal = Journal::default();
    builder
        .service(
            "consumer",
            Consumer {
                rx,
                work: Duration::from_millis(1),
                gate: None,
                received: received.clone(),
                after_shutdown: Arc::default(),
                journal: journal.clone(),
            },
        )
        .unwrap()
        .may_finish(); // its input ending is its normal end
    let host = builder.build().unwrap();
    let handle = host.handle();
    let run = tokio::spawn(host.run());
    for i in 0..10 {
        tx.send(i, &tokio_util::sync::CancellationToken::new())
            .await
            .unwrap();
    }
    drop(tx);
    wait_for(&handle, Duration::from_secs(10), "consumer stopped", |s| {
        s.service("consumer").unwrap().state == ServiceState::Stopped
    })
    .await;
    assert_eq!(received.events().len(), 10);
    assert_eq!(journal.events(), ["consumer drained and stopped"]);
    handle.shutdown();
    assert_eq!(run.await.unwrap(), ExitStatus::Clean);
}
