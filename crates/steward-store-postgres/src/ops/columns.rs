//! Reading columns whose values the schema allows but Rust types may not
//! hold, as errors that name the column rather than panics.
//!
//! `sqlx` decodes a `timestamptz` by adding its microseconds to 2000-01-01
//! with `chrono`'s panicking `+`, so `infinity`, `-infinity` or a year past
//! 262143 in a row would panic whichever task reads it (a worker's claim
//! loop, a CLI's `jobs show`). Times are decoded here with checked
//! arithmetic instead. The table refuses such values since migration 0004,
//! but rows written before it may still hold one.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::postgres::{PgRow, PgValueFormat};
use sqlx::{Row, ValueRef as _};

use crate::error::decode_error;

/// A non-negative integer column as `u32`.
pub(crate) fn u32_col(row: &PgRow, column: &str) -> Result<u32, sqlx::Error> {
    let v: i32 = row.try_get(column)?;
    u32::try_from(v).map_err(|_| decode_error(format!("column {column} = {v} is not a u32")))
}

/// A nullable millisecond column as an optional `Duration`.
pub(crate) fn duration_col(row: &PgRow, column: &str) -> Result<Option<Duration>, sqlx::Error> {
    let v: Option<i64> = row.try_get(column)?;
    Ok(v.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0))))
}

/// A `timestamptz NOT NULL` column.
pub(crate) fn time_col(row: &PgRow, column: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    opt_time_col(row, column)?.ok_or_else(|| decode_error(format!("column {column} is NULL")))
}

/// A nullable `timestamptz` column.
pub(crate) fn opt_time_col(
    row: &PgRow,
    column: &str,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let raw = row.try_get_raw(column)?;
    if raw.is_null() {
        return Ok(None);
    }
    if raw.format() != PgValueFormat::Binary {
        // Text is parsed, which fails cleanly on any value out of range.
        return row.try_get(column);
    }
    let bytes: [u8; 8] = raw
        .as_bytes()
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| decode_error(format!("column {column} is not an 8-byte timestamptz")))?;
    from_pg_micros(i64::from_be_bytes(bytes))
        .map(Some)
        .map_err(|value| decode_error(format!("column {column} holds {value}: out of range")))
}

/// PostgreSQL's binary `timestamptz`: microseconds since 2000-01-01 UTC, with
/// `i64::MAX` and `i64::MIN` for `infinity` and `-infinity`. Err describes a
/// value `chrono` cannot hold.
fn from_pg_micros(us: i64) -> Result<DateTime<Utc>, String> {
    match us {
        i64::MAX => return Err("infinity".into()),
        i64::MIN => return Err("-infinity".into()),
        _ => {}
    }
    DateTime::from_timestamp(946_684_800, 0)
        .and_then(|epoch| epoch.checked_add_signed(TimeDelta::microseconds(us)))
        .ok_or_else(|| format!("a time {us} µs from 2000-01-01, beyond any year a worker can read"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infinities_and_far_years_are_errors_and_ordinary_times_read() {
        assert_eq!(from_pg_micros(i64::MAX), Err("infinity".into()));
        assert_eq!(from_pg_micros(i64::MIN), Err("-infinity".into()));
        assert!(from_pg_micros(i64::MAX - 1).is_err());
        assert_eq!(
            from_pg_micros(1_000_000).map(|t| t.to_rfc3339()),
            Ok("2000-01-01T00:00:01+00:00".into())
        );
    }
}
