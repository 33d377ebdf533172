//! Maintenance on several nodes: one leader at a time runs the passes, a
//! dead leader is replaced once its lease expires, a stopped one hands over
//! at once. Each node is a host with a `Maintenance` service over its own
//! handle on one database, as separate processes would run them.

use std::sync::Arc;
use std::time::Duration;

use steward_core::jobs::{Leadership, Maintenance, MaintenanceConfig};
use steward_core::store::{ClaimRequest, JobState, QueueClaim, Store};
use steward_core::{ExitStatus, Host, HostHandle};
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use super::kit::{Bench, PATIENCE, Record};
use crate::Harness;

/// A node: a host running one maintenance service, on a runtime of its
/// own so that the node can be killed outright (its runtime dropped: no
/// code of it runs again, so it cannot resign), as a process would die.
struct Node {
    leadership: Leadership,
    handle: HostHandle,
    task: Option<JoinHandle<ExitStatus>>,
    runtime: Option<Runtime>,
}

impl Node {
    fn start<S: Store>(store: Arc<S>, holder: &str, config: &MaintenanceConfig) -> Node {
        let maintenance = Maintenance::new(store).config(MaintenanceConfig {
            holder: holder.to_string(),
            ..config.clone()
        });
        let leadership = maintenance.leadership();
        let mut builder = Host::builder();
        builder.handle_signals(false);
        builder.shutdown_timeout(Duration::from_secs(10));
        builder
            .service("maintenance", maintenance)
            .expect("register maintenance");
        let host = builder.build().expect("build the host");
        let handle = host.handle();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the node");
        let task = runtime.spawn(host.run());
        Node {
            leadership,
            handle,
            task: Some(task),
            runtime: Some(runtime),
        }
    }

    fn leads(&self) -> bool {
        self.leadership.is_leader()
    }

    /// A clean stop: the host shuts its services down (maintenance resigns).
    async fn stop(mut self) {
        self.handle.shutdown();
        let task = self.task.take().expect("a running node");
        let status = tokio::time::timeout(PATIENCE, task)
            .await
            .expect("the node stopped in time")
            .expect("the node's host ran");
        assert!(status.is_success(), "the node stopped cleanly: {status:?}");
    }

    /// Kills the node: nothing of it runs again, no resign.
    fn kill(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Dropping a runtime inside another one would panic; this does not.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Waits (generously) until `what` holds.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Quick ticks, and a lease no case waits out unless the leader is killed.
fn config(leader_ttl: Duration) -> MaintenanceConfig {
    MaintenanceConfig {
        rescue_every: Duration::from_millis(100),
        prune_every: Duration::from_millis(100),
        leader_ttl,
        leader_every: Duration::from_millis(100),
        ..MaintenanceConfig::default()
    }
}

/// Two nodes: only the leader runs passes (and rescues a lost job); when it
/// stops cleanly it resigns, and the other takes over at its next campaign,
/// long before the old lease would have expired.
pub async fn only_the_leader_runs_maintenance_and_a_clean_stop_hands_over<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let other = b.another_handle(h).await;
    // A lease far longer than the case: only a resign can end it.
    let config = config(Duration::from_secs(600));
    let a = Node::start(b.store.clone(), "node-a", &config);
    until("node-a leads", || a.leads()).await;
    let node_b = Node::start(other, "node-b", &config);

    let id = b
        .client
        .enqueue(Record { tag: "lost".into() })
        .await
        .expect("enqueue")
        .id;
    let claimed = b
        .store
        .claim(ClaimRequest {
            worker: "gone/1".into(),
            queues: vec![QueueClaim {
                queue: "default".into(),
                limit: 1,
            }],
            lease: Duration::from_millis(50),
            max_suspects: u32::MAX,
            kinds: None,
        })
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    b.wait_state(id, JobState::Available).await;
    // Node B has campaigned several times meanwhile (every 100 ms).
    until("node-a runs ten passes", || a.leadership.passes() >= 10).await;
    assert!(a.leads(), "node-a still leads");
    assert!(!node_b.leads(), "two leaders at once");
    assert_eq!(
        node_b.leadership.passes(),
        0,
        "a follower must not run maintenance"
    );

    a.stop().await;
    until("node-b takes over after node-a resigned", || node_b.leads()).await;
    let passes = node_b.leadership.passes();
    until("node-b runs the passes now", || {
        node_b.leadership.passes() > passes
    })
    .await;
    node_b.stop().await;
}

/// A leader that dies without resigning is replaced once its lease
/// expires, by a node that was refused while it lived.
pub async fn a_dead_leader_is_replaced_once_its_lease_expires<H: Harness>(h: &H) {
    let b = Bench::new(h).await;
    let other = b.another_handle(h).await;
    let config = config(Duration::from_secs(1));
    let a = Node::start(b.store.clone(), "node-a", &config);
    until("node-a leads", || a.leads()).await;
    let node_b = Node::start(other, "node-b", &config);
    a.kill();
    until("node-b takes over from the dead node-a", || node_b.leads()).await;
    let passes = node_b.leadership.passes();
    until("node-b runs the passes now", || {
        node_b.leadership.passes() > passes
    })
    .await;
    // The dead node's lease is gone for good: its name is refused now.
    assert!(
        !b.store
            .try_lead("maintenance", "node-a", Duration::from_secs(600))
            .await
            .expect("try_lead"),
        "node-b holds the role"
    );
    node_b.stop().await;
}
