//! The scheduler service: declares the code's schedules at start-up, then
//! on the leading node enqueues every tick as it comes due.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::plan::plan;
use crate::jobs::leadership::{Campaign, Leadership, default_holder, validate_campaign};
use crate::jobs::{Job, new_job};
use crate::store::StoreError;
use crate::store::{NewJob, ScheduleDef, ScheduleFire, ScheduleOrigin, ScheduleRecord, Store};
use crate::{BoxError, ConfigError, Context, Service};

/// The role schedulers campaign for.
const ROLE: &str = "scheduler";

/// Schedules looked at per store call.
const DUE_BATCH: u32 = 100;

/// How the scheduler runs.
///
/// ```
/// let c = steward_core::jobs::SchedulerConfig::default();
/// assert_eq!(c.grace, std::time::Duration::from_secs(60));
/// ```
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// A tick later than this is *missed* and handled by its schedule's
    /// misfire policy; one within it always runs (default 60 s). Longer
    /// than a leader's takeover (`leader_ttl + leader_every`), so a leader
    /// that dies loses no tick to the policy.
    pub grace: Duration,
    /// The longest the leader waits before it looks at the store again
    /// (default 1 s): how late it sees a schedule added or changed by
    /// another node. It wakes earlier for a tick it knows of.
    pub poll: Duration,
    /// How long a leader's lease lasts without renewal (default 10 s).
    pub leader_ttl: Duration,
    /// How often a node renews or tries to take the leadership (default
    /// 3 s); shorter than `leader_ttl`.
    pub leader_every: Duration,
    /// This node's name in the store's leaders table (default
    /// `$HOSTNAME/<pid>/<random>`).
    pub holder: String,
    /// At start-up, delete the schedules declared in code by an earlier
    /// release but not by this one (default `false`: an application that
    /// shares its store with another must not delete the other's).
    /// Schedules made by operators are never deleted.
    pub remove_undeclared: bool,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            grace: Duration::from_secs(60),
            poll: Duration::from_secs(1),
            leader_ttl: Duration::from_secs(10),
            leader_every: Duration::from_secs(3),
            holder: default_holder(),
            remove_undeclared: false,
        }
    }
}

impl SchedulerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.poll.is_zero() {
            return Err(ConfigError::ZeroPeriod {
                what: "scheduler's poll".to_string(),
            });
        }
        validate_campaign(
            "scheduler",
            &self.holder,
            self.leader_every,
            self.leader_ttl,
        )?;
        Ok(())
    }
}

/// What one scheduler step did.
///
/// ```
/// let s = steward_core::jobs::Step::default();
/// assert_eq!(s.fired, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Step {
    /// Ticks enqueued.
    pub fired: u64,
    /// Schedules looked at.
    pub looked_at: usize,
    /// When the earliest tick owed later comes due, on the store's clock.
    pub next_due: Option<DateTime<Utc>>,
    /// The store's now the step judged by.
    pub now: Option<DateTime<Utc>>,
    /// The store had more due schedules than one call returns: step again.
    pub more: bool,
}

/// Enqueues the ticks of recurring schedules, as a host service. Run one on
/// every node (the built-in `steward worker` does): they elect a leader
/// through the store and only the leader enqueues; the store makes sure a
/// tick is enqueued once even if two nodes believe they lead.
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct Report { full: bool }
/// # impl steward_core::jobs::Job for Report {
/// #     const KIND: &'static str = "report";
/// #     async fn run(self, _ctx: steward_core::jobs::JobContext) -> Result<(), steward_core::BoxError> { Ok(()) }
/// # }
/// # fn demo<S: steward_core::store::Store>(store: std::sync::Arc<S>) -> Result<(), steward_core::ConfigError> {
/// use steward_core::jobs::Scheduler;
/// use steward_core::store::ScheduleDef;
/// let scheduler = Scheduler::new(store)
///     .job(ScheduleDef::at("nightly-report", "0 3 * * *").zone("Europe/Berlin"), &Report { full: true });
/// let mut host = steward_core::Host::builder();
/// host.service("scheduler", scheduler)?;
/// # Ok(()) }
/// ```
pub struct Scheduler<S> {
    store: Arc<S>,
    config: SchedulerConfig,
    declared: Vec<ScheduleDef>,
    known_kinds: Option<BTreeSet<String>>,
    campaign: Campaign,
    problems: Vec<ConfigError>,
    fired: Arc<AtomicU64>,
    /// Stored schedules this node cannot read, already logged (id and
    /// version), so a bad one is reported once, not at every step.
    unreadable: HashSet<(String, DateTime<Utc>)>,
}

impl<S: Store> Scheduler<S> {
    /// A scheduler over `store`, declaring no schedule of its own.
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(store: std::sync::Arc<S>) {
    /// let scheduler = steward_core::jobs::Scheduler::new(store);
    /// # }
    /// ```
    pub fn new(store: Arc<S>) -> Self {
        let config = SchedulerConfig::default();
        let campaign = Campaign::new(Leadership::new(ROLE, config.holder.clone()));
        Scheduler {
            store,
            config,
            declared: Vec::new(),
            known_kinds: None,
            campaign,
            problems: Vec::new(),
            fired: Arc::default(),
            unreadable: HashSet::new(),
        }
    }

    /// Declares a schedule, saved (created or updated) when the service
    /// starts. A bad expression, zone or misfire limit, a kind not among
    /// [`known_kinds`](Self::known_kinds), or an id declared twice is a
    /// mistake reported by [`HostBuilder::build`](crate::HostBuilder::build).
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(s: steward_core::jobs::Scheduler<S>) {
    /// use steward_core::store::ScheduleDef;
    /// let s = s.schedule(ScheduleDef::new("hourly-sync", "@hourly", "sync"));
    /// let s = s.schedule(ScheduleDef::new("bad", "61 * * * *", "sync"));
    /// assert_eq!(steward_core::Service::check(&s).len(), 1);
    /// # }
    /// ```
    pub fn schedule(mut self, mut def: ScheduleDef) -> Self {
        def.origin = ScheduleOrigin::Code;
        if let Err(err) = def.validate() {
            self.problem(err.to_string());
        } else if self.declared.iter().any(|d| d.id == def.id) {
            self.problem(format!("schedule `{}` is declared twice", def.id));
        } else {
            self.declared.push(def);
        }
        self
    }

    /// Declares a schedule whose ticks run `job`: its kind, payload and
    /// payload version ([`Job::VERSION`]) come from `job`, and so do its queue, priority and attempts where `def`
    /// leaves them at their defaults.
    ///
    /// ```
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Serialize, Deserialize)] struct Sync;
    /// # impl steward_core::jobs::Job for Sync {
    /// #     const KIND: &'static str = "sync";
    /// #     async fn run(self, _ctx: steward_core::jobs::JobContext) -> Result<(), steward_core::BoxError> { Ok(()) }
    /// # }
    /// # fn demo<S: steward_core::store::Store>(s: steward_core::jobs::Scheduler<S>) {
    /// use steward_core::store::ScheduleDef;
    /// let s = s.job(ScheduleDef::at("sync", "*/10 * * * *"), &Sync);
    /// assert!(steward_core::Service::check(&s).is_empty());
    /// # }
    /// ```
    pub fn job<J: Job>(mut self, def: ScheduleDef, job: &J) -> Self {
        let made = match new_job(job, &crate::jobs::EnqueueOptions::default()) {
            Ok(made) => made,
            Err(err) => {
                self.problem(format!("schedule `{}`: {err}", def.id));
                return self;
            }
        };
        if !def.kind.is_empty() && def.kind != J::KIND {
            self.problem(format!(
                "schedule `{}` names kind `{}` but runs a `{}` job",
                def.id,
                def.kind,
                J::KIND
            ));
            return self;
        }
        let defaults = ScheduleDef::at("", "");
        let def = ScheduleDef {
            kind: made.kind,
            payload: made.payload,
            // The typed job's shape decides, never the definition: a payload
            // of `J` is `J::VERSION` whatever `def` said.
            payload_version: made.payload_version,
            queue: if def.queue == defaults.queue {
                made.queue
            } else {
                def.queue
            },
            priority: if def.priority == defaults.priority {
                made.priority
            } else {
                def.priority
            },
            max_attempts: if def.max_attempts == defaults.max_attempts {
                made.max_attempts
            } else {
                def.max_attempts
            },
            ..def
        };
        self.schedule(def)
    }

    /// The job kinds schedules may name: a declared schedule of another
    /// kind is a mistake (its jobs would wait for a worker that never
    /// comes). Give the kinds your workers register.
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(s: steward_core::jobs::Scheduler<S>) {
    /// use steward_core::store::ScheduleDef;
    /// let s = s.known_kinds(["sync"]).schedule(ScheduleDef::new("x", "@daily", "synk"));
    /// assert!(steward_core::Service::check(&s)[0].to_string().contains("synk"));
    /// # }
    /// ```
    pub fn known_kinds<I: IntoIterator<Item = K>, K: Into<String>>(mut self, kinds: I) -> Self {
        self.known_kinds = Some(kinds.into_iter().map(Into::into).collect());
        self
    }

    /// Replaces the configuration; mistakes in it are reported by
    /// [`HostBuilder::build`](crate::HostBuilder::build).
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(s: steward_core::jobs::Scheduler<S>) {
    /// let s = s.config(steward_core::jobs::SchedulerConfig { remove_undeclared: true, ..Default::default() });
    /// # }
    /// ```
    pub fn config(mut self, config: SchedulerConfig) -> Self {
        if let Err(err) = config.validate() {
            self.problems.push(err);
        }
        self.campaign.view().set_holder(config.holder.clone());
        self.config = config;
        self
    }

    /// This node's leadership of the `scheduler` role.
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(s: steward_core::jobs::Scheduler<S>) {
    /// assert_eq!(s.leadership().role(), "scheduler");
    /// # }
    /// ```
    pub fn leadership(&self) -> Leadership {
        self.campaign.view().clone()
    }

    /// How many ticks this node has enqueued, shared: read it after the
    /// scheduler was handed to the host.
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(s: steward_core::jobs::Scheduler<S>) {
    /// let fired = s.fired();
    /// assert_eq!(fired.load(std::sync::atomic::Ordering::Relaxed), 0);
    /// # }
    /// ```
    pub fn fired(&self) -> Arc<AtomicU64> {
        self.fired.clone()
    }

    fn problem(&mut self, reason: String) {
        self.problems.push(ConfigError::Invalid {
            what: "schedule",
            reason,
        });
    }

    /// Saves the declared schedules (and removes undeclared ones if so
    /// configured). Done by the service when it starts.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(s: steward_core::jobs::Scheduler<S>) -> Result<(), steward_core::store::StoreError> {
    /// s.declare().await?;
    /// # Ok(()) }
    /// ```
    pub async fn declare(&self) -> Result<(), StoreError> {
        if self.declared.is_empty() && !self.config.remove_undeclared {
            return Ok(());
        }
        let report = self
            .store
            .save_schedules(self.declared.clone(), self.config.remove_undeclared)
            .await?;
        for (def, saved) in self.declared.iter().zip(&report.saved) {
            tracing::info!(schedule = %def.id, cron = %def.cron, zone = %def.zone, ?saved, "schedule declared");
        }
        for id in &report.removed {
            tracing::warn!(schedule = %id, "schedule no longer declared: removed");
        }
        Ok(())
    }

    /// One step whoever leads: enqueues the ticks due now of up to 100
    /// schedules (arming new ones). Safe on several nodes at once.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(mut s: steward_core::jobs::Scheduler<S>) -> Result<(), steward_core::store::StoreError> {
    /// let step = s.step_once().await?;
    /// println!("{} ticks enqueued", step.fired);
    /// # Ok(()) }
    /// ```
    pub async fn step_once(&mut self) -> Result<Step, StoreError> {
        let due = self.store.due_schedules(DUE_BATCH).await?;
        let mut step = Step {
            looked_at: due.due.len(),
            next_due: due.next_due,
            now: Some(due.now),
            more: due.due.len() >= DUE_BATCH as usize,
            fired: 0,
        };
        for record in due.due {
            step.fired += self.fire(record, due.now).await?;
        }
        self.fired.fetch_add(step.fired, Ordering::Relaxed);
        Ok(step)
    }

    /// Enqueues one schedule's due ticks; how many were enqueued.
    async fn fire(
        &mut self,
        record: ScheduleRecord,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let def = &record.def;
        let cron = match def.validate() {
            Ok(cron) => cron,
            Err(err) => {
                if self.unreadable.insert((def.id.clone(), record.updated_at)) {
                    tracing::error!(schedule = %def.id, error = %err, "cannot read this stored schedule: it does not fire until it is fixed");
                }
                return Ok(0);
            }
        };
        let plan = plan(&cron, def.misfire, record.next_at, now, self.config.grace);
        if let Some((from, until)) = plan.dropped {
            tracing::warn!(schedule = %def.id, misfire = %def.misfire, %from, %until,
                "missed ticks dropped by the misfire policy (no scheduler ran at their time)");
        }
        let jobs = plan
            .ticks
            .iter()
            .map(|&tick| NewJob {
                queue: def.queue.clone(),
                priority: def.priority,
                max_attempts: def.max_attempts,
                run_at: Some(tick),
                payload_version: def.payload_version,
                ..NewJob::new(def.kind.clone(), def.payload.clone())
            })
            .collect();
        let fire = ScheduleFire {
            id: def.id.clone(),
            expected: record.next_at,
            jobs,
            next_at: plan.next_at,
        };
        match self.store.fire_schedule(fire).await? {
            None => {
                tracing::debug!(schedule = %def.id, "another scheduler took this step first");
                Ok(0)
            }
            Some(fired) => {
                for t in &fired {
                    tracing::info!(schedule = %def.id, tick = %t.tick, job = %t.job, kind = %def.kind, "schedule fired");
                }
                Ok(fired.len() as u64)
            }
        }
    }

    /// When to look again after `step`.
    fn next_look(&self, step: &Step) -> Instant {
        let poll = Instant::now() + self.config.poll;
        if step.more {
            return Instant::now();
        }
        let until_due = match (step.next_due, step.now) {
            (Some(due), Some(now)) => (due - now).to_std().unwrap_or(Duration::ZERO),
            _ => return poll,
        };
        poll.min(Instant::now() + until_due)
    }
}

impl<S: Store> Service for Scheduler<S> {
    fn check(&self) -> Vec<ConfigError> {
        let mut problems = self.problems.clone();
        if let Some(known) = &self.known_kinds {
            for def in self.declared.iter().filter(|d| !known.contains(&d.kind)) {
                problems.push(ConfigError::Invalid {
                    what: "schedule",
                    reason: format!(
                        "schedule `{}` enqueues kind `{}`, which no worker registers (known: {})",
                        def.id,
                        def.kind,
                        known.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
        problems
    }

    async fn init(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let problems = Service::check(self);
        if !problems.is_empty() {
            return Err(ConfigError::Service {
                name: ctx.name().to_string(),
                problems,
            }
            .into());
        }
        self.declare().await?;
        Ok(())
    }

    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let mut campaign = ctx.every(self.config.leader_every)?;
        let mut look = Instant::now();
        loop {
            // Biased: the campaign goes first when both are ready, so a node
            // never steps on a stale belief that it leads.
            tokio::select! {
                biased;
                () = ctx.cancelled() => break,
                tick = campaign.tick() => {
                    if tick.is_none() { break; }
                    let was = self.campaign.leads();
                    self.campaign.step(&*self.store, self.config.leader_ttl).await;
                    if !was && self.campaign.leads() {
                        look = Instant::now();
                    }
                }
                () = tokio::time::sleep_until(look) => {
                    look = Instant::now() + self.config.poll;
                    if !self.campaign.leads() {
                        continue;
                    }
                    self.campaign.view().count_pass();
                    match self.step_once().await {
                        Ok(step) => look = self.next_look(&step),
                        // Logged and tried again: a locked database must
                        // not stop the schedules for good.
                        Err(err) => tracing::error!(error = %err, "scheduler step failed"),
                    }
                }
            }
        }
        self.campaign.resign(&*self.store).await;
        Ok(())
    }
}
