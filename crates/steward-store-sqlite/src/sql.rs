//! Small helpers shared by every statement: time conversions, column
//! decoding and transaction control.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Column as _, ColumnIndex, Row, SqliteConnection};
use steward_core::store::StoreError;

use crate::error::{invalid, map_sqlx};

/// The store's clock, in milliseconds since the Unix epoch.
///
/// SQLite has no server: every process on the file shares this machine's
/// clock, so the process clock *is* the database's clock here.
pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// An RFC 3339 timestamp with milliseconds, as `AttemptError::at` is
/// serialized, for errors the SQL writes itself (rescue, cancel).
pub(crate) fn rfc3339_ms(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A duration in whole milliseconds, refused if it does not fit. A non-zero
/// duration shorter than a millisecond counts as one, so it never becomes
/// "no time at all".
pub(crate) fn duration_ms(what: &str, d: Duration) -> Result<i64, StoreError> {
    let ms = i64::try_from(d.as_millis())
        .map_err(|_| invalid(format!("{what} of {d:?} is too long")))?;
    Ok(if ms == 0 && !d.is_zero() { 1 } else { ms })
}

/// The latest and earliest times the store holds: what [`from_ms`] can read
/// back as a `DateTime`. Delays and ages saturate here rather than fail.
const MAX_MS: i64 = DateTime::<Utc>::MAX_UTC.timestamp_millis();
const MIN_MS: i64 = DateTime::<Utc>::MIN_UTC.timestamp_millis();

/// A delay or age in whole milliseconds, saturating instead of failing on
/// absurd ones; a non-zero one shorter than a millisecond counts as one (so
/// "later" never becomes "now").
fn saturating_ms(d: Duration) -> i64 {
    let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if ms == 0 && !d.is_zero() { 1 } else { ms }
}

/// `now + d` on the store's clock, clamped to the latest time it holds.
pub(crate) fn later_ms(now: i64, d: Duration) -> i64 {
    now.saturating_add(saturating_ms(d)).min(MAX_MS)
}

/// `now - d` on the store's clock, clamped to the earliest time it holds.
pub(crate) fn earlier_ms(now: i64, d: Duration) -> i64 {
    now.saturating_sub(saturating_ms(d)).max(MIN_MS)
}

/// The earliest time a job may have (`EARLIEST_TIME`), in milliseconds.
pub(crate) fn earliest_ms() -> i64 {
    steward_core::store::EARLIEST_TIME.timestamp_millis()
}

/// A span to move times back by, in whole milliseconds (a non-zero one
/// under a millisecond counts as one), capped at the whole range of times a
/// job may have: more would saturate anyway, and the cap keeps `time - span`
/// far from overflowing.
pub(crate) fn span_ms(d: Duration) -> i64 {
    let range = steward_core::store::LATEST_TIME.timestamp_millis() - earliest_ms();
    saturating_ms(d).min(range)
}

/// A decoding error for a value the schema should never hold.
pub(crate) fn decode_error(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

/// A column of a row, by name or by position: the hot reads (a claim's
/// jobs) go by position, since looking a name up hashes it on every read.
pub(crate) trait Col: ColumnIndex<SqliteRow> + Copy {}
impl<I: ColumnIndex<SqliteRow> + Copy> Col for I {}

/// The column's name, for error messages.
fn column_name(row: &SqliteRow, column: impl Col) -> String {
    column
        .index(row)
        .ok()
        .and_then(|i| row.columns().get(i))
        .map_or_else(|| "?".to_string(), |c| c.name().to_string())
}

/// A non-negative INTEGER column as `u32`.
pub(crate) fn u32_col(row: &SqliteRow, column: impl Col) -> Result<u32, sqlx::Error> {
    let v: i64 = row.try_get(column)?;
    u32::try_from(v).map_err(|_| {
        decode_error(format!(
            "column {} = {v} is not a u32",
            column_name(row, column)
        ))
    })
}

/// A millisecond column as a `DateTime`; a value outside what `chrono`
/// holds is an error naming the column.
pub(crate) fn time_col(row: &SqliteRow, column: impl Col) -> Result<DateTime<Utc>, sqlx::Error> {
    opt_time_col(row, column)?
        .ok_or_else(|| decode_error(format!("column {} is NULL", column_name(row, column))))
}

/// A nullable millisecond column as an optional `DateTime`.
pub(crate) fn opt_time_col(
    row: &SqliteRow,
    column: impl Col,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let v: Option<i64> = row.try_get(column)?;
    v.map(|ms| {
        DateTime::from_timestamp_millis(ms).ok_or_else(|| {
            decode_error(format!(
                "column {} holds {ms} ms: out of range",
                column_name(row, column)
            ))
        })
    })
    .transpose()
}

/// A nullable millisecond column as an optional `Duration`.
pub(crate) fn duration_col(
    row: &SqliteRow,
    column: impl Col,
) -> Result<Option<Duration>, sqlx::Error> {
    let v: Option<i64> = row.try_get(column)?;
    Ok(v.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))))
}

/// Starts a write transaction that takes the write lock at once, so a busy
/// database fails here (after `busy_timeout`) rather than half-way through.
pub(crate) async fn begin_immediate(
    conn: &mut SqliteConnection,
    file: &str,
) -> Result<(), StoreError> {
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *conn)
        .await
        .map(drop)
        .map_err(|e| map_sqlx(e, file))
}

/// Commits the open transaction. On failure the transaction is rolled back
/// so the connection is usable again.
pub(crate) async fn commit(conn: &mut SqliteConnection, file: &str) -> Result<(), StoreError> {
    match sqlx::query("COMMIT").execute(&mut *conn).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let err = map_sqlx(e, file);
            rollback(conn, file).await;
            Err(err)
        }
    }
}

/// Rolls back the open transaction, if any. A failure here is only logged:
/// SQLite may already have rolled back by itself (after an I/O error, say),
/// and the caller is reporting the error that brought it here.
pub(crate) async fn rollback(conn: &mut SqliteConnection, file: &str) {
    if let Err(e) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
        // "no transaction is active" is the expected case after SQLite's own
        // automatic rollback; anything else is worth a line in the log.
        if !e.to_string().contains("no transaction is active") {
            tracing::warn!(file, error = %e, "rollback failed");
        }
    }
}

/// The store's clock as a statement that writes a lease reads it: SQLite's
/// own `now` (milliseconds since the epoch), which a statement reads once,
/// after it holds the write lock, never earlier than `?1` (the writer's
/// clock before the statement, which never goes back). A lone claim,
/// heartbeat or leadership renewal runs in autocommit mode, where it may
/// wait for the lock inside the statement (another process writing): a
/// clock read before that wait would write a lease shorter than asked.
/// `julianday` rather than `unixepoch('subsec')`: the same millisecond
/// clock, on every SQLite version.
macro_rules! clock_cte {
    () => {
        "WITH clock(now) AS (SELECT max(CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER), ?1))"
    };
}
pub(crate) use clock_cte;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_millisecond_durations_round_up_to_one() {
        assert_eq!(
            duration_ms("lease", Duration::from_micros(10)).ok(),
            Some(1)
        );
        assert_eq!(duration_ms("lease", Duration::ZERO).ok(), Some(0));
        assert_eq!(
            duration_ms("lease", Duration::from_secs(2)).ok(),
            Some(2000)
        );
        assert!(duration_ms("lease", Duration::MAX).is_err());
    }

    #[test]
    fn absurd_delays_and_ages_saturate_at_readable_times() {
        let now = 1_700_000_000_000;
        assert_eq!(later_ms(now, Duration::ZERO), now);
        assert_eq!(later_ms(now, Duration::from_micros(1)), now + 1);
        assert_eq!(later_ms(now, Duration::from_secs(2)), now + 2000);
        assert!(DateTime::from_timestamp_millis(later_ms(now, Duration::MAX)).is_some());
        assert_eq!(earlier_ms(now, Duration::from_secs(2)), now - 2000);
        assert!(DateTime::from_timestamp_millis(earlier_ms(now, Duration::MAX)).is_some());
    }

    #[test]
    fn rfc3339_round_trips_through_serde() {
        let text = rfc3339_ms(1_700_000_000_123);
        let parsed: DateTime<Utc> = serde_json::from_value(serde_json::json!(text))
            .expect("the stored time text is RFC 3339");
        assert_eq!(parsed.timestamp_millis(), 1_700_000_000_123);
    }

    /// A column read by position still names itself in errors: a poison
    /// value must say which column holds it.
    #[tokio::test]
    async fn errors_name_a_column_read_by_position() {
        use sqlx::Connection as _;
        let mut conn = SqliteConnection::connect("sqlite::memory:")
            .await
            .expect("open");
        let row = sqlx::query("SELECT 1 AS id, 9223372036854775807 AS created_at, -1 AS attempt")
            .fetch_one(&mut conn)
            .await
            .expect("row");
        let err = time_col(&row, 1).expect_err("out of range");
        assert!(err.to_string().contains("column created_at holds"), "{err}");
        let err = u32_col(&row, 2).expect_err("negative");
        assert!(err.to_string().contains("column attempt = -1"), "{err}");
        assert!(time_col(&row, "created_at").is_err());
    }
}
