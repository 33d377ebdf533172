//! A process that runs a worker registers itself as a node, with its queues
//! and the host's services, keeps its row fresh, and removes it when it
//! stops cleanly (issue 14, "Nodes"). On a real SQLite store.

mod common;

use std::time::{Duration, Instant};

use steward::jobs::{NodeConfig, QueueConfig, Worker, WorkerConfig};
use steward::store::{NodeRecord, Store};
use steward::{BoxError, Context, FailurePolicy, RestartPolicy, Service};

use common::{Ping, builder, store_in};

/// Fails a moment after each start, with a recognisable error.
struct Flaky;

impl Service for Flaky {
    async fn run(&mut self, _ctx: &Context) -> Result<(), BoxError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err("upstream refused the connection".into())
    }
}

fn short_node() -> NodeConfig {
    NodeConfig {
        refresh_every: Duration::from_millis(100),
        ttl: Duration::from_secs(2),
    }
}

/// Polls the store's nodes until `ok` holds for one of them.
async fn wait_for<S: Store>(store: &S, what: &str, ok: impl Fn(&NodeRecord) -> bool) -> NodeRecord {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let nodes = store.nodes().await.expect("list the nodes");
        if let Some(node) = nodes.iter().find(|n| ok(n)) {
            return node.clone();
        }
        assert!(Instant::now() < deadline, "never saw {what}: {nodes:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_registers_its_node_with_services_and_removes_it_on_a_clean_stop() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = store_in(&dir).await;
    store.migrate().await.expect("migrate");
    let mut host = builder();
    host.service("flaky", Flaky)
        .expect("flaky")
        .policy(FailurePolicy::Restart(RestartPolicy {
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(50),
            jitter: 0.0,
            max_restarts: 1000,
            ..RestartPolicy::default()
        }));
    let worker = Worker::new(store.clone())
        .register::<Ping>()
        .config(WorkerConfig {
            node: short_node(),
            queues: vec![
                QueueConfig {
                    name: "default".into(),
                    concurrency: 4,
                },
                QueueConfig {
                    name: "mail".into(),
                    concurrency: 2,
                },
            ],
            ..WorkerConfig::default()
        });
    host.service("worker", worker).expect("worker");
    let host = host.build().expect("build");
    let handle = host.handle();
    let running = tokio::spawn(host.run());

    let node = wait_for(
        &*store,
        "the node with flaky's error after 2 restarts",
        |n| {
            n.info
                .services
                .iter()
                .any(|s| s.name == "flaky" && s.restarts >= 2 && s.last_error.is_some())
        },
    )
    .await;
    assert_eq!(node.info.pid, std::process::id());
    assert!(
        node.info.id.contains(&std::process::id().to_string()),
        "the id names the process: {}",
        node.info.id
    );
    let queues: Vec<_> = node
        .info
        .queues
        .iter()
        .map(|q| (q.name.as_str(), q.concurrency))
        .collect();
    assert_eq!(queues, [("default", 4), ("mail", 2)]);
    let names: Vec<_> = node.info.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["flaky", "worker"], "every service of the host");
    let flaky = &node.info.services[0];
    let error = flaky.last_error.as_ref().expect("flaky's last error");
    assert!(
        error.message.contains("upstream refused the connection"),
        "{error:?}"
    );
    assert_eq!(node.info.services[1].state, "running");

    // Refreshed: last_seen moves, started_at and the id stay.
    let later = wait_for(&*store, "a later refresh", |n| n.last_seen > node.last_seen).await;
    assert_eq!(later.info.id, node.info.id, "the id is stable");
    assert_eq!(later.started_at, node.started_at);

    handle.shutdown();
    running.await.expect("the host");
    assert_eq!(
        store.nodes().await.expect("list").len(),
        0,
        "a clean stop removes the node at once, not after its ttl"
    );
}

#[test]
fn node_settings_that_break_the_rules_are_refused() {
    let mut config = WorkerConfig::default();
    assert!(config.validate().is_ok());
    config.node.refresh_every = config.node.ttl;
    assert!(config.validate().is_err(), "a refresh as long as the ttl");
    config.node = NodeConfig {
        refresh_every: Duration::from_millis(10),
        ttl: Duration::from_millis(20),
    };
    assert!(config.validate().is_err(), "a ttl under the minimum");
}

#[tokio::test]
async fn node_settings_come_from_the_worker_section_and_a_broken_one_is_reported_at_build() {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    };
    let mut worker = Worker::new(store_in(&dir).await).register::<Ping>();
    let settings = steward::Settings::new().env_from(env(&[
        ("STEWARD_SERVICES__WORKER__NODE_REFRESH", "2s"),
        ("STEWARD_SERVICES__WORKER__NODE_TTL", "1m"),
    ]));
    Service::configure(&mut worker, &settings.service("worker")).expect("configure");
    assert_eq!(
        worker.current_config().node,
        NodeConfig {
            refresh_every: Duration::from_secs(2),
            ttl: Duration::from_secs(60),
        }
    );

    let worker = Worker::new(store_in(&dir).await).register::<Ping>();
    let settings =
        steward::Settings::new().env_from(env(&[("STEWARD_SERVICES__WORKER__NODE_REFRESH", "1m")]));
    let mut host = builder();
    host.settings(settings);
    host.service("worker", worker).expect("worker");
    let err = host.build().expect_err("refused").to_string();
    assert!(err.contains("service `worker`"), "{err}");
    assert!(err.contains("node refresh_every (60s)"), "{err}");
}
