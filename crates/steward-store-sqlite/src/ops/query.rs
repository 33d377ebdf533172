//! `jobs(query)`: a page of jobs by any filter, in either order, on the
//! read pool.
//!
//! The statement is built from the filters given (each value a bound
//! parameter, never SQL text): a filter not given is left out of the
//! WHERE clause instead of switched off by a `? IS NULL` test, so SQLite
//! plans each shape for what it really asks. There are a few dozen
//! shapes at most; the connection's statement cache keeps them prepared.
//!
//! How each shape finds its page (times: docs/performance.md, issue 14):
//! - Every page walks the primary key (the rowid) from the cursor, up or
//!   down, testing the filters on each row until the page is full. An
//!   unfiltered page, or one whose filter matches many jobs, reads about a
//!   page of rows.
//! - `kind` and `queue` never change after insert: their indexes
//!   (migration 0008) cost only at enqueue and prune, and find a kind or
//!   queue with few jobs among millions without walking the table (each
//!   ends with the rowid, so it walks in id order for the page).
//! - `created_at` grows with the id (both set at insert): a recent range
//!   is met first newest first, an old one first oldest first. No index:
//!   it would cost every enqueue for the rarer middle window.
//! - `state`, `run_at` and `finished_at` change at every transition of
//!   every job; an index on them would cost a write at each claim and
//!   completion (measured: about a fifth of their throughput), so they are
//!   tested on the rows walked. Dashboards ask for recent finished jobs,
//!   which a newest-first walk meets first.
//! - The error text is a substring of a JSON field: no index helps; it is
//!   tested on the rows walked (after the cheaper filters).

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use steward_core::store::{JobOrder, JobQuery, JobRecord, TimeBound, TimeRange};

use super::read::{JOB_COLUMNS, decode};
use crate::sql::now_ms;

/// The jobs `query` (already validated) selects, in its order.
pub(crate) async fn jobs(
    conn: &mut SqliteConnection,
    query: &JobQuery,
) -> Result<Vec<JobRecord>, sqlx::Error> {
    let now = now_ms();
    let mut sql = QueryBuilder::<Sqlite>::new("SELECT ");
    sql.push(JOB_COLUMNS).push(" FROM steward_jobs WHERE 1");
    if let Some(after) = query.after {
        let op = match query.order {
            JobOrder::OldestFirst => " AND id > ",
            JobOrder::NewestFirst => " AND id < ",
        };
        sql.push(op).push_bind(after.0);
    }
    if let Some(min) = query.min_id {
        sql.push(" AND id >= ").push_bind(min.0);
    }
    if let Some(max) = query.max_id {
        sql.push(" AND id <= ").push_bind(max.0);
    }
    if !query.states.is_empty() {
        sql.push(" AND state IN (");
        let mut states = sql.separated(", ");
        for state in &query.states {
            states.push_bind(state.as_str());
        }
        sql.push(")");
    }
    if let Some(queue) = &query.queue {
        sql.push(" AND queue = ").push_bind(queue.clone());
    }
    if let Some(kind) = &query.kind {
        sql.push(" AND kind = ").push_bind(kind.clone());
    }
    range(&mut sql, "created_at", &query.created, now);
    range(&mut sql, "run_at", &query.run_at, now);
    range(&mut sql, "finished_at", &query.finished, now);
    if let Some(text) = &query.error {
        // instr, not LIKE: the text's `%`, `_` and `\` are plain characters
        // with no escaping to get wrong. SQLite's lower() folds ASCII only,
        // the contract's promise.
        sql.push(" AND instr(lower(json_extract(errors, '$[#-1].message')), lower(")
            .push_bind(text.clone())
            .push(")) > 0");
    }
    sql.push(match query.order {
        JobOrder::OldestFirst => " ORDER BY id LIMIT ",
        JobOrder::NewestFirst => " ORDER BY id DESC LIMIT ",
    });
    sql.push_bind(i64::from(query.limit));
    let rows = sql.build().fetch_all(&mut *conn).await?;
    rows.iter().map(decode).collect()
}

/// `column` within `range`: `from` inclusive, `to` exclusive.
fn range(sql: &mut QueryBuilder<'_, Sqlite>, column: &str, range: &TimeRange, now: i64) {
    if let Some(from) = range.from {
        sql.push(format_args!(" AND {column} >= "))
            .push_bind(bound_ms(from, now));
    }
    if let Some(to) = range.to {
        sql.push(format_args!(" AND {column} < "))
            .push_bind(bound_ms(to, now));
    }
}

/// A bound in the column's whole milliseconds, rounded up: for a time `t`
/// in whole milliseconds, `t >= b` exactly when `t >= ceil(b)`, and
/// `t < b` exactly when `t < ceil(b)`.
fn bound_ms(bound: TimeBound, now: i64) -> i64 {
    let now = chrono::DateTime::from_timestamp_millis(now).unwrap_or_default();
    let at = bound.resolve(now);
    let ms = at.timestamp_millis();
    if at.timestamp_subsec_nanos() % 1_000_000 == 0 {
        ms
    } else {
        ms.saturating_add(1)
    }
}
