//! Managing schedules at run time: what an operator (the CLI, an admin
//! page) does to the schedules in a store.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::jobs::{Cron, CronError};
use crate::store::{
    FiredTick, JobId, NewJob, Saved, ScheduleDef, ScheduleOrigin, ScheduleRecord, Store, StoreError,
};

/// Why a schedule operation was refused.
///
/// ```
/// use steward_core::jobs::ScheduleError;
/// let err = ScheduleError::NotFound { id: "nightly".into() };
/// assert_eq!(err.to_string(), "no schedule `nightly`");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The expression or the zone is wrong. The reason is in the message
    /// (one line for an operator), not repeated as a `source()`.
    #[error("schedule `{id}`: {error}")]
    Cron {
        /// The schedule.
        id: String,
        /// What is wrong.
        error: CronError,
    },
    /// The kind is not one the workers run.
    #[error("schedule `{id}`: unknown job kind `{kind}` (known: {})", known.join(", "))]
    UnknownKind {
        /// The schedule.
        id: String,
        /// The kind given.
        kind: String,
        /// The kinds that exist.
        known: Vec<String>,
    },
    /// No schedule has this id.
    #[error("no schedule `{id}`")]
    NotFound {
        /// The id given.
        id: String,
    },
    /// The store refused or failed: an invalid definition (a misfire limit
    /// of 0, a payload that is not JSON, a bad id) is
    /// [`StoreError::Invalid`], which names the problem.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The schedules of a store, for operators: add, list, pause, resume,
/// trigger now, delete, the next fire times.
///
/// ```
/// # async fn demo<S: steward_core::store::Store>(store: std::sync::Arc<S>) -> Result<(), steward_core::jobs::ScheduleError> {
/// use steward_core::jobs::Schedules;
/// use steward_core::store::ScheduleDef;
/// let schedules = Schedules::new(store);
/// schedules.add(ScheduleDef::new("cleanup", "0 4 * * *", "cleanup")).await?;
/// schedules.pause("cleanup").await?;
/// for t in schedules.upcoming("cleanup", 3).await? { println!("{t}"); }
/// # Ok(()) }
/// ```
pub struct Schedules<S> {
    store: Arc<S>,
    known_kinds: Option<BTreeSet<String>>,
}

impl<S: Store> Schedules<S> {
    /// The schedules of `store`.
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(store: std::sync::Arc<S>) {
    /// let schedules = steward_core::jobs::Schedules::new(store);
    /// # }
    /// ```
    pub fn new(store: Arc<S>) -> Self {
        Schedules {
            store,
            known_kinds: None,
        }
    }

    /// Refuses, in [`add`](Self::add), a kind not among `kinds`.
    ///
    /// ```
    /// # fn demo<S: steward_core::store::Store>(store: std::sync::Arc<S>) {
    /// let schedules = steward_core::jobs::Schedules::new(store).known_kinds(["report", "cleanup"]);
    /// # }
    /// ```
    pub fn known_kinds<I: IntoIterator<Item = K>, K: Into<String>>(mut self, kinds: I) -> Self {
        self.known_kinds = Some(kinds.into_iter().map(Into::into).collect());
        self
    }

    /// Adds a schedule, or replaces the definition of the one with its id
    /// (its pause is kept; a new expression or zone counts its ticks afresh
    /// from now). Marked as an operator's: a scheduler removing undeclared
    /// schedules leaves it alone. Checked before anything is written.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(s: steward_core::jobs::Schedules<S>) {
    /// use steward_core::store::ScheduleDef;
    /// let err = s.add(ScheduleDef::new("x", "@daily", "k").zone("Nowhere/City")).await.unwrap_err();
    /// assert!(err.to_string().contains("Nowhere/City"));
    /// # }
    /// ```
    pub async fn add(&self, mut def: ScheduleDef) -> Result<Saved, ScheduleError> {
        def.origin = ScheduleOrigin::Operator;
        Cron::parse(&def.cron, &def.zone).map_err(|error| ScheduleError::Cron {
            id: def.id.clone(),
            error,
        })?;
        if let Some(known) = &self.known_kinds {
            if !known.contains(&def.kind) {
                return Err(ScheduleError::UnknownKind {
                    id: def.id,
                    kind: def.kind,
                    known: known.iter().cloned().collect(),
                });
            }
        }
        let report = self.store.save_schedules(vec![def], false).await?;
        Ok(report.saved.first().copied().unwrap_or(Saved::Unchanged))
    }

    /// Every schedule, by id.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(s: steward_core::jobs::Schedules<S>) -> Result<(), steward_core::jobs::ScheduleError> {
    /// for s in s.list().await? { println!("{} {}", s.def.id, s.def.cron); }
    /// # Ok(()) }
    /// ```
    pub async fn list(&self) -> Result<Vec<ScheduleRecord>, ScheduleError> {
        Ok(self.store.schedules().await?)
    }

    /// One schedule.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(s: steward_core::jobs::Schedules<S>) -> Result<(), steward_core::jobs::ScheduleError> {
    /// let nightly = s.get("nightly").await?;
    /// # Ok(()) }
    /// ```
    pub async fn get(&self, id: &str) -> Result<ScheduleRecord, ScheduleError> {
        self.store.schedule(id).await?.ok_or_else(|| not_found(id))
    }

    /// Pauses a schedule: no tick fires until it is resumed.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(s: steward_core::jobs::Schedules<S>) -> Result<(), steward_core::jobs::ScheduleError> {
    /// s.pause("nightly").await?;
    /// # Ok(()) }
    /// ```
    pub async fn pause(&self, id: &str) -> Result<(), ScheduleError> {
        found(self.store.pause_schedule(id, true).await?, id)
    }

    /// Resumes a paused schedule from now: ticks that fell during the pause
    /// do not run.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(s: steward_core::jobs::Schedules<S>) -> Result<(), steward_core::jobs::ScheduleError> {
    /// s.resume("nightly").await?;
    /// # Ok(()) }
    /// ```
    pub async fn resume(&self, id: &str) -> Result<(), ScheduleError> {
        found(self.store.pause_schedule(id, false).await?, id)
    }

    /// Deletes a schedule; the jobs it enqueued stay.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(s: steward_core::jobs::Schedules<S>) -> Result<(), steward_core::jobs::ScheduleError> {
    /// s.delete("nightly").await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self, id: &str) -> Result<(), ScheduleError> {
        found(self.store.delete_schedule(id).await?, id)
    }

    /// Enqueues the schedule's job now, outside its ticks (paused or not);
    /// the ticks go on as before.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(s: steward_core::jobs::Schedules<S>) -> Result<(), steward_core::jobs::ScheduleError> {
    /// let job = s.trigger("nightly").await?;
    /// println!("enqueued job {job}");
    /// # Ok(()) }
    /// ```
    pub async fn trigger(&self, id: &str) -> Result<JobId, ScheduleError> {
        let def = self.get(id).await?.def;
        let job = NewJob {
            queue: def.queue,
            priority: def.priority,
            max_attempts: def.max_attempts,
            payload_version: def.payload_version,
            ..NewJob::new(def.kind, def.payload)
        };
        let enqueued = self.store.enqueue(vec![job]).await?;
        enqueued.first().map(|e| e.id).ok_or_else(|| {
            ScheduleError::Store(StoreError::Database {
                source: "the store answered an enqueue of one job with no id".into(),
            })
        })
    }

    /// The next `n` fire times: from the tick it owes, or from now if it
    /// is not armed yet (a new or resumed schedule). Empty for a paused one.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(s: steward_core::jobs::Schedules<S>) -> Result<(), steward_core::jobs::ScheduleError> {
    /// let next = s.upcoming("nightly", 5).await?;
    /// # Ok(()) }
    /// ```
    pub async fn upcoming(&self, id: &str, n: usize) -> Result<Vec<DateTime<Utc>>, ScheduleError> {
        let record = self.get(id).await?;
        if record.paused || n == 0 {
            return Ok(Vec::new());
        }
        let cron = Cron::parse(&record.def.cron, &record.def.zone).map_err(|error| {
            ScheduleError::Cron {
                id: id.to_string(),
                error,
            }
        })?;
        Ok(match record.next_at {
            Some(owed) => std::iter::once(owed)
                .chain(cron.upcoming(owed, n - 1))
                .collect(),
            None => cron.upcoming(Utc::now(), n),
        })
    }

    /// The latest ticks that fired and their jobs, newest first.
    ///
    /// ```
    /// # async fn demo<S: steward_core::store::Store>(s: steward_core::jobs::Schedules<S>) -> Result<(), steward_core::jobs::ScheduleError> {
    /// for t in s.fired("nightly", 10).await? { println!("{} -> job {}", t.tick, t.job); }
    /// # Ok(()) }
    /// ```
    pub async fn fired(&self, id: &str, limit: u32) -> Result<Vec<FiredTick>, ScheduleError> {
        self.get(id).await?;
        Ok(self.store.schedule_fires(id, limit).await?)
    }
}

fn not_found(id: &str) -> ScheduleError {
    ScheduleError::NotFound { id: id.to_string() }
}

fn found(exists: bool, id: &str) -> Result<(), ScheduleError> {
    if exists { Ok(()) } else { Err(not_found(id)) }
}
