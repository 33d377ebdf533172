//! Nodes: each live process's last report, until its ttl passes.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use steward_core::store::{NodeInfo, NodeRecord, StoreError};

use super::row::after;

/// Every registered node, by id.
#[derive(Debug, Default)]
pub(super) struct Nodes {
    rows: BTreeMap<String, NodeRecord>,
}

impl Nodes {
    /// `Store::register_node` at `now`: replaces the report, keeps
    /// `started_at` unless the node had expired, and drops every other
    /// expired node.
    pub(super) fn register(
        &mut self,
        now: DateTime<Utc>,
        info: NodeInfo,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        info.validate(ttl)?;
        let expires_at = after(now, ttl)?;
        let started_at = self
            .rows
            .get(&info.id)
            .filter(|n| live(n, now))
            .map_or(now, |n| n.started_at);
        self.rows.retain(|id, n| *id == info.id || live(n, now));
        self.rows.insert(
            info.id.clone(),
            NodeRecord {
                info,
                started_at,
                last_seen: now,
                expires_at,
            },
        );
        Ok(())
    }

    /// `Store::nodes` at `now`.
    pub(super) fn list(&self, now: DateTime<Utc>) -> Vec<NodeRecord> {
        self.rows
            .values()
            .filter(|n| live(n, now))
            .cloned()
            .collect()
    }

    /// `Store::node` at `now`.
    pub(super) fn get(&self, now: DateTime<Utc>, id: &str) -> Option<NodeRecord> {
        self.rows.get(id).filter(|n| live(n, now)).cloned()
    }

    /// `Store::remove_node`.
    pub(super) fn remove(&mut self, id: &str) -> bool {
        self.rows.remove(id).is_some()
    }
}

/// Expired means strictly before now, as leases do.
fn live(node: &NodeRecord, now: DateTime<Utc>) -> bool {
    node.expires_at >= now
}
