//! Per-minute history: adding nodes' counts, reading, pruning, and the
//! counts a rescue adds (see `Store::record_history`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use steward_core::store::{
    HistoryCounts, HistoryDelta, HistoryQuery, HistoryRow, RunTimes, group_history, minute_start_ms,
};

use super::Sql;
use super::columns::time_col;
use crate::error::decode_error;

/// Makes sure the row exists, so the lock below always has a row to take.
pub(crate) const ENSURE: &str = "INSERT INTO {schema}.history (minute, queue, kind)
    VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";

/// Locks the row for the merge of its run times: a concurrent writer of the
/// same minute, queue and kind waits here, then merges into what this one
/// wrote (batches lock their rows in key order, so two never deadlock).
pub(crate) const LOCK: &str = "SELECT run_times FROM {schema}.history
    WHERE minute = $1 AND queue = $2 AND kind = $3 FOR UPDATE";

/// Adds counts; `$9` (the merged run times) replaces the row's if given.
pub(crate) const ADD: &str = "INSERT INTO {schema}.history AS h
        (minute, queue, kind, succeeded, failed, retried, cancelled, rescued, run_times)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, ''))
    ON CONFLICT (minute, queue, kind) DO UPDATE SET
        succeeded = h.succeeded + excluded.succeeded,
        failed = h.failed + excluded.failed,
        retried = h.retried + excluded.retried,
        cancelled = h.cancelled + excluded.cancelled,
        rescued = h.rescued + excluded.rescued,
        run_times = coalesce($9, h.run_times)";

/// Rows from the minute holding `now() - $1` µs (in UTC, whatever the
/// session's time zone), filters switched off by `NULL`.
pub(crate) const READ: &str = "SELECT minute, queue, kind, succeeded, failed, retried,
        cancelled, rescued, run_times
    FROM {schema}.history
    WHERE minute >= date_trunc('minute', (now() - $1::bigint * interval '1 microsecond')
            AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        AND ($2::text IS NULL OR queue = $2) AND ($3::text IS NULL OR kind = $3)
    ORDER BY minute, queue, kind";

pub(crate) const PRUNE: &str =
    "DELETE FROM {schema}.history WHERE minute < now() - $1::bigint * interval '1 microsecond'";

/// The database's clock, for filing deltas (constant in a transaction).
const NOW: &str = "SELECT now()";

/// Adds validated deltas, in the caller's transaction.
pub(crate) async fn record(
    conn: &mut PgConnection,
    sql: &Sql,
    deltas: Vec<HistoryDelta>,
) -> Result<(), sqlx::Error> {
    let now: DateTime<Utc> = sqlx::query_scalar(NOW).fetch_one(&mut *conn).await?;
    for ((minute, queue, kind), (counts, mut times)) in
        group_history(deltas, now.timestamp_millis())
    {
        let minute = at(minute)?;
        let merged = if times.count() > 0 {
            sqlx::query(&sql.history_ensure)
                .bind(minute)
                .bind(&queue)
                .bind(&kind)
                .execute(&mut *conn)
                .await?;
            let old: String = sqlx::query_scalar(&sql.history_lock)
                .bind(minute)
                .bind(&queue)
                .bind(&kind)
                .fetch_one(&mut *conn)
                .await?;
            times.merge(&RunTimes::decode(&old).map_err(decode)?);
            Some(times.encode())
        } else {
            None
        };
        add(conn, sql, minute, &queue, &kind, &counts, merged).await?;
    }
    Ok(())
}

/// Adds what a rescue did (see `rescue_tallies`), in its transaction.
pub(crate) async fn add_rescues(
    conn: &mut PgConnection,
    sql: &Sql,
    tallies: BTreeMap<(String, String), HistoryCounts>,
) -> Result<(), sqlx::Error> {
    if tallies.is_empty() {
        return Ok(());
    }
    let now: DateTime<Utc> = sqlx::query_scalar(NOW).fetch_one(&mut *conn).await?;
    let minute = at(minute_start_ms(now.timestamp_millis()))?;
    for ((queue, kind), counts) in tallies {
        add(conn, sql, minute, &queue, &kind, &counts, None).await?;
    }
    Ok(())
}

async fn add(
    conn: &mut PgConnection,
    sql: &Sql,
    minute: DateTime<Utc>,
    queue: &str,
    kind: &str,
    counts: &HistoryCounts,
    run_times: Option<String>,
) -> Result<(), sqlx::Error> {
    // Counts are at most MAX_HISTORY_COUNT (validated), so they fit.
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    sqlx::query(&sql.history_add)
        .bind(minute)
        .bind(queue)
        .bind(kind)
        .bind(n(counts.succeeded))
        .bind(n(counts.failed))
        .bind(n(counts.retried))
        .bind(n(counts.cancelled))
        .bind(n(counts.rescued))
        .bind(run_times)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The rows `query` (validated) asks for; `since_us` is its span in µs.
pub(crate) async fn read(
    conn: &mut PgConnection,
    sql: &Sql,
    since_us: i64,
    query: &HistoryQuery,
) -> Result<Vec<HistoryRow>, sqlx::Error> {
    let rows = sqlx::query(&sql.history_read)
        .bind(since_us)
        .bind(query.queue.as_deref())
        .bind(query.kind.as_deref())
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(row).collect()
}

fn row(row: &PgRow) -> Result<HistoryRow, sqlx::Error> {
    let count = |col: &str| -> Result<u64, sqlx::Error> {
        let v: i64 = row.try_get(col)?;
        u64::try_from(v).map_err(|_| decode(format!("history {col} {v} is negative")))
    };
    let times: String = row.try_get("run_times")?;
    Ok(HistoryRow {
        minute: time_col(row, "minute")?,
        queue: row.try_get("queue")?,
        kind: row.try_get("kind")?,
        counts: HistoryCounts {
            succeeded: count("succeeded")?,
            failed: count("failed")?,
            retried: count("retried")?,
            cancelled: count("cancelled")?,
            rescued: count("rescued")?,
        },
        run_times: RunTimes::decode(&times).map_err(decode)?,
    })
}

/// Deletes minutes that began more than `age_us` µs ago.
pub(crate) async fn prune(
    conn: &mut PgConnection,
    sql: &Sql,
    age_us: i64,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(&sql.history_prune)
        .bind(age_us)
        .execute(&mut *conn)
        .await?;
    Ok(result.rows_affected())
}

fn at(minute_ms: i64) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::from_timestamp_millis(minute_ms)
        .ok_or_else(|| decode(format!("minute {minute_ms} ms is out of range")))
}

fn decode(e: impl ToString) -> sqlx::Error {
    decode_error(e.to_string())
}
