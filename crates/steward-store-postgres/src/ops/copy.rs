//! Large batches of plain jobs by `COPY … FROM STDIN (FORMAT binary)`.
//!
//! Why not the `INSERT … SELECT FROM unnest(…)` that smaller batches use:
//! for 100,000 jobs PostgreSQL spends about a third of that statement
//! outside the insert (unnesting the arrays into a tuplestore that spills to
//! disk, then sorting the rows back into the batch's order), and the insert
//! writes one WAL record per row. `COPY` inserts heap rows a page at a time
//! and needs neither step (`docs/performance.md` has the figures).
//!
//! `COPY` computes nothing, so what the `INSERT` computes comes first, from
//! one statement in the same transaction ([`PREPARE`]):
//! - the ids, drawn from the identity column's sequence (`COPY` writes the
//!   given values into an identity column, as `OVERRIDING SYSTEM VALUE`
//!   would), assigned in the batch's order as the `INSERT` numbers them.
//!   Drawing them directly needs `USAGE` on the sequence, which the
//!   `INSERT` does not (an identity column's own default skips that
//!   check): a role without it gets no ids, and the batch goes by `INSERT`;
//! - `now()`, the transaction's start time: the very value the `INSERT`
//!   would read, so each job's `run_at` and state are the ones the SQL
//!   would have written, on the database's clock.
//!
//! The binary format is written by hand (a few lines per type) because sqlx
//! offers the raw `COPY` stream but no row encoder for it.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgConnection;
use steward_core::store::{Enqueued, JobId, NewJob};

use super::Sql;
use crate::clock::When;
use crate::error::decode_error;
use crate::ops::enqueue::{attempts, first_run, payload_version, timeout_ms};

/// Plain runs of at least this many jobs go by `COPY`. Below it the two
/// extra round trips cost more than `COPY` saves (the single `INSERT` is
/// one round trip).
pub(crate) const MIN_JOBS: usize = 512;

/// The transaction's `now()` and `$1` fresh ids, in one round trip; no ids
/// (`NULL`) if this role may not draw them. The sequence is looked up by
/// its column, not by its name, and once (`MATERIALIZED`: inlined, the
/// lookup ran for every id, 300 ms instead of 38 ms for 100,000).
pub(crate) const PREPARE: &str = "WITH s AS MATERIALIZED (
         SELECT pg_get_serial_sequence('{schema}.jobs', 'id')::regclass AS seq)
     SELECT now(), CASE WHEN has_sequence_privilege(s.seq, 'USAGE')
         THEN array(SELECT nextval(s.seq) FROM generate_series(1, $1::int)) END
     FROM s";

/// The columns the batch writes; the rest take their defaults, as with the
/// `INSERT`.
pub(crate) const COPY: &str = "COPY {schema}.jobs (id, kind, queue, payload, priority, state,
     max_attempts, run_at, timeout_ms, payload_version) FROM STDIN (FORMAT binary)";

/// Bytes collected before each send: big enough that the per-message cost
/// vanishes, small enough that a huge batch is not held encoded whole.
const CHUNK: usize = 1 << 20;

/// `'9999-12-31 23:59:59.999999+00'`, where the SQL caps `now() + delay`
/// (`clock::LATEST`); a test checks that the two agree.
fn latest() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(253_402_300_799_999_999).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Inserts validated jobs without unique keys by `COPY`, appending their ids
/// to `out` in the batch's order, and returns `true`; returns `false`,
/// having written nothing, if this role may not draw ids (see the module).
/// Runs inside the store's own transaction: the ids and `now()` come from a
/// statement before the `COPY`. Never on a caller's connection: sqlx's
/// `COPY` is not cancel-safe, and a caller's future dropped half-way
/// through it would leave their connection out of step with the server and
/// their transaction lost (a pooled connection of the store's own is
/// discarded by the pool instead).
pub(crate) async fn insert(
    conn: &mut PgConnection,
    sql: &Sql,
    jobs: &[NewJob],
    out: &mut Vec<Enqueued>,
) -> Result<bool, sqlx::Error> {
    let n = i32::try_from(jobs.len())
        .map_err(|_| decode_error(format!("a batch of {} jobs is too large", jobs.len())))?;
    let (now, ids): (DateTime<Utc>, Option<Vec<i64>>) = sqlx::query_as(&sql.copy_prepare)
        .bind(n)
        .fetch_one(&mut *conn)
        .await?;
    let Some(mut ids) = ids else {
        return Ok(false);
    };
    if ids.len() != jobs.len() {
        return Err(decode_error(format!(
            "drew {} ids for {} jobs",
            ids.len(),
            jobs.len()
        )));
    }
    // The sequence hands out increasing values; sorted, they number the
    // batch in order, as the `INSERT`'s identity column does.
    ids.sort_unstable();

    let mut copy = conn.copy_in_raw(&sql.copy).await?;
    let mut buf = Vec::with_capacity(CHUNK + 4096);
    buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buf.extend_from_slice(&0_i32.to_be_bytes()); // flags
    buf.extend_from_slice(&0_i32.to_be_bytes()); // header extension length
    for (job, id) in jobs.iter().zip(&ids) {
        if let Err(e) = row(&mut buf, job, *id, now) {
            copy.abort(e.to_string()).await?;
            return Err(e);
        }
        if buf.len() >= CHUNK {
            copy.send(buf.as_slice()).await?;
            buf.clear();
        }
    }
    buf.extend_from_slice(&(-1_i16).to_be_bytes()); // trailer
    copy.send(buf.as_slice()).await?;
    let written = copy.finish().await?;
    if written != jobs.len() as u64 {
        return Err(decode_error(format!(
            "copied {written} rows, expected {}",
            jobs.len()
        )));
    }
    out.extend(ids.into_iter().map(|id| Enqueued {
        id: JobId(id),
        duplicate: false,
    }));
    Ok(true)
}

/// Appends one job as a binary `COPY` tuple: a field count, then each field
/// as its length and its bytes in the type's binary form (-1: `NULL`).
fn row(buf: &mut Vec<u8>, job: &NewJob, id: i64, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let (run_at, state) = timing(job, now)?;
    buf.extend_from_slice(&10_i16.to_be_bytes());
    field(buf, &[&id.to_be_bytes()])?;
    field(buf, &[job.kind.as_bytes()])?;
    field(buf, &[job.queue.as_bytes()])?;
    // jsonb's binary form: a version byte, then the JSON text.
    field(buf, &[&[1], job.payload.as_bytes()])?;
    field(buf, &[&job.priority.to_be_bytes()])?;
    field(buf, &[state.as_bytes()])?;
    field(buf, &[&attempts(job)?.to_be_bytes()])?;
    field(buf, &[&run_at.to_be_bytes()])?;
    match job.timeout.and_then(|t| timeout_ms(t).ok()) {
        Some(ms) => field(buf, &[&ms.to_be_bytes()])?,
        None => buf.extend_from_slice(&(-1_i32).to_be_bytes()),
    }
    field(buf, &[&payload_version(job)?.to_be_bytes()])?;
    Ok(())
}

/// A job's `run_at` as stored (PostgreSQL's microseconds, see
/// [`pg_micros`]) and its first state, as the `INSERT` computes them with
/// the transaction's `now()`.
fn timing(job: &NewJob, now: DateTime<Utc>) -> Result<(i64, &'static str), sqlx::Error> {
    let run_at = match first_run(job)? {
        When::At(at) => at,
        When::AfterMicros(us) => now
            .checked_add_signed(TimeDelta::microseconds(us))
            .map_or(latest(), |t| t.min(latest())),
    };
    // Compared as stored (whole microseconds), as the `INSERT` compares
    // the bound value with `now()`: a `run_at` less than a microsecond
    // after now is due now.
    let run_at = pg_micros(run_at);
    let state = if run_at > pg_micros(now) {
        "scheduled"
    } else {
        "available"
    };
    Ok((run_at, state))
}

/// One non-`NULL` field: its length, then its bytes (given in parts).
fn field(buf: &mut Vec<u8>, parts: &[&[u8]]) -> Result<(), sqlx::Error> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let len = i32::try_from(len)
        .map_err(|_| decode_error(format!("a field of {len} bytes is too large to copy")))?;
    buf.extend_from_slice(&len.to_be_bytes());
    for part in parts {
        buf.extend_from_slice(part);
    }
    Ok(())
}

/// A `timestamptz` in PostgreSQL's binary form: microseconds since
/// 2000-01-01 00:00:00 UTC, a fraction cut towards that epoch as sqlx
/// encodes a bound `DateTime` (so both insert paths store the same value).
fn pg_micros(t: DateTime<Utc>) -> i64 {
    let epoch = DateTime::from_timestamp(946_684_800, 0).unwrap_or(DateTime::<Utc>::MIN_UTC);
    // Every `DateTime` is within ±263,000 years of 2000: it fits.
    (t - epoch).num_microseconds().unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_is_the_sqls_cap() {
        assert_eq!(
            latest().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "9999-12-31T23:59:59.999999Z"
        );
        assert!(crate::clock::LATEST.contains("9999-12-31 23:59:59.999999+00"));
    }

    #[test]
    fn state_and_run_at_are_judged_as_stored() {
        let now = DateTime::parse_from_rfc3339("2026-11-26T12:00:00.123456Z")
            .expect("a valid time")
            .with_timezone(&Utc);
        let at = |d: TimeDelta| NewJob::new("k", "{}").run_at(now + d);
        let after = |d: std::time::Duration| NewJob::new("k", "{}").delay(d);
        let state = |job: NewJob| timing(&job, now).expect("timing").1;
        assert_eq!(state(at(TimeDelta::zero())), "available");
        assert_eq!(
            state(at(TimeDelta::nanoseconds(500))),
            "available",
            "cut to now"
        );
        assert_eq!(state(at(TimeDelta::microseconds(1))), "scheduled");
        assert_eq!(state(at(TimeDelta::hours(-1))), "available");
        assert_eq!(state(after(std::time::Duration::ZERO)), "available");
        assert_eq!(
            state(after(std::time::Duration::from_micros(1))),
            "scheduled"
        );
        let (latest_us, latest_state) =
            timing(&after(std::time::Duration::MAX), now).expect("timing");
        assert_eq!(
            (latest_us, latest_state),
            (pg_micros(latest()), "scheduled")
        );
        let (hour_us, _) =
            timing(&after(std::time::Duration::from_secs(3_600)), now).expect("timing");
        assert_eq!(hour_us - pg_micros(now), 3_600_000_000);
    }

    #[test]
    fn timestamps_count_from_the_postgres_epoch() {
        let epoch = DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z")
            .expect("a valid time")
            .with_timezone(&Utc);
        assert_eq!(pg_micros(epoch), 0);
        assert_eq!(pg_micros(epoch + TimeDelta::microseconds(-5)), -5);
    }
}
