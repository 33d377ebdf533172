//! `jobs(query)`: a page of jobs by any filter, in either order.
//!
//! The statement is built from the filters given (each value a bound
//! parameter, never SQL text): a filter not given is left out instead of
//! switched off by a `$n IS NULL` test, which a plan made without the
//! values could not fold away, and so could never use an index for. It
//! runs unprepared (see `jobs`), planned for the values given.
//!
//! How each shape finds its page (times: docs/performance.md, issue 14):
//! - Every page can walk the primary key from the cursor, up or down,
//!   testing the filters on each row until the page is full. An unfiltered
//!   page, or one whose filter matches many jobs, reads about a page.
//! - `kind` and `queue` never change after insert: their `(kind, id)` and
//!   `(queue, id)` indexes (migration 0009) cost only at enqueue and
//!   prune, and walk one kind's or queue's jobs in id order for the page.
//! - `created_at` grows with the id (both set at insert): a recent range
//!   is met first newest first, an old one first oldest first. No index:
//!   it would cost every enqueue for the rarer middle window.
//! - `state`, `run_at` and `finished_at` change at every transition of
//!   every job; an index on them would cost a write at each claim and
//!   completion (and end HOT updates), so they are tested on the rows
//!   walked. Dashboards ask for recent finished jobs, which a newest-first
//!   walk meets first.
//! - The error text is a substring of a JSON field: no index helps; it is
//!   tested on the rows walked.
//! - Ages (`TimeBound::Ago`) are taken from the database's `now()`.

use sqlx::{PgConnection, Postgres, QueryBuilder};
use steward_core::store::{JobOrder, JobQuery, JobRecord, TimeBound, TimeRange};

use super::Sql;
use super::read::decode;

/// The jobs `query` (already validated) selects, in its order.
pub(crate) async fn jobs(
    conn: &mut PgConnection,
    sql: &Sql,
    query: &JobQuery,
) -> Result<Vec<JobRecord>, sqlx::Error> {
    let mut b = QueryBuilder::<Postgres>::new(&sql.jobs);
    if let Some(after) = query.after {
        let op = match query.order {
            JobOrder::OldestFirst => " AND id > ",
            JobOrder::NewestFirst => " AND id < ",
        };
        b.push(op).push_bind(after.0);
    }
    if let Some(min) = query.min_id {
        b.push(" AND id >= ").push_bind(min.0);
    }
    if let Some(max) = query.max_id {
        b.push(" AND id <= ").push_bind(max.0);
    }
    if !query.states.is_empty() {
        let states: Vec<String> = query
            .states
            .iter()
            .map(|s| s.as_str().to_string())
            .collect();
        b.push(" AND state = ANY(")
            .push_bind(states)
            .push("::text[])");
    }
    if let Some(queue) = &query.queue {
        b.push(" AND queue = ").push_bind(queue.clone());
    }
    if let Some(kind) = &query.kind {
        b.push(" AND kind = ").push_bind(kind.clone());
    }
    range(&mut b, "created_at", &query.created);
    range(&mut b, "run_at", &query.run_at);
    range(&mut b, "finished_at", &query.finished);
    if let Some(text) = &query.error {
        // strpos, not LIKE: the text's `%`, `_` and `\` are plain
        // characters with no escaping to get wrong.
        b.push(" AND strpos(lower(errors->-1->>'message'), lower(")
            .push_bind(text.clone())
            .push("::text)) > 0");
    }
    b.push(match query.order {
        JobOrder::OldestFirst => " ORDER BY id LIMIT ",
        JobOrder::NewestFirst => " ORDER BY id DESC LIMIT ",
    });
    b.push_bind(i64::from(query.limit));
    // Not a named prepared statement: PostgreSQL plans an unnamed one for
    // the values bound each time. A named one switches to a generic plan
    // after five runs, which cannot tell a rare kind from a common one:
    // measured on 1,000,050 jobs, after five pages of common kinds a rare
    // kind's page walked the primary key for 1.7 s instead of 1 ms on its
    // index. Parsing the statement again costs far less.
    let rows = b.build().persistent(false).fetch_all(&mut *conn).await?;
    rows.iter().map(decode).collect()
}

/// `column` within `range`: `from` inclusive, `to` exclusive.
fn range(b: &mut QueryBuilder<'_, Postgres>, column: &str, range: &TimeRange) {
    for (bound, op) in [(range.from, ">="), (range.to, "<")] {
        match bound {
            None => {}
            Some(TimeBound::At(at)) => {
                b.push(format_args!(" AND {column} {op} "))
                    .push_bind(at)
                    .push("::timestamptz");
            }
            Some(TimeBound::Ago(age)) => {
                // Validated: at most MAX_AGO, whose microseconds fit.
                let micros = i64::try_from(age.as_micros()).unwrap_or(i64::MAX);
                b.push(format_args!(" AND {column} {op} now() - "))
                    .push_bind(micros)
                    .push("::bigint * interval '1 microsecond'");
            }
        }
    }
}
