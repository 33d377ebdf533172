//! Helpers shared by the integration tests: a store on a fresh file in a
//! temp dir, and short-hands for claims.
#![allow(dead_code)]

use std::time::Duration;

use steward_core::store::{ClaimRequest, ClaimedJob, QueueClaim, Store};
use steward_store_sqlite::{SqliteOptions, SqliteStore};
use tempfile::TempDir;

/// A migrated store on `jobs.db` in its own temp dir (kept alive with it).
pub struct TestStore {
    pub store: SqliteStore,
    pub dir: TempDir,
}

impl TestStore {
    pub fn path(&self) -> String {
        self.dir.path().join("jobs.db").display().to_string()
    }
}

pub async fn open() -> TestStore {
    open_with(SqliteOptions::default()).await
}

pub async fn open_with(options: SqliteOptions) -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("jobs.db");
    let store = SqliteStore::open(path.to_str().expect("utf-8 path"), options)
        .await
        .expect("open store");
    store.migrate().await.expect("migrate");
    TestStore { store, dir }
}

pub fn request(queue: &str, limit: u32) -> ClaimRequest {
    ClaimRequest {
        worker: "test-worker".into(),
        queues: vec![QueueClaim {
            queue: queue.into(),
            limit,
        }],
        lease: Duration::from_secs(30),
        max_suspects: u32::MAX,
        kinds: None,
    }
}

pub async fn claim(store: &SqliteStore, queue: &str, limit: u32) -> Vec<ClaimedJob> {
    store.claim(request(queue, limit)).await.expect("claim")
}

/// A host running one service (a worker, usually), started by [`host`].
pub struct RunningHost {
    pub handle: steward_core::HostHandle,
    task: tokio::task::JoinHandle<steward_core::ExitStatus>,
}

/// Starts a host (no signal handling) with `service` registered as `name`.
pub fn host<S: steward_core::Service>(name: &str, service: S) -> RunningHost {
    host_with(|builder| {
        builder.service(name, service).expect("register");
    })
}

/// Starts a host (no signal handling) after `setup` registered its services.
pub fn host_with(setup: impl FnOnce(&mut steward_core::HostBuilder)) -> RunningHost {
    let mut builder = steward_core::Host::builder();
    builder.handle_signals(false);
    setup(&mut builder);
    let host = builder.build().expect("a host");
    let handle = host.handle();
    RunningHost {
        handle,
        task: tokio::spawn(host.run()),
    }
}

impl RunningHost {
    /// Asks the host to stop and waits (at most 30 s) for its exit status.
    pub async fn stop(self) -> steward_core::ExitStatus {
        self.handle.shutdown();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the host stopped within 30 s")
            .expect("the host task")
    }
}

/// Polls `check` every 10 ms until it holds; panics with `what` after 20 s.
pub async fn until<F: std::future::Future<Output = bool>>(
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let started = std::time::Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
