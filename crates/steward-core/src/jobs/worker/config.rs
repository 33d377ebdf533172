//! A worker's settings, and the rules they must follow (checked when they
//! are given, so a worker never starts with settings it cannot work by).

use std::time::Duration;

use super::NodeConfig;
use crate::ConfigError;

/// A queue this worker serves and how many of its jobs may run at once.
///
/// ```
/// let q = steward_core::jobs::QueueConfig { name: "default".into(), concurrency: 16 };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// The queue's name.
    pub name: String,
    /// At most this many of its jobs run at once in this worker.
    pub concurrency: usize,
}

/// How a worker claims, leases and stops.
///
/// ```
/// use std::time::Duration;
/// let config = steward_core::jobs::WorkerConfig { lease: Duration::from_secs(60), ..Default::default() };
/// ```
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Queues in the order they are served (earlier ones first), with limits.
    pub queues: Vec<QueueConfig>,
    /// At most this many jobs claimed in one round trip (default 256, the
    /// default prefetch cap: with the claim running alongside the jobs, a
    /// fast queue's claims are as large as its buffer allows; measured with
    /// `steward bench jobs --fetch-batch`, 256 processed 10–15 % more no-op
    /// jobs per second than 100 on SQLite and 3–7 % more on PostgreSQL).
    /// Slow queues claim far fewer: see `prefetch`.
    pub fetch_batch: u32,
    /// The most jobs claimed ahead of free slots, per queue, so the next
    /// ones start without a round trip to the store. The worker buffers only
    /// as many as hide its measured claim time (deep for fast jobs, about
    /// none for slow ones; see `pace.rs`). Buffered jobs are leased and
    /// heartbeated, and released at once on shutdown. 0 turns it off.
    pub prefetch: usize,
    /// How long a claim holds a job without a heartbeat; at most 24 h
    /// (heartbeats renew it).
    pub lease: Duration,
    /// How often running jobs' leases are renewed (well under `lease`).
    pub heartbeat_every: Duration,
    /// How long to wait for new work before claiming again anyway.
    pub poll_interval: Duration,
    /// How long running jobs may take to finish at shutdown before they are
    /// stopped and released; `None` uses the host's shutdown timeout minus
    /// two seconds (kept for releasing them).
    pub drain_timeout: Option<Duration>,
    /// How long a job told to stop gets to return before it is dropped.
    pub stop_grace: Duration,
    /// This worker's name in job records (default `host/pid`).
    pub id: String,
    /// How often the outcomes counted for the history (per minute, queue
    /// and kind: `Store::record_history`) are written: one small write per
    /// period, never one per job (default 10 s, at most 10 minutes).
    pub history_every: Duration,
    /// How its node is reported in the store's registry of live nodes.
    pub node: NodeConfig,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            queues: vec![QueueConfig {
                name: "default".to_string(),
                concurrency: 10,
            }],
            fetch_batch: 256,
            prefetch: 256,
            lease: Duration::from_secs(30),
            heartbeat_every: Duration::from_secs(5),
            poll_interval: Duration::from_secs(1),
            drain_timeout: None,
            stop_grace: Duration::from_secs(1),
            id: default_worker_id(),
            history_every: Duration::from_secs(10),
            node: NodeConfig::default(),
        }
    }
}

fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_string());
    format!("{host}/{}", std::process::id())
}

/// The longest lease a worker may ask for. Leases are renewed by
/// heartbeats; a longer one only hides a dead worker's jobs for longer (and
/// far beyond it, overflows the stores' time arithmetic).
const MAX_LEASE: Duration = Duration::from_secs(24 * 3600);

/// The longest `history_every`.
const MAX_HISTORY_EVERY: Duration = Duration::from_secs(600);

impl WorkerConfig {
    /// Checks the rules: at least one queue, every concurrency and the
    /// fetch batch positive, heartbeats well inside the lease, a lease of at
    /// most 24 h, a positive poll interval.
    ///
    /// ```
    /// let mut config = steward_core::jobs::WorkerConfig::default();
    /// assert!(config.validate().is_ok());
    /// config.poll_interval = std::time::Duration::ZERO;
    /// assert!(config.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let config = self;
        if config.queues.is_empty() {
            return Err(ConfigError::Invalid {
                what: "worker",
                reason: "it serves no queue".to_string(),
            });
        }
        if let Some(q) = config.queues.iter().find(|q| q.concurrency == 0) {
            return Err(ConfigError::ZeroConcurrency {
                what: format!("queue `{}`", q.name),
            });
        }
        if config.fetch_batch == 0 {
            return Err(ConfigError::ZeroConcurrency {
                what: "the worker's fetch batch".to_string(),
            });
        }
        if config.heartbeat_every.is_zero() || config.heartbeat_every >= config.lease {
            return Err(ConfigError::Invalid {
                what: "worker",
                reason: format!(
                    "heartbeat_every ({:?}) must be positive and shorter than the lease ({:?})",
                    config.heartbeat_every, config.lease
                ),
            });
        }
        if config.lease > MAX_LEASE {
            return Err(ConfigError::Invalid {
                what: "worker",
                reason: format!(
                    "lease ({:?}) is longer than {MAX_LEASE:?}: heartbeats renew a lease, so a \
                     long one only delays the rescue of jobs whose worker died",
                    config.lease
                ),
            });
        }
        if config.poll_interval.is_zero() {
            return Err(ConfigError::ZeroPeriod {
                what: "the worker's poll interval".to_string(),
            });
        }
        if config.history_every.is_zero() {
            return Err(ConfigError::ZeroPeriod {
                what: "the worker's history_every".to_string(),
            });
        }
        if config.history_every > MAX_HISTORY_EVERY {
            return Err(ConfigError::Invalid {
                what: "worker",
                reason: format!(
                    "history_every ({:?}) is longer than {MAX_HISTORY_EVERY:?}: the history's \
                     charts would lag, and a crash would lose that much of it",
                    config.history_every
                ),
            });
        }
        super::presence::validate(config)
    }
}
