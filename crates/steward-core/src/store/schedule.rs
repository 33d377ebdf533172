//! Recurring schedules as the store keeps them: a definition, whether it is
//! paused, and the next tick it owes.
//!
//! The store never reads a cron expression. The engine (the scheduler, see
//! `jobs/schedules`) computes fire times and hands the store a
//! [`ScheduleFire`]: the ticks to enqueue and the next tick owed. The store
//! applies it in one transaction, fenced twice, so that two schedulers that
//! both believe they lead cannot double a tick:
//!
//! - the fire applies only if the schedule still owes the tick the caller
//!   read (`next_at` unchanged: a compare-and-set), so a scheduler working
//!   from a stale read writes nothing;
//! - every tick is recorded under a unique key (schedule id, tick time), and
//!   a tick already recorded enqueues nothing.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{JobId, StoreError};
use crate::jobs::Cron;

/// Longest schedule id a store accepts, in bytes.
pub const MAX_SCHEDULE_ID: usize = 200;

/// The largest misfire limit: `all` runs at most this many missed ticks
/// (a per-second schedule's day is 86,400).
pub const MAX_MISFIRE_LIMIT: u32 = 100_000;

/// The misfire limit `all` gets when none is given.
pub const DEFAULT_MISFIRE_LIMIT: u32 = 100;

/// What a schedule does with ticks missed while no scheduler ran (every node
/// down, a deploy, a pause of the leader longer than the grace period).
///
/// A tick is *missed* once it is older than the scheduler's grace period;
/// ticks within it are on time and always run, each once.
///
/// ```
/// use steward_core::store::Misfire;
/// assert_eq!("all:10".parse::<Misfire>()?, Misfire::All { limit: 10 });
/// assert_eq!(Misfire::Once.to_string(), "once");
/// assert!("all:0".parse::<Misfire>().is_err());
/// # Ok::<(), steward_core::store::StoreError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case", tag = "policy")]
pub enum Misfire {
    /// Missed ticks are dropped (logged); the schedule goes on from now.
    Skip,
    /// Missed ticks, however many, run once (as the latest of them): a
    /// cache refresh, a report of "now". Hangfire's default.
    #[default]
    Once,
    /// Each missed tick runs, the latest `limit` of them (older ones are
    /// dropped and logged): a report per hour that must not have holes.
    All {
        /// At most this many missed ticks run (at least 1).
        limit: u32,
    },
}

impl Misfire {
    /// The stored policy name: `skip`, `once` or `all`.
    ///
    /// ```
    /// assert_eq!(steward_core::store::Misfire::All { limit: 3 }.name(), "all");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Misfire::Skip => "skip",
            Misfire::Once => "once",
            Misfire::All { .. } => "all",
        }
    }

    /// The stored limit: the `all` limit, 0 for the others.
    ///
    /// ```
    /// assert_eq!(steward_core::store::Misfire::Skip.limit(), 0);
    /// ```
    pub fn limit(self) -> u32 {
        match self {
            Misfire::All { limit } => limit,
            Misfire::Skip | Misfire::Once => 0,
        }
    }

    /// Rebuilds a policy from its stored name and limit.
    ///
    /// ```
    /// use steward_core::store::Misfire;
    /// assert_eq!(Misfire::from_stored("all", 5)?, Misfire::All { limit: 5 });
    /// # Ok::<(), steward_core::store::StoreError>(())
    /// ```
    pub fn from_stored(name: &str, limit: i64) -> Result<Misfire, StoreError> {
        let limit = u32::try_from(limit).map_err(|_| StoreError::Invalid {
            message: format!("misfire limit {limit} is out of range"),
        })?;
        match name {
            "skip" => Ok(Misfire::Skip),
            "once" => Ok(Misfire::Once),
            "all" if limit > MAX_MISFIRE_LIMIT => Err(StoreError::Invalid {
                message: format!("misfire limit {limit} is above the largest, {MAX_MISFIRE_LIMIT}"),
            }),
            "all" if limit > 0 => Ok(Misfire::All { limit }),
            "all" => Err(StoreError::Invalid {
                message: "misfire limit 0: `all` runs at least one missed tick (use `skip` to \
                          run none)"
                    .into(),
            }),
            other => Err(StoreError::Invalid {
                message: format!("unknown misfire policy `{other}`: expected skip, once or all"),
            }),
        }
    }
}

impl fmt::Display for Misfire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misfire::All { limit } => write!(f, "all:{limit}"),
            other => f.write_str(other.name()),
        }
    }
}

impl FromStr for Misfire {
    type Err = StoreError;

    /// `skip`, `once`, `all` (limit [`DEFAULT_MISFIRE_LIMIT`]) or `all:N`.
    fn from_str(s: &str) -> Result<Misfire, StoreError> {
        match s.split_once(':') {
            Some(("all", n)) => {
                let limit = n.trim().parse::<i64>().map_err(|_| StoreError::Invalid {
                    message: format!("misfire `{s}`: the limit after `all:` must be a number"),
                })?;
                Misfire::from_stored("all", limit)
            }
            Some(_) => Misfire::from_stored(s, 0),
            None if s == "all" => Ok(Misfire::All {
                limit: DEFAULT_MISFIRE_LIMIT,
            }),
            None => Misfire::from_stored(s, 0),
        }
    }
}

/// Where a schedule was defined: declared by the application's code at
/// start-up, or made by an operator (CLI, API). Removing schedules the code
/// no longer declares touches only the first kind.
///
/// ```
/// assert_eq!(steward_core::store::ScheduleOrigin::Code.as_str(), "code");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleOrigin {
    /// Declared in code; upserted at every start.
    Code,
    /// Made at run time by an operator.
    Operator,
}

impl ScheduleOrigin {
    /// The stored name.
    ///
    /// ```
    /// assert_eq!(steward_core::store::ScheduleOrigin::Operator.as_str(), "operator");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleOrigin::Code => "code",
            ScheduleOrigin::Operator => "operator",
        }
    }

    /// Reads a stored name back.
    ///
    /// ```
    /// use steward_core::store::ScheduleOrigin;
    /// assert_eq!(ScheduleOrigin::parse("code")?, ScheduleOrigin::Code);
    /// # Ok::<(), steward_core::store::StoreError>(())
    /// ```
    pub fn parse(s: &str) -> Result<ScheduleOrigin, StoreError> {
        match s {
            "code" => Ok(ScheduleOrigin::Code),
            "operator" => Ok(ScheduleOrigin::Operator),
            other => Err(StoreError::Invalid {
                message: format!("unknown schedule origin `{other}`"),
            }),
        }
    }
}

/// A schedule's definition: what to enqueue, when.
///
/// ```
/// use steward_core::store::ScheduleDef;
/// let def = ScheduleDef::new("nightly-report", "0 3 * * *", "report")
///     .zone("Europe/Berlin")
///     .payload(r#"{"full":true}"#);
/// assert!(def.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleDef {
    /// Unique name of the schedule (1 to [`MAX_SCHEDULE_ID`] bytes, no
    /// control characters).
    pub id: String,
    /// The cron expression (see [`Cron`]).
    pub cron: String,
    /// The IANA time zone the expression is read in (default `UTC`).
    pub zone: String,
    /// The job kind each tick enqueues.
    pub kind: String,
    /// The job's payload, JSON text (default `null`).
    pub payload: String,
    /// The version of the payload's shape (the kind's
    /// [`Job::VERSION`](crate::jobs::Job::VERSION), default 1): each tick's
    /// job carries it, so a worker upgrades a payload saved by an older
    /// release. A change of version alone is an update ([`Saved::Updated`]).
    pub payload_version: u32,
    /// The job's queue (default `default`).
    pub queue: String,
    /// The job's priority (lower first, default 0).
    pub priority: i16,
    /// The job's attempts (default 25).
    pub max_attempts: u32,
    /// What to do with missed ticks (default [`Misfire::Once`]).
    pub misfire: Misfire,
    /// Who made it (default [`ScheduleOrigin::Code`]).
    pub origin: ScheduleOrigin,
}

impl ScheduleDef {
    /// A schedule `id` firing `kind` at `cron` (UTC), with defaults.
    ///
    /// ```
    /// let def = steward_core::store::ScheduleDef::new("tick", "@hourly", "noop");
    /// assert_eq!(def.zone, "UTC");
    /// ```
    pub fn new(id: impl Into<String>, cron: impl Into<String>, kind: impl Into<String>) -> Self {
        ScheduleDef {
            id: id.into(),
            cron: cron.into(),
            zone: "UTC".to_string(),
            kind: kind.into(),
            payload: "null".to_string(),
            payload_version: 1,
            queue: "default".to_string(),
            priority: 0,
            max_attempts: 25,
            misfire: Misfire::default(),
            origin: ScheduleOrigin::Code,
        }
    }

    /// Reads the expression in `zone` (an IANA name).
    ///
    /// ```
    /// let def = steward_core::store::ScheduleDef::new("t", "@daily", "noop").zone("Asia/Tokyo");
    /// ```
    pub fn zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = zone.into();
        self
    }

    /// The payload each tick's job gets (JSON text).
    ///
    /// ```
    /// let def = steward_core::store::ScheduleDef::new("t", "@daily", "noop").payload("{}");
    /// ```
    pub fn payload(mut self, payload: impl Into<String>) -> Self {
        self.payload = payload.into();
        self
    }

    /// The version of [`payload`](Self::payload)'s shape.
    ///
    /// ```
    /// let def = steward_core::store::ScheduleDef::new("t", "@daily", "report")
    ///     .payload(r#"{"title":"daily"}"#)
    ///     .payload_version(2);
    /// assert_eq!(def.payload_version, 2);
    /// ```
    pub fn payload_version(mut self, version: u32) -> Self {
        self.payload_version = version;
        self
    }

    /// The queue each tick's job goes to.
    ///
    /// ```
    /// let def = steward_core::store::ScheduleDef::new("t", "@daily", "noop").queue("reports");
    /// ```
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// The priority of each tick's job (lower runs first).
    ///
    /// ```
    /// let def = steward_core::store::ScheduleDef::new("t", "@daily", "noop").priority(-5);
    /// ```
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }

    /// The attempts each tick's job has.
    ///
    /// ```
    /// let def = steward_core::store::ScheduleDef::new("t", "@daily", "noop").max_attempts(3);
    /// ```
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// What to do with missed ticks.
    ///
    /// ```
    /// use steward_core::store::{Misfire, ScheduleDef};
    /// let def = ScheduleDef::new("t", "@daily", "noop").misfire(Misfire::Skip);
    /// ```
    pub fn misfire(mut self, misfire: Misfire) -> Self {
        self.misfire = misfire;
        self
    }

    /// The parsed expression, or why the definition is refused: a bad id,
    /// expression or zone, an empty kind, a payload that is not JSON, a
    /// misfire limit of 0.
    ///
    /// ```
    /// let def = steward_core::store::ScheduleDef::new("t", "61 * * * *", "noop");
    /// assert!(def.validate().unwrap_err().to_string().contains("61 * * * *"));
    /// ```
    pub fn validate(&self) -> Result<Cron, StoreError> {
        let invalid = |message: String| StoreError::Invalid {
            message: format!("schedule `{}`: {message}", self.id),
        };
        validate_schedule_id(&self.id)?;
        if self.kind.trim().is_empty() {
            return Err(invalid("the job kind is empty".into()));
        }
        if self.queue.trim().is_empty() {
            return Err(invalid("the queue is empty".into()));
        }
        if self.max_attempts == 0 {
            return Err(invalid("max_attempts must be at least 1".into()));
        }
        if self.payload_version == 0 || i32::try_from(self.payload_version).is_err() {
            return Err(invalid(format!(
                "payload_version {} is out of range (1 to {})",
                self.payload_version,
                i32::MAX
            )));
        }
        if let Err(StoreError::Invalid { message }) =
            Misfire::from_stored(self.misfire.name(), i64::from(self.misfire.limit()))
        {
            return Err(invalid(message));
        }
        if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(&self.payload) {
            return Err(invalid(format!("the payload is not JSON: {err}")));
        }
        Cron::parse(&self.cron, &self.zone).map_err(|err| invalid(err.to_string()))
    }
}

/// Refuses an empty, overlong or control-character schedule id.
///
/// ```
/// assert!(steward_core::store::validate_schedule_id("nightly").is_ok());
/// assert!(steward_core::store::validate_schedule_id("").is_err());
/// ```
pub fn validate_schedule_id(id: &str) -> Result<(), StoreError> {
    let reason = if id.trim().is_empty() {
        "a schedule id must not be empty"
    } else if id.len() > MAX_SCHEDULE_ID {
        "a schedule id must be at most 200 bytes"
    } else if id.chars().any(char::is_control) {
        "a schedule id must not contain control characters"
    } else {
        return Ok(());
    };
    Err(StoreError::Invalid {
        message: reason.into(),
    })
}

/// A schedule as stored: its definition and where it stands.
///
/// ```
/// fn owed(s: &steward_core::store::ScheduleRecord) -> bool { !s.paused && s.next_at.is_some() }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleRecord {
    /// The definition.
    #[serde(flatten)]
    pub def: ScheduleDef,
    /// Paused: no tick fires until it is resumed.
    pub paused: bool,
    /// The next tick it owes; `None` until a scheduler arms it (a new or
    /// changed or resumed schedule is armed from the store's now, so ticks
    /// before it are not owed).
    pub next_at: Option<DateTime<Utc>>,
    /// The latest tick that fired, and its job.
    pub last_tick: Option<DateTime<Utc>>,
    /// The job the latest tick enqueued.
    pub last_job: Option<JobId>,
    /// When it was first saved.
    pub created_at: DateTime<Utc>,
    /// When its definition or pause last changed.
    pub updated_at: DateTime<Utc>,
}

/// What saving one definition did.
///
/// ```
/// assert_ne!(steward_core::store::Saved::Created, steward_core::store::Saved::Unchanged);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Saved {
    /// A new schedule.
    Created,
    /// An existing one whose definition changed (re-armed if its expression
    /// or zone changed; its pause kept).
    Updated,
    /// The same definition was already stored.
    Unchanged,
}

/// What [`Store::save_schedules`](super::Store::save_schedules) did.
///
/// ```
/// fn changed(r: &steward_core::store::SaveReport) -> bool { !r.removed.is_empty() }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SaveReport {
    /// One outcome per definition, in order.
    pub saved: Vec<Saved>,
    /// Ids of code-declared schedules removed because they were not in the
    /// list (only when asked to).
    pub removed: Vec<String>,
}

/// The schedules a scheduler should look at now.
///
/// ```
/// fn idle(d: &steward_core::store::DueSchedules) -> bool { d.due.is_empty() }
/// ```
#[derive(Debug, Clone)]
pub struct DueSchedules {
    /// The store's now: what "due" was judged by.
    pub now: DateTime<Utc>,
    /// Unpaused schedules owing a tick at or before `now`, or not armed yet.
    pub due: Vec<ScheduleRecord>,
    /// The earliest tick owed after `now` by an unpaused schedule, if any:
    /// when to look again.
    pub next_due: Option<DateTime<Utc>>,
}

/// One scheduler step for one schedule: enqueue these ticks' jobs and owe
/// `next_at` from now on, if the schedule still owes `expected`.
///
/// ```
/// use steward_core::store::ScheduleFire;
/// let arm = ScheduleFire { id: "t".into(), expected: None, jobs: vec![], next_at: chrono::Utc::now() };
/// ```
#[derive(Debug, Clone)]
pub struct ScheduleFire {
    /// The schedule.
    pub id: String,
    /// The `next_at` the caller read: the fire applies only if it is still
    /// the stored one (and the schedule is not paused).
    pub expected: Option<DateTime<Utc>>,
    /// One job per tick, each with `run_at` set to its tick: the tick's
    /// unique key. Empty to arm a schedule or skip missed ticks.
    pub jobs: Vec<super::NewJob>,
    /// The next tick owed after this step.
    pub next_at: DateTime<Utc>,
}

/// A tick that fired, and the job it enqueued.
///
/// ```
/// fn job(t: &steward_core::store::FiredTick) -> steward_core::store::JobId { t.job }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FiredTick {
    /// The tick.
    pub tick: DateTime<Utc>,
    /// The job it enqueued.
    pub job: JobId,
}

/// How many fired ticks a store keeps per schedule (the newest): enough to
/// show what ran lately. Older ones cannot fire again anyway: a fire applies
/// only to the tick the schedule owes, which only moves forward.
pub const KEPT_TICKS: i64 = 100;

/// Checks a list of definitions before anything is written: each valid,
/// ids unique. Stores call this first in
/// [`Store::save_schedules`](super::Store::save_schedules).
///
/// ```
/// use steward_core::store::{ScheduleDef, validate_schedule_defs};
/// let twice = vec![ScheduleDef::new("a", "@daily", "k"), ScheduleDef::new("a", "@hourly", "k")];
/// assert!(validate_schedule_defs(&twice).is_err());
/// ```
pub fn validate_schedule_defs(defs: &[ScheduleDef]) -> Result<(), StoreError> {
    let mut seen = std::collections::HashSet::new();
    for def in defs {
        def.validate()?;
        if !seen.insert(def.id.as_str()) {
            return Err(StoreError::Invalid {
                message: format!("schedule `{}` is listed twice", def.id),
            });
        }
    }
    Ok(())
}

/// Checks a scheduler step before anything is written (see
/// [`Store::fire_schedule`](super::Store::fire_schedule)): a valid id, valid
/// jobs each with a `run_at` (its tick), distinct ticks, and a `next_at`
/// after every tick.
///
/// ```
/// use steward_core::store::{NewJob, ScheduleFire, validate_schedule_fire};
/// let now = chrono::Utc::now();
/// let no_tick = ScheduleFire { id: "t".into(), expected: None, jobs: vec![NewJob::new("k", "null")], next_at: now };
/// assert!(validate_schedule_fire(&no_tick).is_err());
/// ```
pub fn validate_schedule_fire(fire: &ScheduleFire) -> Result<(), StoreError> {
    validate_schedule_id(&fire.id)?;
    super::validate_new_jobs(&fire.jobs)?;
    let invalid = |message: String| StoreError::Invalid {
        message: format!("schedule `{}`: {message}", fire.id),
    };
    let mut ticks = std::collections::BTreeSet::new();
    for job in &fire.jobs {
        let Some(tick) = job.run_at else {
            return Err(invalid("a tick's job has no run_at (its tick)".into()));
        };
        if job.delay.is_some() || job.unique.is_some() {
            return Err(invalid(
                "a tick's job takes no delay or unique key: its tick is its key".into(),
            ));
        }
        if !ticks.insert(tick) {
            return Err(invalid(format!("tick {tick} is listed twice")));
        }
        if tick >= fire.next_at {
            return Err(invalid(format!(
                "next_at {} is not after tick {tick}",
                fire.next_at
            )));
        }
    }
    Ok(())
}

impl ScheduleDef {
    /// A schedule `id` at `cron` whose job is set later, by
    /// [`Scheduler::job`](crate::jobs::Scheduler::job) (which fills in the
    /// kind and payload from a typed job).
    ///
    /// ```
    /// let def = steward_core::store::ScheduleDef::at("nightly", "0 3 * * *").zone("Europe/Berlin");
    /// assert!(def.kind.is_empty());
    /// ```
    pub fn at(id: impl Into<String>, cron: impl Into<String>) -> Self {
        ScheduleDef::new(id, cron, "")
    }
}
