//! Leadership of a role among many nodes: one node at a time runs the
//! periodic maintenance, by a lease in the store ([`Store::try_lead`]).
//!
//! A node campaigns every `every`: it takes the role if it is free or its
//! lease expired, or renews it if it holds it, for `ttl` on the store's
//! clock. A leader that dies stops renewing, so its lease ends at most `ttl`
//! after its last renewal, and the next campaign of another node after that
//! takes over: a dead leader is replaced within `ttl + every` (plus one
//! store round trip). A leader that stops cleanly resigns, and another node
//! takes over at its next campaign.
//!
//! The leader believes it leads only until `ttl` after it *sent* its last
//! successful renewal, measured on its own monotonic clock: the store's lease
//! started later than that, so a node paused (or cut off) past its lease
//! stops acting as leader by itself, before or when another node takes over.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::ConfigError;
use crate::store::Store;
use crate::sync::LockExt;

/// A node's view of its leadership of one role, shared between the service
/// that campaigns for it and whoever watches (status pages, tests). Cheap to
/// clone; clones share the view.
///
/// ```
/// # fn demo<S: steward_core::store::Store>(store: std::sync::Arc<S>) {
/// let maintenance = steward_core::jobs::Maintenance::new(store);
/// let leadership = maintenance.leadership();
/// println!("{} leads: {}", leadership.holder(), leadership.is_leader());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Leadership {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    role: &'static str,
    holder: Mutex<String>,
    leading: AtomicBool,
    passes: AtomicU64,
}

impl Leadership {
    pub(crate) fn new(role: &'static str, holder: String) -> Self {
        Leadership {
            shared: Arc::new(Shared {
                role,
                holder: Mutex::new(holder),
                leading: AtomicBool::new(false),
                passes: AtomicU64::new(0),
            }),
        }
    }

    /// The role campaigned for (`maintenance`).
    ///
    /// ```
    /// # fn demo(l: steward_core::jobs::Leadership) {
    /// assert_eq!(l.role(), "maintenance");
    /// # }
    /// ```
    pub fn role(&self) -> &'static str {
        self.shared.role
    }

    /// This node's name in the store's leaders table.
    ///
    /// ```
    /// # fn demo(l: steward_core::jobs::Leadership) {
    /// tracing::info!(holder = %l.holder(), "this node");
    /// # }
    /// ```
    pub fn holder(&self) -> String {
        self.shared.holder.lock_or_recover().clone()
    }

    /// True while this node holds the role (as of its last campaign).
    ///
    /// ```
    /// # fn demo(l: steward_core::jobs::Leadership) {
    /// if l.is_leader() { println!("this node runs maintenance"); }
    /// # }
    /// ```
    pub fn is_leader(&self) -> bool {
        self.shared.leading.load(Ordering::SeqCst)
    }

    /// How many periodic passes (rescue or prune) this node ran as leader.
    ///
    /// ```
    /// # fn demo(l: steward_core::jobs::Leadership) {
    /// println!("{} passes run here", l.passes());
    /// # }
    /// ```
    pub fn passes(&self) -> u64 {
        self.shared.passes.load(Ordering::SeqCst)
    }

    pub(crate) fn set_holder(&self, holder: String) {
        *self.shared.holder.lock_or_recover() = holder;
    }

    pub(crate) fn count_pass(&self) {
        self.shared.passes.fetch_add(1, Ordering::SeqCst);
    }

    fn set_leading(&self, leading: bool) {
        self.shared.leading.store(leading, Ordering::SeqCst);
    }
}

/// One node's campaign for a role: what it asks the store, and until when
/// it may act as leader.
#[derive(Debug)]
pub(crate) struct Campaign {
    view: Leadership,
    /// `ttl` after the last successful take or renewal was sent.
    leading_until: Option<Instant>,
}

impl Campaign {
    pub(crate) fn new(view: Leadership) -> Self {
        Campaign {
            view,
            leading_until: None,
        }
    }

    pub(crate) fn view(&self) -> &Leadership {
        &self.view
    }

    /// Takes or renews the role for `ttl`. A store error counts as not
    /// leading (it is logged, and the next campaign tries again): a node
    /// that cannot reach the store cannot know that it still leads.
    pub(crate) async fn step<S: Store>(&mut self, store: &S, ttl: Duration) {
        let holder = self.view.holder();
        let role = self.view.role();
        let asked = Instant::now();
        let led = match store.try_lead(role, &holder, ttl).await {
            Ok(led) => led,
            Err(error) => {
                tracing::error!(role, %holder, %error, "cannot campaign for leadership; not leading until the store answers");
                false
            }
        };
        let was = self.leads();
        self.leading_until = led.then(|| asked + ttl);
        match (was, led) {
            (false, true) => tracing::info!(role, %holder, ?ttl, "became leader"),
            (true, false) => tracing::warn!(role, %holder, "lost leadership"),
            _ => {}
        }
        self.view.set_leading(led);
    }

    /// Whether this node may act as leader now. A lease that ran out
    /// before it was renewed (the node was paused, or a renewal hung) ends
    /// the leadership here, without asking the store.
    pub(crate) fn leads(&mut self) -> bool {
        let leads = self.leading_until.is_some_and(|t| Instant::now() < t);
        if !leads && self.leading_until.take().is_some() {
            tracing::warn!(role = self.view.role(), holder = %self.view.holder(),
                "lost leadership: the lease ran out before it was renewed");
            self.view.set_leading(false);
        }
        leads
    }

    /// Gives the role up if this node held it lately (clean shutdown: the
    /// next node takes over at its next campaign instead of after `ttl`).
    pub(crate) async fn resign<S: Store>(&mut self, store: &S) {
        if self.leading_until.take().is_none() {
            return;
        }
        self.view.set_leading(false);
        let holder = self.view.holder();
        let role = self.view.role();
        match store.resign(role, &holder).await {
            Ok(()) => tracing::info!(role, %holder, "resigned leadership"),
            Err(error) => {
                tracing::warn!(role, %holder, %error, "cannot resign leadership; it lapses when its lease expires")
            }
        }
    }
}

/// A name for this node that no other node shares: host, process id and a
/// random suffix (two processes may reuse a pid, e.g. in containers).
pub(crate) fn default_holder() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_string());
    format!(
        "{host}/{}/{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// The rules a service's leadership settings follow (maintenance's, the
/// scheduler's): a campaign period, a holder name, and a period shorter than
/// the lease. `who` names the service in the error.
pub(crate) fn validate_campaign(
    who: &'static str,
    holder: &str,
    every: Duration,
    ttl: Duration,
) -> Result<(), ConfigError> {
    if every.is_zero() {
        return Err(ConfigError::ZeroPeriod {
            what: format!("{who}'s leader_every"),
        });
    }
    if holder.is_empty() {
        return Err(ConfigError::Invalid {
            what: who,
            reason: "the holder is empty; each node needs a unique name".to_string(),
        });
    }
    if every >= ttl {
        return Err(ConfigError::Invalid {
            what: who,
            reason: format!(
                "leader_every ({every:?}) must be shorter than leader_ttl ({ttl:?}), or the \
                 leader loses its lease between renewals"
            ),
        });
    }
    Ok(())
}
