//! The maintenance service: rescues jobs whose worker died (expired lease)
//! and prunes old finished jobs. [`Maintenance::run_once`] does one pass, so
//! tests call it directly instead of sleeping.

use std::sync::Arc;
use std::time::Duration;

use crate::store::{RescueReport, Store, StoreError};
use crate::{BoxError, Context, Service};

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
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            rescue_every: Duration::from_secs(5),
            max_rescues: 3,
            prune_every: Duration::from_secs(60),
            completed_retention: Duration::from_secs(24 * 3600),
            dead_retention: Duration::from_secs(14 * 24 * 3600),
        }
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
}

/// Rescues expired leases and prunes old jobs, as a host service.
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
        Maintenance {
            store,
            config: MaintenanceConfig::default(),
        }
    }

    /// Replaces the configuration.
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(m: steward_core::jobs::Maintenance<S>) {
    /// let m = m.config(steward_core::jobs::MaintenanceConfig::default());
    /// # }
    /// ```
    pub fn config(mut self, config: MaintenanceConfig) -> Self {
        self.config = config;
        self
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

    /// One full pass: rescue, then prune.
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
        })
    }
}

impl<S: Store> Service for Maintenance<S> {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let mut rescue = ctx.every(self.config.rescue_every)?;
        let mut prune = ctx.every(self.config.prune_every)?;
        loop {
            // A failed pass is logged and tried again next tick: a locked
            // database must not stop maintenance for good.
            tokio::select! {
                tick = rescue.tick() => {
                    if tick.is_none() { return Ok(()); }
                    if let Err(err) = self.rescue_once().await {
                        tracing::error!(error = %err, "rescue pass failed");
                    }
                }
                tick = prune.tick() => {
                    if tick.is_none() { return Ok(()); }
                    if let Err(err) = self.prune_once().await {
                        tracing::error!(error = %err, "prune pass failed");
                    }
                }
            }
        }
    }
}
