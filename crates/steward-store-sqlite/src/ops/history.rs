//! Per-minute history: adding nodes' counts, reading, pruning, and the
//! counts a rescue adds (see `Store::record_history`).

use sqlx::{Row, SqliteConnection};
use steward_core::store::{
    HistoryCounts, HistoryDelta, HistoryQuery, HistoryRow, RunTimes, group_history, minute_start_ms,
};

use crate::sql::{decode_error, earlier_ms, time_col};

/// Adds one row's counts; run times are merged in Rust and written whole
/// (the writer is the only one, so the read before it cannot go stale).
const ADD: &str = "INSERT INTO steward_history
        (minute, queue, kind, succeeded, failed, retried, cancelled, rescued, run_times)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
    ON CONFLICT (minute, queue, kind) DO UPDATE SET
        succeeded = succeeded + excluded.succeeded,
        failed = failed + excluded.failed,
        retried = retried + excluded.retried,
        cancelled = cancelled + excluded.cancelled,
        rescued = rescued + excluded.rescued,
        run_times = excluded.run_times";

/// [`ADD`] for counts only (a rescue's): the row's run times are kept.
const ADD_COUNTS: &str = "INSERT INTO steward_history
        (minute, queue, kind, succeeded, failed, retried, cancelled, rescued)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
    ON CONFLICT (minute, queue, kind) DO UPDATE SET
        succeeded = succeeded + excluded.succeeded,
        failed = failed + excluded.failed,
        retried = retried + excluded.retried,
        cancelled = cancelled + excluded.cancelled,
        rescued = rescued + excluded.rescued";

const RUN_TIMES: &str =
    "SELECT run_times FROM steward_history WHERE minute = ?1 AND queue = ?2 AND kind = ?3";

/// Every filter a bound parameter that switches itself off when `NULL`.
const READ: &str = "SELECT minute, queue, kind, succeeded, failed, retried, cancelled, rescued,
        run_times
    FROM steward_history
    WHERE minute >= ?1 AND (?2 IS NULL OR queue = ?2) AND (?3 IS NULL OR kind = ?3)
    ORDER BY minute, queue, kind";

/// Adds validated deltas, filed by the store's `now`.
pub(crate) async fn record(
    conn: &mut SqliteConnection,
    now: i64,
    deltas: Vec<HistoryDelta>,
) -> Result<(), sqlx::Error> {
    for ((minute, queue, kind), (counts, mut times)) in group_history(deltas, now) {
        if times.count() > 0 {
            let old: Option<String> = sqlx::query_scalar(RUN_TIMES)
                .bind(minute)
                .bind(&queue)
                .bind(&kind)
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(old) = old {
                let old = RunTimes::decode(&old).map_err(|e| decode_error(e.to_string()))?;
                times.merge(&old);
            }
        }
        add(conn, minute, &queue, &kind, &counts, Some(&times)).await?;
    }
    Ok(())
}

/// Adds `counts` to one row; `times` replaces its run times if given.
pub(crate) async fn add(
    conn: &mut SqliteConnection,
    minute: i64,
    queue: &str,
    kind: &str,
    counts: &HistoryCounts,
    times: Option<&RunTimes>,
) -> Result<(), sqlx::Error> {
    // Counts are at most MAX_HISTORY_COUNT (validated), so they fit.
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let statement = if times.is_some() { ADD } else { ADD_COUNTS };
    let mut query = sqlx::query(statement)
        .bind(minute)
        .bind(queue)
        .bind(kind)
        .bind(n(counts.succeeded))
        .bind(n(counts.failed))
        .bind(n(counts.retried))
        .bind(n(counts.cancelled))
        .bind(n(counts.rescued));
    if let Some(times) = times {
        query = query.bind(times.encode());
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// The rows `query` (validated) asks for, by the store's `now`.
pub(crate) async fn read(
    conn: &mut SqliteConnection,
    now: i64,
    query: &HistoryQuery,
) -> Result<Vec<HistoryRow>, sqlx::Error> {
    let from = minute_start_ms(earlier_ms(now, query.since));
    let rows = sqlx::query(READ)
        .bind(from)
        .bind(query.queue.as_deref())
        .bind(query.kind.as_deref())
        .fetch_all(&mut *conn)
        .await?;
    let count = |row: &sqlx::sqlite::SqliteRow, col: &str| -> Result<u64, sqlx::Error> {
        let v: i64 = row.try_get(col)?;
        u64::try_from(v).map_err(|_| decode_error(format!("history {col} {v} is negative")))
    };
    rows.iter()
        .map(|row| {
            let times: String = row.try_get("run_times")?;
            Ok(HistoryRow {
                minute: time_col(row, "minute")?,
                queue: row.try_get("queue")?,
                kind: row.try_get("kind")?,
                counts: HistoryCounts {
                    succeeded: count(row, "succeeded")?,
                    failed: count(row, "failed")?,
                    retried: count(row, "retried")?,
                    cancelled: count(row, "cancelled")?,
                    rescued: count(row, "rescued")?,
                },
                run_times: RunTimes::decode(&times).map_err(|e| decode_error(e.to_string()))?,
            })
        })
        .collect()
}

/// Deletes minutes that began before `now - older_than`.
pub(crate) async fn prune(
    conn: &mut SqliteConnection,
    now: i64,
    older_than: std::time::Duration,
) -> Result<u64, sqlx::Error> {
    let result = sqlx::query("DELETE FROM steward_history WHERE minute < ?1")
        .bind(earlier_ms(now, older_than))
        .execute(&mut *conn)
        .await?;
    Ok(result.rows_affected())
}
