//! The maintenance service: rescues jobs whose worker died (expired lease)
//! and prunes old finished jobs, on one node at a time: each node campaigns
//! for the `maintenance` role in the store (see `leadership.rs`), and only
//! the leader runs the periodic passes. [`Maintenance::run_once`] does one
//! pass whoever leads, so tests (and operators) call it directly instead of
//! sleeping.

use std::sync::Arc;
use std::time::Duration;

mod settings;

use super::leadership::{Campaign, Leadership, default_holder, validate_campaign};
use crate::store::{DEFAULT_HISTORY_RETENTION, RescueReport, Store, StoreError};
use crate::{BoxError, ConfigError, Context, Service};

/// The role maintenance nodes campaign for.
const ROLE: &str = "maintenance";

/// How often maintenance runs and what it keeps.
///
/// ```
/// use std::time::Duration;
/// let c = steward_core::jobs::MaintenanceConfig { max_rescues: 5, ..Default::default() };
/// assert_eq!(c.completed_retention, Duration::from_secs(86_400));
/// ```
#[derive(Debug, Clone)]
pub struct MaintenanceConfig {
    /// How often to look for expired leases.
    pub rescue_every: Duration,
    /// Rescues in a row after which a job is dead (`worker lost N times`).
    pub max_rescues: u32,
    /// How often to prune.
    pub prune_every: Duration,
    /// Completed jobs are kept this long (default 1 day).
    pub completed_retention: Duration,
    /// Dead and cancelled jobs are kept this long (default 14 days).
    pub dead_retention: Duration,
    /// The per-minute history (`Store::history`) is kept this long
    /// (default 7 days).
    pub history_retention: Duration,
    /// How long a leader's lease lasts without renewal, on the store's clock
    /// (default 10 s). A dead leader is replaced within `leader_ttl +
    /// leader_every` (13 s by default) plus one store round trip.
    pub leader_ttl: Duration,
    /// How often a node renews its leadership, or tries to take it when it
    /// is not the leader (default 3 s). Must be shorter than `leader_ttl`.
    pub leader_every: Duration,
    /// This node's name in the store's leaders table; unique per node
    /// (default `$HOSTNAME/<pid>/<random>`).
    pub holder: String,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            rescue_every: Duration::from_secs(5),
            max_rescues: 3,
            prune_every: Duration::from_secs(60),
            completed_retention: Duration::from_secs(24 * 3600),
            dead_retention: Duration::from_secs(14 * 24 * 3600),
            history_retention: DEFAULT_HISTORY_RETENTION,
            leader_ttl: Duration::from_secs(10),
            leader_every: Duration::from_secs(3),
            holder: default_holder(),
        }
    }
}

impl MaintenanceConfig {
    /// Refuses settings under which maintenance cannot work: caught when
    /// the service is configured, not when its first pass runs.
    fn validate(&self) -> Result<(), ConfigError> {
        for (what, period) in [
            ("maintenance's rescue_every", self.rescue_every),
            ("maintenance's prune_every", self.prune_every),
        ] {
            if period.is_zero() {
                return Err(ConfigError::ZeroPeriod {
                    what: what.to_string(),
                });
            }
        }
        if self.history_retention.is_zero() {
            return Err(ConfigError::Invalid {
                what: "maintenance",
                reason: "history_retention is 0: the history would be deleted as soon as it is \
                    written; keep it at least a minute"
                    .to_string(),
            });
        }
        if self.max_rescues == 0 {
            return Err(ConfigError::Invalid {
                what: "maintenance",
                reason: "max_rescues is 0: every job whose worker is lost would be dead at \
                    once; allow at least 1 rescue"
                    .to_string(),
            });
        }
        validate_campaign(
            "maintenance",
            &self.holder,
            self.leader_every,
            self.leader_ttl,
        )?;
        Ok(())
    }
}

/// What one maintenance pass did.
///
/// ```
/// let p = steward_core::jobs::Pass::default();
/// assert_eq!(p.pruned, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    /// Rescued and dead-after-rescue counts.
    pub rescue: RescueReport,
    /// Jobs deleted by retention.
    pub pruned: u64,
    /// History rows (minutes of a queue and kind) deleted by retention.
    pub history_pruned: u64,
}

/// Rescues expired leases and prunes old jobs, as a host service. Run one
/// on every node: they elect one leader through the store, and only the
/// leader runs the periodic passes; on a clean stop it resigns.
///
/// ```
/// # fn demo<S: steward_core::store::Store>(store: std::sync::Arc<S>) -> Result<(), steward_core::ConfigError> {
/// let mut host = steward_core::Host::builder();
/// host.service("maintenance", steward_core::jobs::Maintenance::new(store))?;
/// # Ok(()) }
/// ```
pub struct Maintenance<S> {
    store: Arc<S>,
    config: MaintenanceConfig,
    campaign: Campaign,
    /// What is wrong with the last configuration given, reported at
    /// `build` (and by `run`, for one started without a host's checks).
    problem: Option<ConfigError>,
}

impl<S: Store> Maintenance<S> {
    /// Maintenance over `store` with the default configuration.
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(store: std::sync::Arc<S>) {
    /// let m = steward_core::jobs::Maintenance::new(store);
    /// # }
    /// ```
    pub fn new(store: Arc<S>) -> Self {
        let config = MaintenanceConfig::default();
        let campaign = Campaign::new(Leadership::new(ROLE, config.holder.clone()));
        Maintenance {
            store,
            config,
            campaign,
            problem: None,
        }
    }

    /// Replaces the configuration. A zero period, zero `max_rescues`, an
    /// empty holder, or a `leader_every` not shorter than `leader_ttl` is a
    /// mistake reported by [`HostBuilder::build`](crate::HostBuilder::build).
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(m: steward_core::jobs::Maintenance<S>) {
    /// use std::time::Duration;
    /// let m = m.config(steward_core::jobs::MaintenanceConfig {
    ///     leader_every: Duration::from_secs(30),
    ///     ..Default::default()
    /// });
    /// assert_eq!(steward_core::Service::check(&m).len(), 1); // longer than leader_ttl
    /// # }
    /// ```
    pub fn config(mut self, config: MaintenanceConfig) -> Self {
        self.set_config(config);
        self
    }

    /// Replaces the configuration; its mistake, if any, replaces the last
    /// one's (the whole configuration is new).
    fn set_config(&mut self, config: MaintenanceConfig) {
        self.problem = config.validate().err();
        self.campaign.view().set_holder(config.holder.clone());
        self.config = config;
    }

    /// This node's leadership, as it campaigns: whether it leads, under
    /// which name, how many passes it ran. Take it before handing the
    /// service to the host.
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(m: steward_core::jobs::Maintenance<S>) {
    /// let leadership = m.leadership();
    /// assert!(!leadership.is_leader()); // not before it campaigned
    /// # }
    /// ```
    pub fn leadership(&self) -> Leadership {
        self.campaign.view().clone()
    }

    /// Rescues expired leases now.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(m: steward_core::jobs::Maintenance<S>) {
    /// let report = m.rescue_once().await;
    /// # }
    /// ```
    pub async fn rescue_once(&self) -> Result<RescueReport, StoreError> {
        let report = self.store.rescue_expired(self.config.max_rescues).await?;
        if report.rescued > 0 {
            tracing::warn!(
                rescued = report.rescued,
                "rescued jobs whose worker was lost (lease expired)"
            );
        }
        if report.dead > 0 {
            tracing::error!(
                dead = report.dead,
                max_rescues = self.config.max_rescues,
                "jobs lost their worker too many times in a row: now dead"
            );
        }
        Ok(report)
    }

    /// Prunes by retention now.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(m: steward_core::jobs::Maintenance<S>) {
    /// let deleted = m.prune_once().await;
    /// # }
    /// ```
    pub async fn prune_once(&self) -> Result<u64, StoreError> {
        // Ages, not cutoffs: the store measures them on its own clock, so a
        // maintenance node with a fast clock cannot prune jobs early.
        let pruned = self
            .store
            .prune(self.config.completed_retention, self.config.dead_retention)
            .await?;
        if pruned > 0 {
            tracing::info!(pruned, "pruned finished jobs past their retention");
        }
        Ok(pruned)
    }

    /// Prunes the per-minute history past its retention now.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(m: steward_core::jobs::Maintenance<S>) {
    /// let deleted = m.prune_history_once().await;
    /// # }
    /// ```
    pub async fn prune_history_once(&self) -> Result<u64, StoreError> {
        let pruned = self
            .store
            .prune_history(self.config.history_retention)
            .await?;
        if pruned > 0 {
            tracing::info!(rows = pruned, "pruned job history past its retention");
        }
        Ok(pruned)
    }

    /// One full pass: rescue, then prune, whether or not this node leads
    /// (an explicit call is the caller's decision; both are safe to run
    /// on several nodes at once, leadership only avoids doing it twice).
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(m: steward_core::jobs::Maintenance<S>) {
    /// let pass = m.run_once().await;
    /// # }
    /// ```
    pub async fn run_once(&self) -> Result<Pass, StoreError> {
        Ok(Pass {
            rescue: self.rescue_once().await?,
            pruned: self.prune_once().await?,
            history_pruned: self.prune_history_once().await?,
        })
    }
}

impl<S: Store> Service for Maintenance<S> {
    fn check(&self) -> Vec<ConfigError> {
        self.problem.iter().cloned().collect()
    }

    fn configure(&mut self, section: &crate::Section) -> Result<(), ConfigError> {
        self.apply_settings(section)
    }

    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        if let Some(problem) = &self.problem {
            return Err(problem.clone().into());
        }
        let mut campaign = ctx.every(self.config.leader_every)?;
        let mut rescue = ctx.every(self.config.rescue_every)?;
        let mut prune = ctx.every(self.config.prune_every)?;
        loop {
            // Biased: the campaign goes first when ticks coincide (at start,
            // after a pause), so a node never runs a pass on a stale belief
            // that it leads. A failed pass is logged and tried again next
            // tick: a locked database must not stop maintenance for good.
            tokio::select! {
                biased;
                tick = campaign.tick() => {
                    if tick.is_none() { break; }
                    self.campaign.step(&*self.store, self.config.leader_ttl).await;
                }
                tick = rescue.tick() => {
                    if tick.is_none() { break; }
                    if self.campaign.leads() {
                        self.campaign.view().count_pass();
                        if let Err(err) = self.rescue_once().await {
                            tracing::error!(error = %err, "rescue pass failed");
                        }
                    }
                }
                tick = prune.tick() => {
                    if tick.is_none() { break; }
                    if self.campaign.leads() {
                        self.campaign.view().count_pass();
                        if let Err(err) = self.prune_once().await {
                            tracing::error!(error = %err, "prune pass failed");
                        }
                        if let Err(err) = self.prune_history_once().await {
                            tracing::error!(error = %err, "history prune pass failed");
                        }
                    }
                }
            }
        }
        self.campaign.resign(&*self.store).await;
        Ok(())
    }
}
