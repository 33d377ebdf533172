//! A worker's own keys in its table of settings
//! (`[steward.services.<name>]`): queues and their concurrency, lease,
//! heartbeat, poll interval, drain timeout, batch sizes, node refresh and ttl.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{QueueConfig, Worker};
use crate::store::Store;
use crate::{ConfigError, Section};

/// Each key replaces the one of [`WorkerConfig`](super::WorkerConfig) of
/// the same name.
#[derive(Deserialize, Default)]
struct WorkerKeys {
    /// Concurrency per queue. A queue the code configured keeps its place
    /// in the serving order; a new one is served after them (in name order,
    /// as a table has no order of its own).
    queues: Option<BTreeMap<String, usize>>,
    fetch_batch: Option<u32>,
    prefetch: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    lease: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    heartbeat_every: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    poll_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    drain_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    stop_grace: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    history_every: Option<Duration>,
    id: Option<String>,
    /// `node.refresh_every`.
    #[serde(default, with = "humantime_serde")]
    node_refresh: Option<Duration>,
    /// `node.ttl`.
    #[serde(default, with = "humantime_serde")]
    node_ttl: Option<Duration>,
}

impl<S: Store> Worker<S> {
    /// Reads the settings over the current configuration. A bad or unknown
    /// key is an error now; a value that breaks a rule (a zero concurrency,
    /// a heartbeat longer than the lease) is a problem reported by `check`,
    /// like one made in code.
    pub(super) fn apply_settings(&mut self, section: &Section) -> Result<(), ConfigError> {
        let keys: WorkerKeys = section.get()?;
        let config = &mut self.config;
        for (name, concurrency) in keys.queues.into_iter().flatten() {
            if concurrency == 0 {
                // Named as the setting it is: the code may say 4.
                return Err(section.refuse(
                    &format!("queues.{name}"),
                    "concurrency 0: at least 1 job of the queue must be allowed to run".to_string(),
                ));
            } else if let Some(queue) = config.queues.iter_mut().find(|q| q.name == name) {
                queue.concurrency = concurrency;
            } else {
                config.queues.push(QueueConfig { name, concurrency });
            }
        }
        set(&mut config.fetch_batch, keys.fetch_batch);
        set(&mut config.prefetch, keys.prefetch);
        set(&mut config.lease, keys.lease);
        set(&mut config.heartbeat_every, keys.heartbeat_every);
        set(&mut config.poll_interval, keys.poll_interval);
        set(&mut config.stop_grace, keys.stop_grace);
        set(&mut config.history_every, keys.history_every);
        set(&mut config.id, keys.id);
        set(&mut config.node.refresh_every, keys.node_refresh);
        set(&mut config.node.ttl, keys.node_ttl);
        if keys.drain_timeout.is_some() {
            config.drain_timeout = keys.drain_timeout;
        }
        if let Err(problem) = config.validate() {
            self.problems.push(problem);
        }
        Ok(())
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}
