//! The keys the host reads: `[steward.host]`, and in each
//! `[steward.services.<name>]` the service's failure policy and init
//! timeout. Applied by `HostBuilder::build`, before the services' checks.

use std::time::Duration;

use serde::Deserialize;

use super::Settings;
use super::source::origin_of;
use crate::{ConfigError, FailurePolicy, RestartPolicy};

/// `[steward.host]`.
#[derive(Deserialize, Default)]
pub(crate) struct HostKeys {
    #[serde(default, with = "humantime_serde")]
    pub(crate) shutdown_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub(crate) init_timeout: Option<Duration>,
    pub(crate) blocking_limit: Option<usize>,
}

/// The host's keys in `[steward.services.<name>]`.
#[derive(Deserialize, Default)]
pub(crate) struct ServiceKeys {
    policy: Option<PolicyName>,
    restart: Option<RestartKeys>,
    #[serde(default, with = "humantime_serde")]
    pub(crate) init_timeout: Option<Duration>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum PolicyName {
    Restart,
    StopHost,
    Ignore,
}

/// `restart = { ... }`: each key replaces one of the restart policy's.
#[derive(Deserialize, Default)]
struct RestartKeys {
    #[serde(default, with = "humantime_serde")]
    initial_backoff: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    max_backoff: Option<Duration>,
    multiplier: Option<f64>,
    jitter: Option<f64>,
    max_restarts: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    window: Option<Duration>,
}

impl Settings {
    /// Refuses keys under `steward` that are not Steward's, then reads
    /// `[steward.host]`.
    pub(crate) fn host_keys(&self) -> Result<HostKeys, ConfigError> {
        for key in self.keys("steward") {
            if key != "host" && key != "services" {
                let key = format!("steward.{key}");
                return Err(ConfigError::Setting {
                    origin: origin_of(&self.figment, &key),
                    key,
                    reason: "unknown setting: Steward's settings are steward.host and \
                             steward.services.<name>"
                        .to_string(),
                });
            }
        }
        let section = super::Section {
            figment: self.figment.clone(),
            path: "steward.host".to_string(),
        };
        section.read(&[], &[])
    }

    /// The services named under `steward.services`, each checked to be one
    /// of `registered`.
    pub(crate) fn service_names(
        &self,
        registered: impl Fn(&str) -> bool,
    ) -> Result<Vec<String>, ConfigError> {
        let names: Vec<String> = self.keys("steward.services").into_iter().collect();
        if let Some(unknown) = names.iter().find(|name| !registered(name)) {
            let key = format!("steward.services.{unknown}");
            return Err(ConfigError::Setting {
                origin: origin_of(&self.figment, &key),
                key,
                reason: format!("no service named `{unknown}` is registered"),
            });
        }
        Ok(names)
    }
}

impl super::Section {
    /// The host's keys of this service's table; the service's own keys are
    /// left to its `configure`.
    pub(crate) fn host_keys(&self) -> Result<ServiceKeys, ConfigError> {
        let own = self.own_keys();
        let own: Vec<&str> = own.iter().map(String::as_str).collect();
        self.read(
            &own,
            &[("restart", super::source::fields_of::<RestartKeys>())],
        )
    }
}

impl ServiceKeys {
    /// The policy these keys make of `current` (the code's).
    pub(crate) fn policy(
        &self,
        current: &FailurePolicy,
        section: &super::Section,
    ) -> Result<FailurePolicy, ConfigError> {
        let mut policy = match self.policy {
            None => current.clone(),
            Some(PolicyName::StopHost) => FailurePolicy::StopHost,
            Some(PolicyName::Ignore) => FailurePolicy::Ignore,
            Some(PolicyName::Restart) => match current {
                FailurePolicy::Restart(_) => current.clone(),
                _ => FailurePolicy::Restart(RestartPolicy::default()),
            },
        };
        if let Some(keys) = &self.restart {
            let FailurePolicy::Restart(restart) = &mut policy else {
                return Err(section.refuse(
                    "restart",
                    "restart settings apply only with policy = \"restart\"".to_string(),
                ));
            };
            keys.apply(restart);
        }
        // Validated with the code's policies at build.
        Ok(policy)
    }
}

impl RestartKeys {
    fn apply(&self, policy: &mut RestartPolicy) {
        if let Some(v) = self.initial_backoff {
            policy.initial_backoff = v;
        }
        if let Some(v) = self.max_backoff {
            policy.max_backoff = v;
        }
        if let Some(v) = self.multiplier {
            policy.multiplier = v;
        }
        if let Some(v) = self.jitter {
            policy.jitter = v;
        }
        if let Some(v) = self.max_restarts {
            policy.max_restarts = v;
        }
        if let Some(v) = self.window {
            policy.window = v;
        }
    }
}
