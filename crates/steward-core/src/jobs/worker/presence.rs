//! The worker's node: it registers the process in the store's registry of
//! live nodes and refreshes its row every few seconds (one small write, never
//! one per job), with its queues, how many jobs it holds and the host's
//! services. A clean stop removes the row at once; a crash lets it expire.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::heartbeat::{Running, lock};
use super::{QueueConfig, WorkerConfig};
use crate::HostHandle;
use crate::ServiceState;
use crate::store::{NodeInfo, NodeQueue, NodeService, Store};

/// How a worker reports its node.
///
/// ```
/// use std::time::Duration;
/// let node = steward_core::jobs::NodeConfig { refresh_every: Duration::from_secs(2), ttl: Duration::from_secs(10) };
/// let config = steward_core::jobs::WorkerConfig { node, ..Default::default() };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// How often the node's row is refreshed (default 5 s).
    pub refresh_every: Duration,
    /// How long the row lives without a refresh (default 30 s): a crashed
    /// process is listed this long at most. Well above `refresh_every`, so
    /// a slow refresh or two does not make a live node vanish.
    pub ttl: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            refresh_every: Duration::from_secs(5),
            ttl: Duration::from_secs(30),
        }
    }
}

/// Unique per process start: host, pid and the start time in milliseconds
/// (base 36), since pids are reused. Every worker of the process after the
/// first adds `-2`, `-3`, … so each has its own row.
pub(super) fn next_node_id() -> String {
    static BASE: OnceLock<String> = OnceLock::new();
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let base = BASE.get_or_init(|| {
        let started = chrono::Utc::now().timestamp_millis().unsigned_abs();
        format!("{}:{}:{}", host_name(), std::process::id(), base36(started))
    });
    match COUNT.fetch_add(1, Ordering::Relaxed) {
        0 => base.clone(),
        n => format!("{base}-{}", n + 1),
    }
}

/// The machine's name: `HOSTNAME`, else the kernel's, else `localhost`;
/// read once, as the id it is part of is.
fn host_name() -> String {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string())
    })
    .clone()
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// What the refresh task needs from the worker.
pub(super) struct Presence<S> {
    pub(super) store: Arc<S>,
    pub(super) id: String,
    pub(super) queues: Vec<QueueConfig>,
    pub(super) config: NodeConfig,
    pub(super) running: Running,
    pub(super) host: HostHandle,
}

impl<S: Store> Presence<S> {
    /// Refreshes until `stop`, then removes the row if `leave` is set by
    /// then (a clean stop; a worker restarting after a panic keeps it).
    /// A store error is logged and the next refresh tries again: the node
    /// may vanish from the list meanwhile, the worker never stops for it.
    pub(super) async fn run(
        self,
        stop: CancellationToken,
        leave: Arc<std::sync::atomic::AtomicBool>,
        give_up: CancellationToken,
    ) {
        let mut ticker = tokio::time::interval(self.config.refresh_every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = ticker.tick() => {}
            }
            if let Err(err) = self
                .store
                .register_node(self.report(), self.config.ttl)
                .await
            {
                tracing::warn!(error = %err, node = %self.id, "cannot refresh this node's row; trying again at the next refresh");
            }
        }
        if !leave.load(Ordering::SeqCst) {
            return;
        }
        tokio::select! {
            removed = self.store.remove_node(&self.id) => {
                if let Err(err) = removed {
                    tracing::warn!(error = %err, node = %self.id, "cannot remove this node's row; it expires after its ttl");
                }
            }
            _ = give_up.cancelled() => {}
        }
    }

    fn report(&self) -> NodeInfo {
        let status = self.host.status();
        let held = lock(&self.running).len();
        NodeInfo {
            id: self.id.clone(),
            host: host_name(),
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            queues: self
                .queues
                .iter()
                .map(|q| NodeQueue {
                    name: q.name.clone(),
                    concurrency: u32::try_from(q.concurrency).unwrap_or(u32::MAX),
                })
                .collect(),
            running: u32::try_from(held).unwrap_or(u32::MAX),
            services: status
                .services
                .iter()
                .map(|s| {
                    let service = NodeService {
                        restarts: s.restarts,
                        ..NodeService::new(s.name.clone(), state_name(&s.state))
                    };
                    match &s.last_error {
                        Some(e) => service.error(e.message.clone(), e.at),
                        None => service,
                    }
                })
                .collect(),
        }
    }
}

/// The state's name as the status JSON spells it.
fn state_name(state: &ServiceState) -> &'static str {
    match state {
        ServiceState::Starting => "starting",
        ServiceState::Running => "running",
        ServiceState::Restarting { .. } => "restarting",
        ServiceState::Faulted { .. } => "faulted",
        ServiceState::Stopping => "stopping",
        ServiceState::Stopped => "stopped",
    }
}

/// Checks the node settings of `config`.
pub(super) fn validate(config: &WorkerConfig) -> Result<(), crate::ConfigError> {
    let node = &config.node;
    let (min, max) = (crate::store::MIN_NODE_TTL, crate::store::MAX_NODE_TTL);
    if node.refresh_every.is_zero()
        || node.refresh_every >= node.ttl
        || !(min..=max).contains(&node.ttl)
    {
        return Err(crate::ConfigError::Invalid {
            what: "worker",
            reason: format!(
                "node refresh_every ({:?}) must be positive and shorter than the node ttl ({:?}), \
                 which must be {min:?} to {max:?}",
                node.refresh_every, node.ttl
            ),
        });
    }
    Ok(())
}
