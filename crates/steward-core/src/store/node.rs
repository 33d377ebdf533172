//! Nodes: the registry of live processes that run workers, with their
//! queues and the host's services (see [`Store::register_node`](super::Store::register_node)).
//!
//! A node reports itself every few seconds with a time to live; the store
//! stamps `last_seen` with its own clock and drops the node once `ttl` has
//! passed without a report (a crashed process), or at once when the node
//! removes itself (a clean shutdown). The rules for what a node may report
//! live here, in one place, so no store can drift from the others.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::StoreError;

/// The longest node id, host name, queue or service name, in bytes.
pub const MAX_NODE_NAME: usize = 200;
/// The longest version or service state, in bytes.
pub const MAX_NODE_LABEL: usize = 64;
/// The longest last error of a service, in bytes (longer ones are cut by
/// [`NodeService::error`] before they are reported).
pub const MAX_NODE_ERROR: usize = 2000;
/// The most queues or services one node reports.
pub const MAX_NODE_ITEMS: usize = 256;
/// The shortest time to live a node may ask for.
pub const MIN_NODE_TTL: Duration = Duration::from_millis(100);
/// The longest time to live a node may ask for: a dead node would stay
/// listed this long.
pub const MAX_NODE_TTL: Duration = Duration::from_secs(24 * 3600);

/// What a node reports about itself at each refresh.
///
/// ```
/// use steward_core::store::{NodeInfo, NodeQueue};
/// let info = NodeInfo::new("web-1:4242:k3x", "web-1", 4242)
///     .version("1.4.0")
///     .queues(vec![NodeQueue { name: "default".into(), concurrency: 10 }]);
/// assert!(info.validate(std::time::Duration::from_secs(30)).is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Unique per process start, stable for the life of the process.
    pub id: String,
    /// The machine's host name.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// The version of the program the node runs.
    pub version: String,
    /// The queues it serves, with how many of each may run at once.
    pub queues: Vec<NodeQueue>,
    /// How many jobs it holds now (running, or ended with their outcome
    /// not yet written).
    pub running: u32,
    /// The services of its host, in registration order.
    pub services: Vec<NodeService>,
}

/// A queue a node serves.
///
/// ```
/// let q = steward_core::store::NodeQueue { name: "mail".into(), concurrency: 4 };
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeQueue {
    /// The queue's name.
    pub name: String,
    /// At most this many of its jobs at once on this node.
    pub concurrency: u32,
}

/// One service of a node's host, as its status showed at the refresh.
///
/// ```
/// let s = steward_core::store::NodeService::new("mailer", "running");
/// assert_eq!(s.restarts, 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeService {
    /// The service's name in its host.
    pub name: String,
    /// Where it is in its life (`running`, `restarting`, `faulted`, …).
    pub state: String,
    /// How many times it was restarted.
    pub restarts: u32,
    /// Its most recent error, kept after it recovered.
    pub last_error: Option<NodeError>,
}

/// A service's most recent error.
///
/// ```
/// let e = steward_core::store::NodeError { message: "boom".into(), at: chrono::Utc::now() };
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeError {
    /// The error with its chain, or `panicked: <message>`.
    pub message: String,
    /// When it happened (the node's clock).
    pub at: DateTime<Utc>,
}

/// A live node as the store lists it.
///
/// ```
/// # fn demo(node: steward_core::store::NodeRecord) {
/// println!("{} on {} seen {}", node.info.id, node.info.host, node.last_seen);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// What it last reported.
    #[serde(flatten)]
    pub info: NodeInfo,
    /// When it first registered (store's clock), kept across refreshes.
    pub started_at: DateTime<Utc>,
    /// When it last reported (store's clock).
    pub last_seen: DateTime<Utc>,
    /// When it is dropped unless it reports again (store's clock).
    pub expires_at: DateTime<Utc>,
}

impl NodeInfo {
    /// A node with no queues, no services, nothing running and version `""`.
    ///
    /// ```
    /// let info = steward_core::store::NodeInfo::new("a:1:x", "a", 1);
    /// ```
    pub fn new(id: impl Into<String>, host: impl Into<String>, pid: u32) -> Self {
        NodeInfo {
            id: id.into(),
            host: host.into(),
            pid,
            version: String::new(),
            queues: Vec::new(),
            running: 0,
            services: Vec::new(),
        }
    }

    /// Sets the version.
    ///
    /// ```
    /// let info = steward_core::store::NodeInfo::new("a:1:x", "a", 1).version("0.3.1");
    /// ```
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Sets the queues.
    ///
    /// ```
    /// let info = steward_core::store::NodeInfo::new("a:1:x", "a", 1).queues(vec![]);
    /// ```
    pub fn queues(mut self, queues: Vec<NodeQueue>) -> Self {
        self.queues = queues;
        self
    }

    /// Sets the services.
    ///
    /// ```
    /// use steward_core::store::{NodeInfo, NodeService};
    /// let info = NodeInfo::new("a:1:x", "a", 1).services(vec![NodeService::new("http", "running")]);
    /// ```
    pub fn services(mut self, services: Vec<NodeService>) -> Self {
        self.services = services;
        self
    }

    /// Refuses a report a store must not write, with `ttl` its time to
    /// live: an empty or too long id, host, name or label, too many queues
    /// or services, a zero concurrency, a too long error, a `ttl` outside
    /// [`MIN_NODE_TTL`]..=[`MAX_NODE_TTL`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let info = steward_core::store::NodeInfo::new("", "a", 1);
    /// assert!(info.validate(Duration::from_secs(30)).is_err());
    /// ```
    pub fn validate(&self, ttl: Duration) -> Result<(), StoreError> {
        let refuse = |reason: String| StoreError::Invalid {
            message: format!("node `{}`: {reason}", cut(&self.id, 40)),
        };
        if !(MIN_NODE_TTL..=MAX_NODE_TTL).contains(&ttl) {
            return Err(refuse(format!(
                "a ttl of {ttl:?}: give {MIN_NODE_TTL:?} to {MAX_NODE_TTL:?}"
            )));
        }
        name("id", &self.id, MAX_NODE_NAME).map_err(refuse)?;
        name("host", &self.host, MAX_NODE_NAME).map_err(refuse)?;
        label("version", &self.version, MAX_NODE_LABEL).map_err(refuse)?;
        if self.queues.len() > MAX_NODE_ITEMS || self.services.len() > MAX_NODE_ITEMS {
            return Err(refuse(format!(
                "{} queues and {} services: at most {MAX_NODE_ITEMS} of each",
                self.queues.len(),
                self.services.len()
            )));
        }
        for q in &self.queues {
            name("queue name", &q.name, MAX_NODE_NAME).map_err(refuse)?;
            if q.concurrency == 0 {
                return Err(refuse(format!("queue `{}` has concurrency 0", q.name)));
            }
        }
        for s in &self.services {
            name("service name", &s.name, MAX_NODE_NAME).map_err(refuse)?;
            name("service state", &s.state, MAX_NODE_LABEL).map_err(refuse)?;
            if let Some(e) = &s.last_error {
                label("service error", &e.message, MAX_NODE_ERROR).map_err(refuse)?;
            }
        }
        Ok(())
    }
}

impl NodeService {
    /// A service in `state`, never restarted, without an error.
    ///
    /// ```
    /// let s = steward_core::store::NodeService::new("worker", "running");
    /// ```
    pub fn new(name: impl Into<String>, state: impl Into<String>) -> Self {
        NodeService {
            name: name.into(),
            state: state.into(),
            restarts: 0,
            last_error: None,
        }
    }

    /// Sets the last error, cut to [`MAX_NODE_ERROR`] bytes (on a character
    /// boundary) so that a long error chain never makes the report invalid.
    ///
    /// ```
    /// let s = steward_core::store::NodeService::new("w", "faulted").error("x".repeat(5000), chrono::Utc::now());
    /// assert_eq!(s.last_error.map(|e| e.message.len()), Some(steward_core::store::MAX_NODE_ERROR));
    /// ```
    pub fn error(mut self, message: impl Into<String>, at: DateTime<Utc>) -> Self {
        let message = message.into();
        self.last_error = Some(NodeError {
            message: cut(&message, MAX_NODE_ERROR).to_string(),
            at,
        });
        self
    }
}

/// The longest prefix of `s` of at most `max` bytes, on a char boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A non-empty text of at most `max` bytes.
fn name(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("empty {what}"));
    }
    label(what, value, max)
}

/// A text of at most `max` bytes.
fn label(what: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!("{what} of {} bytes: at most {max}", value.len()));
    }
    Ok(())
}
