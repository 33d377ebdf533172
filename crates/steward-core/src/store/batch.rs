//! Batching helpers for store implementations: the pure logic every store
//! needs to turn a batch into set-based statements without changing what
//! applying it item by item would mean. No SQL here.

use std::collections::{HashMap, HashSet};

use super::{Finish, FinishOutcome, Lease};

/// Splits a batch into rounds in which each job id appears at most once
/// (the n-th item about an id goes into round n), as item indexes. Running
/// the rounds in order makes a batch that names one job twice behave as if
/// applied item by item: the second finish of an attempt finds the job no
/// longer running and is refused. (A set-based `UPDATE … FROM` would apply
/// only one of two items about the same row, silently.)
///
/// ```
/// use steward_core::store::batch::rounds_by_job;
/// let rounds = rounds_by_job([1, 2, 1, 3, 1].into_iter());
/// assert_eq!(rounds, vec![vec![0, 1, 3], vec![2], vec![4]]);
/// ```
pub fn rounds_by_job(ids: impl Iterator<Item = i64>) -> Vec<Vec<usize>> {
    let mut seen: HashMap<i64, usize> = HashMap::new();
    let mut rounds: Vec<Vec<usize>> = Vec::new();
    for (i, id) in ids.enumerate() {
        let n = seen.entry(id).or_insert(0);
        if rounds.len() <= *n {
            rounds.push(Vec::new());
        }
        rounds[*n].push(i);
        *n += 1;
    }
    rounds
}

/// True if no job id appears twice: the batch needs only one round.
///
/// ```
/// use steward_core::store::{JobId, Lease, LeaseToken, batch::distinct_jobs};
/// let a = Lease { id: JobId(1), token: LeaseToken(1) };
/// let b = Lease { id: JobId(1), token: LeaseToken(2) };
/// assert!(distinct_jobs([a].into_iter()));
/// assert!(!distinct_jobs([a, b].into_iter()));
/// ```
pub fn distinct_jobs(leases: impl Iterator<Item = Lease>) -> bool {
    let mut seen = HashSet::new();
    leases.into_iter().all(|l| seen.insert(l.id.0))
}

/// Which set-based statement an outcome belongs to: a store writes a batch
/// of outcomes as one statement per kind (per round, see [`rounds_by_job`]),
/// since each kind sets different columns.
///
/// ```
/// use steward_core::store::FinishOutcome;
/// use steward_core::store::batch::OutcomeKind;
/// assert_eq!(OutcomeKind::of(&FinishOutcome::Completed), OutcomeKind::Complete);
/// assert_eq!(OutcomeKind::ALL.len(), 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    /// Completed.
    Complete,
    /// Failed, with a retry.
    FailRetry,
    /// Failed for good (dead).
    FailDead,
    /// Snoozed (back in line, the attempt not counted).
    Snooze,
    /// Cancelled from inside the job.
    Cancel,
}

impl OutcomeKind {
    /// Every kind, in the order stores write them.
    pub const ALL: [OutcomeKind; 5] = [
        OutcomeKind::Complete,
        OutcomeKind::FailRetry,
        OutcomeKind::FailDead,
        OutcomeKind::Snooze,
        OutcomeKind::Cancel,
    ];

    /// The kind of an outcome.
    ///
    /// ```
    /// use std::time::Duration;
    /// use steward_core::store::FinishOutcome;
    /// use steward_core::store::batch::OutcomeKind;
    /// let snooze = FinishOutcome::Snoozed { delay: Duration::from_secs(1) };
    /// assert_eq!(OutcomeKind::of(&snooze), OutcomeKind::Snooze);
    /// ```
    pub fn of(outcome: &FinishOutcome) -> OutcomeKind {
        match outcome {
            FinishOutcome::Completed => OutcomeKind::Complete,
            FinishOutcome::Failed {
                retry_in: Some(_), ..
            } => OutcomeKind::FailRetry,
            FinishOutcome::Failed { retry_in: None, .. } => OutcomeKind::FailDead,
            FinishOutcome::Snoozed { .. } => OutcomeKind::Snooze,
            FinishOutcome::Cancelled { .. } => OutcomeKind::Cancel,
        }
    }

    /// Whether this outcome puts the job back in line (a retry, a snooze).
    /// A store then also applies the rule that a requested cancel is never
    /// lost (docs/store-contract.md): a second statement, in the same
    /// transaction, cancels those of the jobs an operator asked to cancel.
    ///
    /// ```
    /// use steward_core::store::batch::OutcomeKind;
    /// assert!(OutcomeKind::Snooze.requeues() && !OutcomeKind::Complete.requeues());
    /// ```
    pub fn requeues(self) -> bool {
        matches!(self, OutcomeKind::FailRetry | OutcomeKind::Snooze)
    }
}

/// True if a store writes this batch of outcomes with one statement: all of
/// one kind, no job twice, and not a kind that puts jobs back in line
/// (see [`OutcomeKind::requeues`]); so it needs no transaction around it.
/// An empty batch needs none either.
///
/// ```
/// use steward_core::store::{Finish, FinishOutcome, JobId, Lease, LeaseToken};
/// use steward_core::store::batch::one_statement;
/// let done = |id| Finish { lease: Lease { id: JobId(id), token: LeaseToken(1) }, outcome: FinishOutcome::Completed };
/// assert!(one_statement(&[done(1), done(2)]));
/// assert!(!one_statement(&[done(1), done(1)]));
/// ```
pub fn one_statement(batch: &[Finish]) -> bool {
    let Some(first) = batch.first() else {
        return true;
    };
    let kind = OutcomeKind::of(&first.outcome);
    !kind.requeues()
        && batch.iter().all(|f| OutcomeKind::of(&f.outcome) == kind)
        && distinct_jobs(batch.iter().map(|f| f.lease))
}
