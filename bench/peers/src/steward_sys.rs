//! Steward on its PostgreSQL store, set up as `steward bench jobs --store
//! postgres` sets it up: default store and worker options.

use std::sync::Arc;

use anyhow::{Context as _, Result, anyhow};
use serde::{Deserialize, Serialize};
use steward::jobs::{Client, EnqueueOptions, Job, JobContext, QueueConfig, Worker, WorkerConfig};
use steward::postgres::{PostgresOptions, PostgresStore};
use steward::store::Store;
use steward::{BoxError, Host, HostHandle};
use tokio::task::JoinHandle;

use crate::harness::{self, System};

#[derive(Serialize, Deserialize)]
struct Noop {}

impl Job for Noop {
    const KIND: &'static str = "bench_noop";
    async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
        harness::ran();
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct Probe {
    t0_ns: u64,
}

impl Job for Probe {
    const KIND: &'static str = "bench_probe";
    async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
        harness::probe_started(self.t0_ns);
        Ok(())
    }
}

pub struct Steward {
    store: Arc<PostgresStore>,
    client: Client<PostgresStore>,
    concurrency: usize,
    running: Option<(HostHandle, JoinHandle<steward::ExitStatus>)>,
}

impl System for Steward {
    async fn setup(url: &str, concurrency: usize) -> Result<Self> {
        let store = Arc::new(PostgresStore::connect(url, PostgresOptions::default()).await?);
        store.migrate().await?;
        Ok(Steward {
            client: Client::new(store.clone()),
            store,
            concurrency,
            running: None,
        })
    }

    async fn enqueue_bulk(&mut self, n: usize) -> Result<()> {
        self.client
            .enqueue_many((0..n).map(|_| Noop {}), EnqueueOptions::default())
            .await?;
        Ok(())
    }

    async fn start(&mut self) -> Result<()> {
        let worker = Worker::new(self.store.clone())
            .register::<Noop>()
            .register::<Probe>()
            .config(WorkerConfig {
                queues: vec![QueueConfig {
                    name: "default".to_string(),
                    concurrency: self.concurrency,
                }],
                ..WorkerConfig::default()
            })?;
        let mut builder = Host::builder();
        builder.handle_signals(false);
        builder.service("worker", worker)?;
        let host = builder.build()?;
        self.running = Some((host.handle(), tokio::spawn(host.run())));
        Ok(())
    }

    async fn completed(&self) -> Result<u64> {
        Ok(self.store.counts().await?.completed)
    }

    async fn enqueue_probe(&mut self, t0_ns: u64) -> Result<()> {
        self.client.enqueue(Probe { t0_ns }).await?;
        Ok(())
    }

    async fn stop(self) -> Result<()> {
        let (handle, running) = self.running.ok_or_else(|| anyhow!("worker not started"))?;
        handle.shutdown();
        running.await.context("the worker's host task")?;
        self.store.close().await;
        Ok(())
    }
}
