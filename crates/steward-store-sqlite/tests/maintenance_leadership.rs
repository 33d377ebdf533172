//! Maintenance when the store fails under it: a node that cannot campaign
//! stops leading, but its service keeps running (it never faults) and
//! campaigns again at every tick.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use steward_core::Host;
use steward_core::jobs::{Maintenance, MaintenanceConfig};

const PATIENCE: Duration = Duration::from_secs(30);

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < PATIENCE, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_error_while_campaigning_ends_leadership_but_not_the_service() {
    let t = common::open().await;
    let maintenance = Maintenance::new(Arc::new(t.store.clone())).config(MaintenanceConfig {
        leader_ttl: Duration::from_secs(1),
        leader_every: Duration::from_millis(50),
        rescue_every: Duration::from_millis(50),
        prune_every: Duration::from_millis(50),
        holder: "node-a".into(),
        ..MaintenanceConfig::default()
    });
    let leadership = maintenance.leadership();
    let mut builder = Host::builder();
    builder.handle_signals(false);
    builder
        .service("maintenance", maintenance)
        .expect("register");
    let host = builder.build().expect("a host");
    let handle = host.handle();
    let running = tokio::spawn(host.run());
    until("node-a leads", || leadership.is_leader()).await;

    // Every operation fails from now on (`Unavailable`).
    t.store.close().await;
    until("node-a stops leading", || !leadership.is_leader()).await;
    let passes = leadership.passes();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        leadership.passes(),
        passes,
        "no pass runs without leadership"
    );
    let status = handle.status();
    let service = &status.services[0];
    assert!(
        service.state.is_running() && service.restarts == 0,
        "store errors must not fault maintenance: {service:?}"
    );

    handle.shutdown();
    let status = tokio::time::timeout(PATIENCE, running)
        .await
        .expect("the host stopped")
        .expect("the host ran");
    assert!(status.is_success(), "{status:?}");
}
