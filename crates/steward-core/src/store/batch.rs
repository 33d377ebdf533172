//! Batching helpers for store implementations: the pure logic every store
//! needs to turn a batch into set-based statements without changing what
//! applying it item by item would mean. No SQL here.

use std::collections::{HashMap, HashSet};

use super::Lease;

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
