//! `jobs(query)` for the memory store: the filter as plain Rust, the
//! statement of what the SQL stores must return.

use std::ops::Bound;

use chrono::{DateTime, Utc};
use steward_core::store::{JobId, JobOrder, JobQuery, JobRecord};

use super::row::Row;

/// Whether `r` passes every filter of `query` when the clock reads `now`.
fn matches(query: &JobQuery, r: &JobRecord, now: DateTime<Utc>) -> bool {
    (query.states.is_empty() || query.states.contains(&r.state))
        && query.queue.as_ref().is_none_or(|q| *q == r.queue)
        && query.kind.as_ref().is_none_or(|k| *k == r.kind)
        && query.created.contains(r.created_at, now)
        && query.run_at.contains(r.run_at, now)
        && (query.finished == Default::default()
            || r.finished_at
                .is_some_and(|at| query.finished.contains(at, now)))
        && query.min_id.is_none_or(|min| r.id >= min)
        && query.max_id.is_none_or(|max| r.id <= max)
        && query.error.as_ref().is_none_or(|text| {
            // ASCII case only: the promise every store keeps.
            r.errors.last().is_some_and(|e| {
                e.message
                    .to_ascii_lowercase()
                    .contains(&text.to_ascii_lowercase())
            })
        })
}

/// The page `query` (validated) selects from `rows`, ordered by id.
pub(super) fn page<'a>(
    rows: impl DoubleEndedIterator<Item = (&'a JobId, &'a Row)>,
    query: &JobQuery,
    now: DateTime<Utc>,
) -> Vec<JobRecord> {
    let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
    let keep = |r: &&JobRecord| matches(query, r, now);
    let records = rows.map(|(_, row)| &row.record);
    match query.order {
        JobOrder::OldestFirst => records.filter(keep).take(limit).cloned().collect(),
        JobOrder::NewestFirst => records.rev().filter(keep).take(limit).cloned().collect(),
    }
}

/// The ids past the cursor, in either order: the keyset bound.
pub(super) fn past(query: &JobQuery) -> (Bound<JobId>, Bound<JobId>) {
    match (query.order, query.after) {
        (_, None) => (Bound::Unbounded, Bound::Unbounded),
        (JobOrder::OldestFirst, Some(id)) => (Bound::Excluded(id), Bound::Unbounded),
        (JobOrder::NewestFirst, Some(id)) => (Bound::Unbounded, Bound::Excluded(id)),
    }
}
