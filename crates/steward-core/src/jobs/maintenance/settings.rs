//! Maintenance's own keys in its table of settings
//! (`[steward.services.<name>]`): how often it rescues and prunes, what it
//! keeps, and how its leadership is held.

use std::time::Duration;

use serde::Deserialize;

use super::Maintenance;
use crate::store::Store;
use crate::{ConfigError, Section};

/// Each key replaces the one of [`MaintenanceConfig`](super::MaintenanceConfig)
/// of the same name.
#[derive(Deserialize, Default)]
struct MaintenanceKeys {
    #[serde(default, with = "humantime_serde")]
    rescue_every: Option<Duration>,
    max_rescues: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    prune_every: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    completed_retention: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    dead_retention: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    history_retention: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    leader_ttl: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    leader_every: Option<Duration>,
    holder: Option<String>,
}

impl<S: Store> Maintenance<S> {
    /// Reads the settings over the current configuration; a bad or unknown
    /// key is an error now, a value that breaks a rule is reported by
    /// `check`, like one made in code.
    pub(super) fn apply_settings(&mut self, section: &Section) -> Result<(), ConfigError> {
        let keys: MaintenanceKeys = section.get()?;
        let mut config = self.config.clone();
        let MaintenanceKeys {
            rescue_every,
            max_rescues,
            prune_every,
            completed_retention,
            dead_retention,
            history_retention,
            leader_ttl,
            leader_every,
            holder,
        } = keys;
        config.rescue_every = rescue_every.unwrap_or(config.rescue_every);
        config.max_rescues = max_rescues.unwrap_or(config.max_rescues);
        config.prune_every = prune_every.unwrap_or(config.prune_every);
        config.completed_retention = completed_retention.unwrap_or(config.completed_retention);
        config.dead_retention = dead_retention.unwrap_or(config.dead_retention);
        config.history_retention = history_retention.unwrap_or(config.history_retention);
        config.leader_ttl = leader_ttl.unwrap_or(config.leader_ttl);
        config.leader_every = leader_every.unwrap_or(config.leader_every);
        if let Some(holder) = holder {
            config.holder = holder;
        }
        self.set_config(config);
        Ok(())
    }
}
