//! The plain data that crosses the storage boundary.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A job's id, unique within a store.
///
/// ```
/// let id = steward_core::store::JobId(42);
/// assert_eq!(id.to_string(), "42");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub i64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The random token written by a claim; every later write about that
/// attempt must carry it (fencing).
///
/// ```
/// let t = steward_core::store::LeaseToken(7);
/// assert_eq!(t, steward_core::store::LeaseToken(7));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeaseToken(pub i64);

impl LeaseToken {
    /// A fresh random token.
    ///
    /// ```
    /// assert_ne!(steward_core::store::LeaseToken::random(), steward_core::store::LeaseToken::random());
    /// ```
    pub fn random() -> Self {
        LeaseToken(rand::random::<i64>())
    }
}

/// One attempt's claim on a job: its id and the lease token of the attempt.
///
/// ```
/// use steward_core::store::{JobId, Lease, LeaseToken};
/// let lease = Lease { id: JobId(1), token: LeaseToken(9) };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Lease {
    /// The job.
    pub id: JobId,
    /// The attempt's token.
    pub token: LeaseToken,
}

/// Where a job is in its life.
///
/// ```
/// use steward_core::store::JobState;
/// assert_eq!(JobState::Available.as_str(), "available");
/// assert_eq!("dead".parse::<JobState>().ok(), Some(JobState::Dead));
/// assert!(JobState::Completed.is_final());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its `run_at` (delayed).
    Scheduled,
    /// Ready to be claimed.
    Available,
    /// Claimed by a worker, under a lease.
    Running,
    /// Failed, waiting for its retry time.
    Retryable,
    /// Finished successfully.
    Completed,
    /// Failed on its last allowed attempt (or lost its worker too often);
    /// kept for an operator to inspect and retry.
    Dead,
    /// Cancelled by the job itself or an operator.
    Cancelled,
}

impl JobState {
    /// Every state, in the order of a job's life.
    pub const ALL: [JobState; 7] = [
        JobState::Scheduled,
        JobState::Available,
        JobState::Running,
        JobState::Retryable,
        JobState::Completed,
        JobState::Dead,
        JobState::Cancelled,
    ];

    /// The state's name as stored.
    ///
    /// ```
    /// assert_eq!(steward_core::store::JobState::Running.as_str(), "running");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Available => "available",
            JobState::Running => "running",
            JobState::Retryable => "retryable",
            JobState::Completed => "completed",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
        }
    }

    /// True for states a job never leaves by itself.
    ///
    /// ```
    /// assert!(!steward_core::store::JobState::Retryable.is_final());
    /// ```
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Completed | JobState::Dead | JobState::Cancelled
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown job state `{s}`"))
    }
}

/// How long a unique key keeps duplicates out.
///
/// A job holds its key from its enqueue until its scope ends, and a key
/// let go of is not taken back when the job is put back in line (a retry,
/// a snooze, a release, a rescue): another job may hold it by then. An
/// operator's [`retry`](super::Store::retry) of a finished job queues it
/// afresh, so it takes its `Queued` or `Active` key back, but only if no
/// other job holds the key then; otherwise the job runs without one (a key
/// is never a reason to refuse the retry).
///
/// ```
/// use std::time::Duration;
/// use steward_core::store::UniqueScope;
/// let scope = UniqueScope::Window(Duration::from_secs(3600));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UniqueScope {
    /// Until the job's first attempt starts: while it is scheduled or
    /// available, let go of when it is first claimed (Sidekiq's
    /// `until_executing`). A job that fails and waits to retry, or is
    /// snoozed, released or rescued, does not hold the key again, so a new
    /// job with the key may be enqueued meanwhile.
    Queued,
    /// Until the job reaches a final state: while it is queued, running,
    /// waiting to retry, snoozed, released or rescued; let go of when it
    /// completes, dies or is cancelled.
    Active,
    /// For a fixed window of time, counted from the window's start (the
    /// key is bucketed by `floor(now / window)`), whatever the job's state,
    /// final states included, until the job is pruned.
    Window(Duration),
}

impl UniqueScope {
    /// The stored name of the scope.
    ///
    /// ```
    /// assert_eq!(steward_core::store::UniqueScope::Active.as_str(), "active");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            UniqueScope::Queued => "queued",
            UniqueScope::Active => "active",
            UniqueScope::Window(_) => "window",
        }
    }
}

/// The payload version of a job serialized before payloads had versions.
fn first_payload_version() -> u32 {
    1
}

/// A job to insert.
///
/// ```
/// use steward_core::store::NewJob;
/// let job = NewJob::new("email", r#"{"to":"a@b.c"}"#).queue("mail").priority(-1).max_attempts(5);
/// assert_eq!(job.queue, "mail");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// The job kind (the registered type's `KIND`).
    pub kind: String,
    /// The serialized job, as JSON text.
    pub payload: String,
    /// The version of the payload's shape (the kind's
    /// [`Job::VERSION`](crate::jobs::Job::VERSION); default 1; 0 is refused
    /// with [`StoreError::Invalid`](super::StoreError::Invalid)).
    pub payload_version: u32,
    /// The queue (default `default`).
    pub queue: String,
    /// Lower runs first (default 0).
    pub priority: i16,
    /// Attempts allowed before the job is dead (default 25).
    pub max_attempts: u32,
    /// Not before this absolute time; `None` means now (or `delay`).
    pub run_at: Option<DateTime<Utc>>,
    /// Not before this long after the store's now (its clock, not the
    /// caller's). Setting both `run_at` and `delay` is refused with
    /// [`StoreError::Invalid`](super::StoreError::Invalid).
    pub delay: Option<Duration>,
    /// A per-attempt timeout the worker enforces, if any.
    pub timeout: Option<Duration>,
    /// Deduplication key and scope, if any.
    pub unique: Option<(String, UniqueScope)>,
}

impl NewJob {
    /// A job of `kind` with its JSON `payload` and default options.
    ///
    /// ```
    /// let job = steward_core::store::NewJob::new("noop", "null");
    /// assert_eq!((job.max_attempts, job.payload_version), (25, 1));
    /// ```
    pub fn new(kind: impl Into<String>, payload: impl Into<String>) -> Self {
        NewJob {
            kind: kind.into(),
            payload: payload.into(),
            payload_version: 1,
            queue: "default".to_string(),
            priority: 0,
            max_attempts: 25,
            run_at: None,
            delay: None,
            timeout: None,
            unique: None,
        }
    }

    /// Sets the version of the payload's shape (a typed client sets the
    /// kind's [`Job::VERSION`](crate::jobs::Job::VERSION)); a worker upgrades
    /// an older payload before decoding it.
    ///
    /// ```
    /// let job = steward_core::store::NewJob::new("report", r#"{"title":"Q3"}"#).payload_version(2);
    /// assert_eq!(job.payload_version, 2);
    /// ```
    pub fn payload_version(mut self, version: u32) -> Self {
        self.payload_version = version;
        self
    }

    /// Sets the queue.
    ///
    /// ```
    /// let job = steward_core::store::NewJob::new("noop", "null").queue("low");
    /// ```
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// Sets the priority (lower runs first).
    ///
    /// ```
    /// let job = steward_core::store::NewJob::new("noop", "null").priority(-5);
    /// ```
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }

    /// Sets how many attempts are allowed.
    ///
    /// ```
    /// let job = steward_core::store::NewJob::new("noop", "null").max_attempts(1);
    /// ```
    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Runs the job no earlier than `at`, an absolute time (not with
    /// [`delay`](Self::delay): a store refuses a job with both).
    ///
    /// ```
    /// let job = steward_core::store::NewJob::new("noop", "null").run_at(chrono::Utc::now());
    /// ```
    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }

    /// Runs the job no earlier than `delay` after the store's now. The
    /// store's clock decides, not the caller's, so a worker with a skewed
    /// clock cannot move the job; an absurd delay saturates at the latest
    /// time the store can hold. Not with [`run_at`](Self::run_at): a store
    /// refuses a job with both.
    ///
    /// ```
    /// use std::time::Duration;
    /// let job = steward_core::store::NewJob::new("noop", "null").delay(Duration::from_secs(30));
    /// assert_eq!(job.delay, Some(Duration::from_secs(30)));
    /// ```
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Sets a per-attempt timeout.
    ///
    /// ```
    /// let job = steward_core::store::NewJob::new("noop", "null").timeout(std::time::Duration::from_secs(60));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Makes the job unique by `key` within `scope`: while the job holds
    /// the key, enqueueing another job with it inserts nothing and answers
    /// the holder's id with [`Enqueued::duplicate`]. A `Queued` key is held
    /// until the job's first attempt starts, an `Active` one until the job
    /// completes, dies or is cancelled, a `Window` one for its window until
    /// the job is pruned (see [`UniqueScope`]).
    ///
    /// ```
    /// use steward_core::store::{NewJob, UniqueScope};
    /// let job = NewJob::new("report", "null").unique("report:2026-11", UniqueScope::Queued);
    /// ```
    pub fn unique(mut self, key: impl Into<String>, scope: UniqueScope) -> Self {
        self.unique = Some((key.into(), scope));
        self
    }
}

/// The result of enqueueing one job.
///
/// ```
/// use steward_core::store::{Enqueued, JobId};
/// let e = Enqueued { id: JobId(3), duplicate: false };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enqueued {
    /// The new job's id, or the existing job's for a duplicate.
    pub id: JobId,
    /// True if a job with the same unique key already existed in scope.
    pub duplicate: bool,
}

/// How many jobs to claim from one queue.
///
/// ```
/// let q = steward_core::store::QueueClaim { queue: "default".into(), limit: 16 };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueClaim {
    /// The queue.
    pub queue: String,
    /// At most this many.
    pub limit: u32,
}

/// A batched claim across queues, in priority order.
///
/// ```
/// use std::time::Duration;
/// use steward_core::store::{ClaimRequest, QueueClaim};
/// let req = ClaimRequest {
///     worker: "host-1/1234".into(),
///     queues: vec![QueueClaim { queue: "default".into(), limit: 10 }],
///     lease: Duration::from_secs(30),
///     max_suspects: u32::MAX,
///     kinds: None,
/// };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    /// Who claims (shown to operators).
    pub worker: String,
    /// Queues in the order they are served, each with its limit.
    pub queues: Vec<QueueClaim>,
    /// The lease's length.
    pub lease: Duration,
    /// The most *suspects* (jobs whose worker was lost while they ran, at
    /// least [`SUSPECT_RESCUES`] times in a row) this claim may return, over
    /// all its queues. A worker holds at most one at a time (it asks for 1
    /// when it holds none, 0 otherwise), so a suspect never runs beside
    /// another suspect. A job that kills its process then takes down with it
    /// only jobs that are not suspects yet; only the real killer keeps
    /// collecting rescues until `max_rescues` buries it (with the default of
    /// 3 or more: see [`SUSPECT_RESCUES`]). `u32::MAX`: no limit.
    pub max_suspects: u32,
    /// Only jobs of these kinds (`None`: any kind). A worker claims only
    /// the kinds it runs, so that in a rolling deploy old workers leave new
    /// kinds for the new workers instead of failing them as unknown.
    /// Jobs of other kinds due ahead of the first one it runs are stepped
    /// over in the claim's index walk: cheap while they are few (a deploy's
    /// window), a cost on every claim if a kind nobody runs piles up.
    pub kinds: Option<Vec<String>>,
}

/// A claimed job, ready to run.
///
/// ```
/// # fn demo(job: steward_core::store::ClaimedJob) {
/// println!("running {} #{} attempt {}", job.kind, job.lease.id, job.attempt);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    /// The job and this attempt's token.
    pub lease: Lease,
    /// Its kind.
    pub kind: String,
    /// Its queue.
    pub queue: String,
    /// Its JSON payload.
    pub payload: String,
    /// The version of the payload's shape, as enqueued.
    pub payload_version: u32,
    /// This attempt's number (1 for the first).
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// The last checkpoint saved by an earlier attempt, if any.
    pub checkpoint: Option<String>,
    /// The per-attempt timeout, if any.
    pub timeout: Option<Duration>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// How many times in a row a worker was lost while running it (0 for
    /// a job that is not a suspect; see [`ClaimRequest::max_suspects`]).
    pub rescues: u32,
}

/// What kind of failure an attempt had.
///
/// ```
/// assert_eq!(steward_core::store::ErrorKind::Panic.as_str(), "panic");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The job returned an error.
    Error,
    /// The job panicked.
    Panic,
    /// The job overran its timeout.
    Timeout,
    /// Its worker was lost (lease expired and rescued).
    WorkerLost,
    /// The payload did not deserialize (after any
    /// [`Job::upgrade`](crate::jobs::Job::upgrade)), its upgrade failed or
    /// its version is newer than the worker's, the kind is unknown, or the
    /// stored row could not be read.
    Payload,
    /// The attempt was cancelled; the message is the reason.
    Cancelled,
}

impl ErrorKind {
    /// The stored name.
    ///
    /// ```
    /// assert_eq!(steward_core::store::ErrorKind::WorkerLost.as_str(), "worker_lost");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Error => "error",
            ErrorKind::Panic => "panic",
            ErrorKind::Timeout => "timeout",
            ErrorKind::WorkerLost => "worker_lost",
            ErrorKind::Payload => "payload",
            ErrorKind::Cancelled => "cancelled",
        }
    }
}

/// One failed attempt, kept with the job.
///
/// ```
/// use steward_core::store::{AttemptError, ErrorKind};
/// let e = AttemptError { attempt: 1, at: chrono::Utc::now(), kind: ErrorKind::Error, message: "timeout talking to smtp".into() };
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptError {
    /// Which attempt failed.
    pub attempt: u32,
    /// When.
    pub at: DateTime<Utc>,
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The error with its whole chain, or the panic message.
    pub message: String,
}

/// How one attempt ended, as the engine decided.
///
/// Later times are given as delays from the store's now, never as absolute
/// times read off the worker's clock: the store adds them to its own clock,
/// saturating at the latest time it can hold.
///
/// ```
/// use std::time::Duration;
/// use steward_core::store::FinishOutcome;
/// let done = FinishOutcome::Completed;
/// let later = FinishOutcome::Snoozed { delay: Duration::from_secs(60) };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishOutcome {
    /// Succeeded.
    Completed,
    /// Failed; retried `retry_in` after the store's now, or dead if
    /// `retry_in` is `None`.
    Failed {
        /// The attempt's error.
        error: AttemptError,
        /// How long from the store's now until the next try; `None` makes
        /// the job dead.
        retry_in: Option<Duration>,
    },
    /// Asked to run again later without counting this attempt.
    Snoozed {
        /// How long from the store's now until it runs again (zero: at once).
        delay: Duration,
    },
    /// Cancelled (by the job itself or an operator).
    Cancelled {
        /// Why.
        reason: String,
    },
}

/// One item of a [`Store::finish`](super::Store::finish) batch.
///
/// ```
/// use steward_core::store::{Finish, FinishOutcome, JobId, Lease, LeaseToken};
/// let f = Finish { lease: Lease { id: JobId(1), token: LeaseToken(2) }, outcome: FinishOutcome::Completed };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// The attempt.
    pub lease: Lease,
    /// How it ended.
    pub outcome: FinishOutcome,
}

/// The answer to one heartbeat.
///
/// ```
/// assert!(steward_core::store::HeartbeatResult::Extended.is_held());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatResult {
    /// The lease was extended.
    Extended,
    /// Extended, and an operator asked to cancel the job.
    CancelRequested,
    /// The lease is gone: stop the attempt, write nothing more about it.
    Lost,
}

impl HeartbeatResult {
    /// True unless the lease was lost.
    ///
    /// ```
    /// assert!(!steward_core::store::HeartbeatResult::Lost.is_held());
    /// ```
    pub fn is_held(self) -> bool {
        self != HeartbeatResult::Lost
    }
}

/// The answer to [`Store::cancel`](super::Store::cancel).
///
/// ```
/// let r = steward_core::store::CancelResult::Cancelled;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelResult {
    /// It was queued and is now cancelled.
    Cancelled,
    /// It is running; its worker was asked to cancel it.
    Requested,
    /// It had already finished (completed, dead or cancelled).
    AlreadyFinished,
    /// No such job.
    NotFound,
}

/// The error message of an attempt stopped by an operator's cancel, and of
/// a job whose requested cancel ended it when its attempt ended another way.
///
/// ```
/// assert!(steward_core::store::CANCELLED_BY_OPERATOR.contains("operator"));
/// ```
pub const CANCELLED_BY_OPERATOR: &str = "cancelled by an operator";

/// A job rescued this many times in a row (its worker lost while it ran) is
/// a *suspect*: it never runs beside another suspect (see
/// [`ClaimRequest::max_suspects`]). Not 1: one crash of a busy worker (an
/// out-of-memory kill, a lost node) rescues every job it held, and
/// isolating them all would run them one at a time. At 2, an innocent job
/// beside a killer is rescued at most twice before it is isolated from the
/// killer (which, in every crash it caused, is at least as far along), so
/// with `max_rescues` of 3 or more only the killer is buried; with 2, jobs
/// rescued beside it twice are buried too.
///
/// ```
/// assert_eq!(steward_core::store::SUSPECT_RESCUES, 2);
/// ```
pub const SUSPECT_RESCUES: u32 = 2;

/// What a rescue pass did.
///
/// ```
/// let r = steward_core::store::RescueReport::default();
/// assert_eq!(r.rescued + r.dead, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RescueReport {
    /// Made available again.
    pub rescued: u64,
    /// Made dead after too many rescues in a row.
    pub dead: u64,
    /// Made cancelled: an operator had asked to cancel them (never started
    /// again).
    pub cancelled: u64,
}

/// The number of jobs in each state.
///
/// ```
/// use steward_core::store::{JobState, StateCounts};
/// let c = StateCounts::default();
/// assert_eq!(c.get(JobState::Dead), 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    /// Scheduled.
    pub scheduled: u64,
    /// Available.
    pub available: u64,
    /// Running.
    pub running: u64,
    /// Retryable.
    pub retryable: u64,
    /// Completed.
    pub completed: u64,
    /// Dead.
    pub dead: u64,
    /// Cancelled.
    pub cancelled: u64,
}

impl StateCounts {
    /// The count for one state.
    ///
    /// ```
    /// let c = steward_core::store::StateCounts { running: 2, ..Default::default() };
    /// assert_eq!(c.get(steward_core::store::JobState::Running), 2);
    /// ```
    pub fn get(&self, state: JobState) -> u64 {
        match state {
            JobState::Scheduled => self.scheduled,
            JobState::Available => self.available,
            JobState::Running => self.running,
            JobState::Retryable => self.retryable,
            JobState::Completed => self.completed,
            JobState::Dead => self.dead,
            JobState::Cancelled => self.cancelled,
        }
    }

    /// Sets the count for one state.
    ///
    /// ```
    /// let mut c = steward_core::store::StateCounts::default();
    /// c.set(steward_core::store::JobState::Dead, 4);
    /// assert_eq!(c.dead, 4);
    /// ```
    pub fn set(&mut self, state: JobState, n: u64) {
        let slot = match state {
            JobState::Scheduled => &mut self.scheduled,
            JobState::Available => &mut self.available,
            JobState::Running => &mut self.running,
            JobState::Retryable => &mut self.retryable,
            JobState::Completed => &mut self.completed,
            JobState::Dead => &mut self.dead,
            JobState::Cancelled => &mut self.cancelled,
        };
        *slot = n;
    }

    /// All jobs.
    ///
    /// ```
    /// assert_eq!(steward_core::store::StateCounts::default().total(), 0);
    /// ```
    pub fn total(&self) -> u64 {
        JobState::ALL.iter().map(|s| self.get(*s)).sum()
    }
}

/// Everything the store knows about one job.
///
/// ```
/// # fn demo(job: steward_core::store::JobRecord) {
/// for e in &job.errors { println!("attempt {}: {}", e.attempt, e.message); }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Its id.
    pub id: JobId,
    /// Its kind.
    pub kind: String,
    /// Its queue.
    pub queue: String,
    /// Its state.
    pub state: JobState,
    /// Its priority (lower runs first).
    pub priority: i16,
    /// Its JSON payload.
    pub payload: String,
    /// The version of the payload's shape, as enqueued.
    #[serde(default = "first_payload_version")]
    pub payload_version: u32,
    /// Attempts started (not counting interrupted or rescued ones).
    pub attempt: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// When it runs (or ran, or retries).
    pub run_at: DateTime<Utc>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When its latest attempt started.
    pub attempted_at: Option<DateTime<Utc>>,
    /// When it reached a final state.
    pub finished_at: Option<DateTime<Utc>>,
    /// Every failed attempt, oldest first.
    pub errors: Vec<AttemptError>,
    /// The last checkpoint, if any.
    pub checkpoint: Option<String>,
    /// The worker holding it, while running.
    pub worker: Option<String>,
    /// When the current lease expires, while running.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Rescues in a row since its last normal finish.
    pub rescues: u32,
    /// Times it was released at shutdown (interrupted).
    pub interrupted: u32,
    /// True if an operator asked to cancel it while it ran.
    pub cancel_requested: bool,
    /// The per-attempt timeout, if any.
    pub timeout: Option<Duration>,
    /// Its unique key, while it holds one.
    pub unique_key: Option<String>,
}
