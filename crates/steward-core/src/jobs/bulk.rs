//! An operator's action on every job matching a filter: retry, cancel or
//! delete, a bounded chunk at a time.
//!
//! The loop reads a page of matching jobs after a cursor (the last id done)
//! through [`Store::jobs`], hands their ids to [`Store::act_on_jobs`] (one
//! transaction per chunk, each job's state checked again under it), reports
//! progress, and moves the cursor on. So:
//! - a chunk is all or nothing, and a job that changed state since it was
//!   read (a worker claimed or finished it) is skipped, not clobbered;
//! - stopping between chunks (the callback says [`Flow::Stop`], the process
//!   is killed) leaves every chunk either done or untouched, and the report
//!   says the last id done: running again from it (or from the start: the
//!   jobs already acted on no longer match a state filter, or are skipped)
//!   finishes the rest.

use std::time::Duration;

use crate::store::{ActOn, Acted, JobAction, JobId, JobQuery, MAX_ACT_CHUNK, Store, StoreError};

/// The chunk size when none is given: big enough to amortize a
/// transaction, small enough to hold its locks for milliseconds.
pub const DEFAULT_CHUNK: u32 = 500;

/// An action on every job matching a filter.
///
/// ```
/// use steward_core::jobs::Bulk;
/// use steward_core::store::{JobAction, JobQuery, JobState};
/// let bulk = Bulk::new(JobAction::Retry, JobQuery::default().states([JobState::Dead])).chunk(100);
/// assert!(bulk.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bulk {
    /// What to do to each matching job.
    pub action: JobAction,
    /// Which jobs. Its `after` is where to start (resume from a report's
    /// `last_id`); its `limit` is ignored (the chunk is the page).
    pub filter: JobQuery,
    /// Jobs per chunk (one transaction each), 1 to [`MAX_ACT_CHUNK`].
    pub chunk: u32,
    /// Count what would be touched, without writing anything.
    pub dry_run: bool,
}

impl Bulk {
    /// `action` on the jobs `filter` matches, [`DEFAULT_CHUNK`] at a time.
    ///
    /// ```
    /// let bulk = steward_core::jobs::Bulk::new(steward_core::store::JobAction::Delete, Default::default());
    /// ```
    pub fn new(action: JobAction, filter: JobQuery) -> Self {
        Bulk {
            action,
            filter,
            chunk: DEFAULT_CHUNK,
            dry_run: false,
        }
    }

    /// Jobs per chunk.
    ///
    /// ```
    /// let bulk = steward_core::jobs::Bulk::new(steward_core::store::JobAction::Delete, Default::default()).chunk(50);
    /// ```
    pub fn chunk(mut self, chunk: u32) -> Self {
        self.chunk = chunk;
        self
    }

    /// Only counts.
    ///
    /// ```
    /// let bulk = steward_core::jobs::Bulk::new(steward_core::store::JobAction::Delete, Default::default()).dry_run(true);
    /// ```
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Refuses a chunk of 0 or above [`MAX_ACT_CHUNK`], and an invalid filter.
    ///
    /// ```
    /// use steward_core::{jobs::Bulk, store::JobAction};
    /// assert!(Bulk::new(JobAction::Delete, Default::default()).chunk(0).validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.chunk == 0 || self.chunk as usize > MAX_ACT_CHUNK {
            return Err(StoreError::Invalid {
                message: format!("a chunk of {} jobs: use 1 to {MAX_ACT_CHUNK}", self.chunk),
            });
        }
        self.page(self.filter.after).validate()
    }

    fn page(&self, after: Option<JobId>) -> JobQuery {
        let mut page = self.filter.clone().limit(self.chunk);
        page.after = after;
        page
    }
}

/// How far a bulk action got: after each chunk (to [`act_on_matching`]'s
/// callback) and at the end.
///
/// ```
/// let p = steward_core::jobs::BulkProgress::default();
/// assert_eq!(p.touched, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkProgress {
    /// Jobs acted on (a running job's cancel request counts), or that would
    /// be in a dry run.
    pub touched: u64,
    /// Jobs matched but left alone (a state the action refuses, or one
    /// they moved to meanwhile; gone meanwhile).
    pub skipped: u64,
    /// Chunks done.
    pub chunks: u64,
    /// The last id of the last chunk done: resume after it.
    pub last_id: Option<JobId>,
    /// Whether every matching job was seen (false if the callback stopped).
    pub finished: bool,
}

/// The callback's answer after each chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the next chunk.
    Continue,
    /// Stop here (the chunks done stay done; resume from `last_id`).
    Stop,
}

/// Applies `bulk` to every matching job, chunk by chunk, calling `progress`
/// after each chunk; returns the totals. A store error stops at once; the
/// chunks committed before it stay (the error's chunk wrote nothing), and
/// the last progress reported says where to resume.
///
/// ```
/// use steward_core::jobs::{Bulk, Flow, act_on_matching};
/// use steward_core::store::{JobAction, JobQuery, JobState, Store, StoreError};
/// async fn retry_dead<S: Store>(store: &S) -> Result<u64, StoreError> {
///     let bulk = Bulk::new(JobAction::Retry, JobQuery::default().states([JobState::Dead]));
///     let done = act_on_matching(store, &bulk, |p| {
///         eprintln!("{} so far", p.touched);
///         Flow::Continue
///     })
///     .await?;
///     Ok(done.touched)
/// }
/// ```
pub async fn act_on_matching<S: Store>(
    store: &S,
    bulk: &Bulk,
    mut progress: impl FnMut(&BulkProgress) -> Flow,
) -> Result<BulkProgress, StoreError> {
    bulk.validate()?;
    let mut done = BulkProgress {
        last_id: bulk.filter.after,
        ..BulkProgress::default()
    };
    loop {
        let page = store.jobs(bulk.page(done.last_id)).await?;
        let Some(last) = page.last().map(|job| job.id) else {
            done.finished = true;
            return Ok(done);
        };
        let full = page.len() == bulk.chunk as usize;
        if bulk.dry_run {
            let wanted = ActOn::new(bulk.action, []).states(bulk.filter.states.iter().copied());
            let would = page.iter().filter(|job| wanted.wants(job.state)).count() as u64;
            done.touched += would;
            done.skipped += page.len() as u64 - would;
        } else {
            let ids: Vec<JobId> = page.iter().map(|job| job.id).collect();
            let chunk = ActOn::new(bulk.action, ids).states(bulk.filter.states.iter().copied());
            let acted = act_with_retries(store, chunk).await?;
            let touched = acted.iter().filter(|a| a.touched()).count() as u64;
            done.touched += touched;
            done.skipped += acted.len() as u64 - touched;
        }
        done.chunks += 1;
        done.last_id = Some(last);
        if !full {
            // A short page is the last one: no need to read an empty page.
            done.finished = true;
            progress(&done);
            return Ok(done);
        }
        if progress(&done) == Flow::Stop {
            return Ok(done);
        }
    }
}

/// One chunk, tried again a few times while the store is busy (a chunk is
/// one transaction, so a retry never applies part of it twice).
async fn act_with_retries<S: Store>(store: &S, chunk: ActOn) -> Result<Vec<Acted>, StoreError> {
    let mut pause = Duration::from_millis(50);
    for _ in 0..5 {
        match store.act_on_jobs(chunk.clone()).await {
            Err(e) if e.is_transient() => {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            other => return other,
        }
    }
    store.act_on_jobs(chunk).await
}
