//! The worker's node when its store fails under it: the refresh's error is
//! logged and retried, the node expires while the store is unreachable and
//! comes back with it, and the worker itself never stops for it.

use std::sync::Arc;
use std::time::Duration;

use steward_core::ServiceState;
use steward_core::jobs::{NodeConfig, Worker, WorkerConfig};
use steward_core::store::{JobState, NewJob, Store};

use super::faulty::Faulty;
use super::kit::{Bench, Nap, host, one_queue, until};
use crate::Harness;

/// Every 50 ms, gone 500 ms after the last refresh.
const NODE: NodeConfig = NodeConfig {
    refresh_every: Duration::from_millis(50),
    ttl: Duration::from_millis(500),
};

/// Contact lost: refreshes fail, so the node expires; the worker keeps
/// running (no restart, no fault). Contact back: the node is listed again
/// under the same id and the worker runs jobs. A clean stop removes it.
pub async fn a_node_whose_refreshes_fail_expires_and_returns_and_the_worker_runs_on<H: Harness>(
    h: &H,
) {
    let b = Bench::new(h).await;
    let real = b.store.clone();
    let store = Arc::new(Faulty::new(real.clone()));
    let worker = Worker::new(store.clone())
        .register::<Nap>()
        .state(b.log.clone())
        .config(WorkerConfig {
            node: NODE,
            poll_interval: Duration::from_millis(50),
            ..one_queue(2)
        });
    let running = host(|builder| {
        builder.service("worker", worker).expect("register");
    });
    let handle = running.handle.clone();
    let listed = || async { real.nodes().await.expect("list the nodes") };

    until("the node listed", || async { listed().await.len() == 1 }).await;
    let id = listed().await[0].info.id.clone();

    store.cut(true);
    until("the node expired while its refreshes fail", || async {
        listed().await.is_empty()
    })
    .await;
    let service = &handle.status().services[0];
    assert_eq!(service.state, ServiceState::Running, "{service:?}");
    assert_eq!(
        service.restarts, 0,
        "a failed refresh never restarts the worker"
    );

    store.cut(false);
    until("the node listed again", || async {
        listed().await.first().is_some_and(|n| n.info.id == id)
    })
    .await;
    let job = real
        .enqueue(vec![NewJob::new("nap", r#"{"ms":1,"stubborn":false}"#)])
        .await
        .expect("enqueue")[0]
        .id;
    until("the job completed", || async {
        real.job(job).await.expect("read").map(|j| j.state) == Some(JobState::Completed)
    })
    .await;

    let status = running.stop().await;
    assert!(status.is_success(), "{status:?}");
    assert!(listed().await.is_empty(), "a clean stop removes the node");
}
