//! Nodes (`register_node`, `nodes`, `node`, `remove_node`): the registry of
//! live processes, each listed until its ttl passes on the store's clock.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use steward_core::store::{
    MAX_NODE_ERROR, MAX_NODE_ITEMS, MAX_NODE_NAME, MAX_NODE_TTL, NodeError, NodeInfo, NodeQueue,
    NodeRecord, NodeService, Store, StoreError,
};

use crate::Harness;
use crate::support::{Fixture, LONG_LEASE, PATIENCE, now, transient};

/// A ttl meant to pass during the case.
const SHORT_TTL: Duration = Duration::from_millis(300);

/// A node with two queues and three services, one of them failing.
fn node(id: &str) -> NodeInfo {
    let failed_at = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap_or_default();
    NodeInfo::new(id, "web-1", 4242)
        .version("1.2.3")
        .queues(vec![
            NodeQueue {
                name: "default".into(),
                concurrency: 10,
            },
            NodeQueue {
                name: "mail".into(),
                concurrency: 2,
            },
        ])
        .services(vec![
            NodeService::new("worker", "running"),
            NodeService {
                restarts: 3,
                ..NodeService::new("flaky", "restarting")
            }
            .error("connection refused: é ✓", failed_at),
            NodeService::new("http", "stopped"),
        ])
}

async fn register<S: Store>(store: &S, info: &NodeInfo, ttl: Duration) {
    transient(|| store.register_node(info.clone(), ttl))
        .await
        .unwrap_or_else(|e| panic!("register_node({}) failed: {e}", info.id));
}

async fn list<S: Store>(store: &S) -> Vec<NodeRecord> {
    transient(|| store.nodes())
        .await
        .unwrap_or_else(|e| panic!("nodes() failed: {e}"))
}

async fn get<S: Store>(store: &S, id: &str) -> Option<NodeRecord> {
    transient(|| store.node(id))
        .await
        .unwrap_or_else(|e| panic!("node({id}) failed: {e}"))
}

async fn remove<S: Store>(store: &S, id: &str) -> bool {
    transient(|| store.remove_node(id))
        .await
        .unwrap_or_else(|e| panic!("remove_node({id}) failed: {e}"))
}

fn ids(nodes: &[NodeRecord]) -> Vec<&str> {
    nodes.iter().map(|n| n.info.id.as_str()).collect()
}

/// Within a millisecond either way: stores keep milliseconds at least.
fn close(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    (a - b).abs() <= TimeDelta::milliseconds(1)
}

/// A registered node is listed (by id) and read back with every field it
/// reported, its services included; its times come from the store's
/// clock: started and seen now, expiring `ttl` after.
pub async fn a_registered_node_lists_and_reads_back_every_field<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    let before = now() - TimeDelta::milliseconds(1);
    register(s, &node("node-b"), LONG_LEASE).await;
    register(s, &node("node-a"), LONG_LEASE).await;
    let after = now() + TimeDelta::milliseconds(1);
    let listed = list(s).await;
    assert_eq!(ids(&listed), ["node-a", "node-b"], "nodes are listed by id");
    let a = &listed[0];
    assert_eq!(a.info, node("node-a"), "every reported field reads back");
    assert!(
        before <= a.started_at && a.started_at <= after,
        "started_at is the store's now at the first registration: {} not in {before}..{after}",
        a.started_at
    );
    assert!(close(a.last_seen, a.started_at), "first seen when started");
    let ttl = TimeDelta::from_std(LONG_LEASE).unwrap_or_default();
    assert!(
        close(a.expires_at, a.last_seen + ttl),
        "expires ttl after last seen: {} vs {}",
        a.expires_at,
        a.last_seen
    );
    assert_eq!(
        get(s, "node-a").await.as_ref(),
        Some(a),
        "node(id) reads what nodes() lists"
    );
    assert_eq!(get(s, "node-x").await, None, "an unknown id is None");
}

/// A refresh replaces the report and `last_seen`, and keeps `started_at`.
pub async fn a_refresh_updates_the_report_and_keeps_started_at<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    register(s, &node("node-a"), LONG_LEASE).await;
    let first = get(s, "node-a").await.expect("the node is listed");
    tokio::time::sleep(Duration::from_millis(30)).await;
    let mut changed = node("node-a");
    changed.running = 7;
    changed.services[1] = NodeService::new("flaky", "running");
    changed.queues.pop();
    register(s, &changed, LONG_LEASE).await;
    let second = get(s, "node-a").await.expect("still listed");
    assert_eq!(
        second.info, changed,
        "the refresh's report replaces the old"
    );
    assert_eq!(second.started_at, first.started_at, "started_at is kept");
    assert!(
        second.last_seen >= first.last_seen + TimeDelta::milliseconds(20),
        "last_seen moves to the store's now: {} then {}",
        first.last_seen,
        second.last_seen
    );
    assert_eq!(list(s).await.len(), 1, "a refresh adds no row");
}

/// A node not seen for its ttl (by the store's clock) is no longer listed
/// nor read; another node's refresh deletes its row; nodes with time left
/// stay.
pub async fn a_node_not_seen_for_its_ttl_expires_and_its_row_goes<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    register(s, &node("dying"), SHORT_TTL).await;
    register(s, &node("alive"), LONG_LEASE).await;
    assert_eq!(
        ids(&list(s).await),
        ["alive", "dying"],
        "both listed at first"
    );
    let deadline = Instant::now() + PATIENCE;
    while get(s, "dying").await.is_some() {
        assert!(
            Instant::now() < deadline,
            "a node with a {SHORT_TTL:?} ttl is still listed after {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        ids(&list(s).await),
        ["alive"],
        "the expired node is not listed"
    );
    register(s, &node("alive"), LONG_LEASE).await;
    assert!(
        !remove(s, "dying").await,
        "the refresh of another node deleted the expired row"
    );
    assert!(get(s, "alive").await.is_some(), "the live node stays");
}

/// A node that expired and registers again starts afresh: a new
/// `started_at`.
pub async fn an_expired_node_that_returns_starts_afresh<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    register(s, &node("node-a"), SHORT_TTL).await;
    let first = get(s, "node-a").await.expect("listed");
    tokio::time::sleep(SHORT_TTL * 2).await;
    register(s, &node("node-a"), LONG_LEASE).await;
    let again = get(s, "node-a").await.expect("listed again");
    assert!(
        again.started_at > first.started_at + TimeDelta::milliseconds(300),
        "started_at is the new registration's: {} then {}",
        first.started_at,
        again.started_at
    );
}

/// Removing a node (its clean shutdown) drops it at once; removing it
/// again, or an unknown id, answers `false`.
pub async fn remove_drops_a_node_at_once<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    register(s, &node("node-a"), LONG_LEASE).await;
    register(s, &node("node-b"), LONG_LEASE).await;
    assert!(remove(s, "node-a").await, "a listed node is removed");
    assert_eq!(ids(&list(s).await), ["node-b"]);
    assert_eq!(get(s, "node-a").await, None);
    assert!(!remove(s, "node-a").await, "removing twice answers false");
    assert!(!remove(s, "unknown").await);
}

/// A report that breaks a rule is refused with `Invalid` and writes
/// nothing, not even for a node already registered.
pub async fn register_refuses_bad_input_and_writes_nothing<H: Harness>(h: &H) {
    let f = Fixture::new(h).await;
    let s = &*f.store;
    register(s, &node("kept"), LONG_LEASE).await;
    let kept = get(s, "kept").await;
    let long = "x".repeat(MAX_NODE_NAME + 1);
    let mut bad: Vec<(&str, NodeInfo, Duration)> = vec![
        ("an empty id", node(""), LONG_LEASE),
        ("a too long id", node(&long), LONG_LEASE),
        ("a zero ttl", node("kept"), Duration::ZERO),
        ("a ttl above the maximum", node("kept"), MAX_NODE_TTL * 2),
    ];
    let mut host = node("kept");
    host.host = String::new();
    bad.push(("an empty host", host, LONG_LEASE));
    let mut many = node("kept");
    many.services = vec![NodeService::new("s", "running"); MAX_NODE_ITEMS + 1];
    bad.push(("too many services", many, LONG_LEASE));
    let mut zero = node("kept");
    zero.queues[0].concurrency = 0;
    bad.push(("a zero concurrency", zero, LONG_LEASE));
    let mut error = node("kept");
    error.services[0].last_error = Some(NodeError {
        message: "e".repeat(MAX_NODE_ERROR + 1),
        at: now(),
    });
    bad.push(("a too long error", error, LONG_LEASE));
    let mut nameless = node("kept");
    nameless.services[0].name = String::new();
    bad.push(("a nameless service", nameless, LONG_LEASE));
    for (what, info, ttl) in bad {
        match s.register_node(info, ttl).await {
            Err(StoreError::Invalid { .. }) => {}
            other => panic!("{what} must be refused with Invalid, got {other:?}"),
        }
    }
    assert_eq!(ids(&list(s).await), ["kept"], "nothing was written");
    assert_eq!(
        get(s, "kept").await,
        kept,
        "the registered node is unchanged"
    );
}
