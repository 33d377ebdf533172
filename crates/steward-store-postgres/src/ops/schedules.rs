//! Recurring schedules: definitions, pause, delete, what is due, and a
//! scheduler step (see `Store::save_schedules` … `Store::schedule_fires`
//! and migration 0007).
//!
//! A step ([`fire`]) is fenced twice. The `UPDATE` of [`FENCE`] applies
//! only while the schedule owes the tick the caller read; under READ
//! COMMITTED a concurrent step of the same schedule waits for the first
//! one's row lock, then re-checks the `WHERE` against the committed row and
//! updates nothing. Each tick is then recorded under the primary key of
//! `schedule_ticks` with `ON CONFLICT DO NOTHING`, and only ticks recorded
//! now enqueue a job.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use steward_core::store::{
    DueSchedules, FiredTick, JobId, KEPT_TICKS, Misfire, NewJob, SaveReport, Saved, ScheduleDef,
    ScheduleFire, ScheduleOrigin, ScheduleRecord, StoreError,
};

use super::Sql;
use super::enqueue::{self, Bulk};
use crate::error::{decode_error, invalid};
use crate::ops::columns::{opt_time_col, time_col, u32_col};

const COLUMNS: &str = "id, cron, zone, kind, payload::text AS payload, queue, priority,
    max_attempts, misfire, misfire_limit, origin, paused, next_at, last_tick, last_job,
    created_at, updated_at, payload_version";

/// Creates a schedule, or takes the new definition if it differs (the row
/// `IS DISTINCT FROM` comparison; payloads compare as JSON values). A new
/// expression or zone clears the tick owed; the pause is kept. No row back:
/// unchanged. `xmax = 0` tells an inserted row from an updated one.
pub(crate) const SAVE: &str = "INSERT INTO {schema}.schedules AS s (id, cron, zone, kind,
        payload, queue, priority, max_attempts, misfire, misfire_limit, origin, payload_version)
     VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, $10, $11, $12)
     ON CONFLICT (id) DO UPDATE SET
         cron = EXCLUDED.cron, zone = EXCLUDED.zone, kind = EXCLUDED.kind,
         payload = EXCLUDED.payload, queue = EXCLUDED.queue, priority = EXCLUDED.priority,
         max_attempts = EXCLUDED.max_attempts, misfire = EXCLUDED.misfire,
         misfire_limit = EXCLUDED.misfire_limit, origin = EXCLUDED.origin,
         payload_version = EXCLUDED.payload_version,
         next_at = CASE WHEN (s.cron, s.zone) IS DISTINCT FROM (EXCLUDED.cron, EXCLUDED.zone)
             THEN NULL ELSE s.next_at END,
         updated_at = now()
     WHERE (s.cron, s.zone, s.kind, s.payload, s.queue, s.priority, s.max_attempts, s.misfire,
            s.misfire_limit, s.origin, s.payload_version)
         IS DISTINCT FROM (EXCLUDED.cron, EXCLUDED.zone, EXCLUDED.kind, EXCLUDED.payload,
            EXCLUDED.queue, EXCLUDED.priority, EXCLUDED.max_attempts, EXCLUDED.misfire,
            EXCLUDED.misfire_limit, EXCLUDED.origin, EXCLUDED.payload_version)
     RETURNING (s.xmax = 0) AS created";

/// Code-declared schedules not in `$1` (their ticks go by the cascade).
pub(crate) const REMOVE_UNDECLARED: &str = "DELETE FROM {schema}.schedules
     WHERE origin = 'code' AND id <> ALL($1::text[]) RETURNING id";

pub(crate) const LIST: &str = "SELECT {columns} FROM {schema}.schedules ORDER BY id";

pub(crate) const GET: &str = "SELECT {columns} FROM {schema}.schedules WHERE id = $1";

/// Pauses or resumes (a resume clears the tick owed) unless already so;
/// whether the schedule exists either way, in one statement.
pub(crate) const PAUSE: &str = "WITH u AS (
         UPDATE {schema}.schedules
         SET paused = $2::boolean, updated_at = now(),
             next_at = CASE WHEN $2::boolean THEN next_at END
         WHERE id = $1 AND paused <> $2::boolean
         RETURNING id)
     SELECT EXISTS (SELECT 1 FROM u)
         OR EXISTS (SELECT 1 FROM {schema}.schedules WHERE id = $1)";

pub(crate) const DELETE: &str = "DELETE FROM {schema}.schedules WHERE id = $1";

/// Unarmed schedules first (`NULLS FIRST`), then by the tick owed: the
/// order of the `schedules_due` index.
pub(crate) const DUE: &str = "SELECT {columns} FROM {schema}.schedules
     WHERE NOT paused AND (next_at IS NULL OR next_at <= now())
     ORDER BY next_at NULLS FIRST, id LIMIT $1";

/// In the transaction of [`DUE`], so both read the same `now()`.
pub(crate) const NEXT_DUE: &str = "SELECT now() AS now,
     (SELECT min(next_at) FROM {schema}.schedules WHERE NOT paused AND next_at > now())
         AS next_due";

/// The compare-and-set: see the module docs.
pub(crate) const FENCE: &str = "UPDATE {schema}.schedules SET next_at = $3
     WHERE id = $1 AND NOT paused AND next_at IS NOT DISTINCT FROM $2::timestamptz
     RETURNING id";

/// Records ticks; returns those not recorded before.
pub(crate) const RECORD_TICKS: &str = "INSERT INTO {schema}.schedule_ticks (schedule_id, tick_at)
     SELECT $1::text, t FROM unnest($2::timestamptz[]) AS t
     ON CONFLICT DO NOTHING
     RETURNING tick_at";

/// The fired ticks' jobs, and the newest of them as the schedule's last.
pub(crate) const TICK_JOBS: &str = "WITH tick_jobs AS (
         UPDATE {schema}.schedule_ticks AS k SET job_id = u.job
         FROM unnest($2::timestamptz[], $3::bigint[]) AS u(tick, job)
         WHERE k.schedule_id = $1 AND k.tick_at = u.tick)
     UPDATE {schema}.schedules SET last_tick = $4, last_job = $5 WHERE id = $1";

/// Keeps the newest `$2` ticks of a schedule.
pub(crate) const TRIM_TICKS: &str = "DELETE FROM {schema}.schedule_ticks
     WHERE schedule_id = $1 AND tick_at <= (
         SELECT tick_at FROM {schema}.schedule_ticks WHERE schedule_id = $1
         ORDER BY tick_at DESC OFFSET $2 LIMIT 1)";

pub(crate) const FIRES: &str = "SELECT tick_at, job_id FROM {schema}.schedule_ticks
     WHERE schedule_id = $1 ORDER BY tick_at DESC LIMIT $2";

/// A statement with the record's columns in place of `{columns}`.
pub(crate) fn with_columns(template: &str) -> String {
    template.replace("{columns}", COLUMNS)
}

/// A definition's values as the columns take them, converted before any
/// write so that a value out of range refuses the whole list.
pub(crate) struct DefRow<'a> {
    def: &'a ScheduleDef,
    max_attempts: i32,
    misfire_limit: i32,
    payload_version: i32,
}

/// Checks definitions as every store does, then the ranges of the columns.
pub(crate) fn validate(defs: &[ScheduleDef]) -> Result<Vec<DefRow<'_>>, StoreError> {
    steward_core::store::validate_schedule_defs(defs)?;
    defs.iter()
        .map(|def| {
            let range = |what: &str, v: u32| {
                i32::try_from(v).map_err(|_| {
                    invalid(format!("schedule `{}`: {what} {v} is out of range", def.id))
                })
            };
            Ok(DefRow {
                def,
                max_attempts: range("max_attempts", def.max_attempts)?,
                misfire_limit: range("misfire limit", def.misfire.limit())?,
                payload_version: range("payload_version", def.payload_version)?,
            })
        })
        .collect()
}

/// Saves validated definitions (in the caller's transaction).
pub(crate) async fn save(
    conn: &mut PgConnection,
    sql: &Sql,
    rows: &[DefRow<'_>],
    remove_undeclared: bool,
) -> Result<SaveReport, sqlx::Error> {
    let mut report = SaveReport::default();
    let mut saved = vec![Saved::Unchanged; rows.len()];
    // Rows locked in id order, whatever the list's: two nodes declaring the
    // same schedules in different orders (a rolling deploy) wait for each
    // other instead of deadlocking.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| rows[a].def.id.cmp(&rows[b].def.id));
    for i in order {
        let row = &rows[i];
        let d = row.def;
        let created: Option<bool> = sqlx::query_scalar(&sql.schedule_save)
            .bind(&d.id)
            .bind(&d.cron)
            .bind(&d.zone)
            .bind(&d.kind)
            .bind(&d.payload)
            .bind(&d.queue)
            .bind(d.priority)
            .bind(row.max_attempts)
            .bind(d.misfire.name())
            .bind(row.misfire_limit)
            .bind(d.origin.as_str())
            .bind(row.payload_version)
            .fetch_optional(&mut *conn)
            .await?;
        saved[i] = match created {
            Some(true) => Saved::Created,
            Some(false) => Saved::Updated,
            None => Saved::Unchanged,
        };
    }
    report.saved = saved;
    if remove_undeclared {
        let ids: Vec<&str> = rows.iter().map(|r| r.def.id.as_str()).collect();
        let mut removed: Vec<String> = sqlx::query_scalar(&sql.schedule_remove_undeclared)
            .bind(ids)
            .fetch_all(&mut *conn)
            .await?;
        removed.sort_unstable();
        report.removed = removed;
    }
    Ok(report)
}

/// Every schedule, by id.
pub(crate) async fn list(
    conn: &mut PgConnection,
    sql: &Sql,
) -> Result<Vec<ScheduleRecord>, sqlx::Error> {
    let rows = sqlx::query(&sql.schedule_list)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(decode).collect()
}

/// One schedule, if it exists.
pub(crate) async fn get(
    conn: &mut PgConnection,
    sql: &Sql,
    id: &str,
) -> Result<Option<ScheduleRecord>, sqlx::Error> {
    let row = sqlx::query(&sql.schedule_get)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(decode).transpose()
}

/// Pauses or resumes; whether the schedule exists.
pub(crate) async fn pause(
    conn: &mut PgConnection,
    sql: &Sql,
    id: &str,
    paused: bool,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(&sql.schedule_pause)
        .bind(id)
        .bind(paused)
        .fetch_one(&mut *conn)
        .await
}

/// Deletes a schedule and its ticks; whether it existed.
pub(crate) async fn delete(
    conn: &mut PgConnection,
    sql: &Sql,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(&sql.schedule_delete)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// What is due at the transaction's `now()` (in the caller's transaction).
pub(crate) async fn due(
    conn: &mut PgConnection,
    sql: &Sql,
    limit: u32,
) -> Result<DueSchedules, sqlx::Error> {
    let rows = sqlx::query(&sql.schedule_due)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    let due = rows.iter().map(decode).collect::<Result<_, _>>()?;
    let row = sqlx::query(&sql.schedule_next_due)
        .fetch_one(&mut *conn)
        .await?;
    Ok(DueSchedules {
        now: time_col(&row, "now")?,
        due,
        next_due: opt_time_col(&row, "next_due")?,
    })
}

/// What an applied step wrote.
pub(crate) struct Fired {
    /// The ticks fired, in the step's order.
    pub(crate) ticks: Vec<FiredTick>,
    /// Their jobs, as enqueued (for waking workers once committed).
    pub(crate) jobs: Vec<NewJob>,
    /// The queues of those jobs due now.
    pub(crate) due_queues: BTreeSet<String>,
}

/// Applies a validated step in the caller's transaction; `None` if the
/// fence refused it (nothing written).
pub(crate) async fn fire(
    conn: &mut PgConnection,
    sql: &Sql,
    step: &ScheduleFire,
) -> Result<Option<Fired>, sqlx::Error> {
    let applied: Option<String> = sqlx::query_scalar(&sql.schedule_fence)
        .bind(&step.id)
        .bind(step.expected)
        .bind(step.next_at)
        .fetch_optional(&mut *conn)
        .await?;
    if applied.is_none() {
        return Ok(None);
    }
    let mut fired = Fired {
        ticks: Vec::new(),
        jobs: Vec::new(),
        due_queues: BTreeSet::new(),
    };
    if step.jobs.is_empty() {
        return Ok(Some(fired));
    }
    let ticks: Vec<DateTime<Utc>> = step.jobs.iter().filter_map(|j| j.run_at).collect();
    let recorded = sqlx::query(&sql.schedule_record_ticks)
        .bind(&step.id)
        .bind(&ticks)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| time_col(row, "tick_at"))
        .collect::<Result<Vec<_>, _>>()?;
    // Matched by microsecond, the column's precision: a tick finer than it
    // is recorded truncated. Two ticks the same at that precision share one
    // key, so only the first of them fires.
    let mut fresh: BTreeSet<i64> = recorded.iter().map(DateTime::timestamp_micros).collect();
    for job in &step.jobs {
        let Some(at) = job.run_at else { continue };
        if fresh.remove(&at.timestamp_micros()) {
            fired.jobs.push(job.clone());
            fired.ticks.push(FiredTick {
                tick: stored(at, &recorded),
                job: JobId(0),
            });
        }
    }
    if fired.jobs.is_empty() {
        return Ok(Some(fired));
    }
    // The store's own enqueue path, in this transaction: the step's jobs
    // and its ticks commit together or not at all.
    let inserted = enqueue::insert(conn, sql, &fired.jobs, Bulk::Copy).await?;
    if inserted.ids.len() != fired.ticks.len() {
        return Err(decode_error(format!(
            "enqueued {} jobs for {} ticks",
            inserted.ids.len(),
            fired.ticks.len()
        )));
    }
    for (tick, enqueued) in fired.ticks.iter_mut().zip(&inserted.ids) {
        tick.job = enqueued.id;
    }
    fired.due_queues = inserted.due_queues;
    let last = fired.ticks.iter().max_by_key(|t| t.tick).copied();
    sqlx::query(&sql.schedule_tick_jobs)
        .bind(&step.id)
        .bind(fired.ticks.iter().map(|t| t.tick).collect::<Vec<_>>())
        .bind(fired.ticks.iter().map(|t| t.job.0).collect::<Vec<_>>())
        .bind(last.map(|t| t.tick))
        .bind(last.map(|t| t.job.0))
        .execute(&mut *conn)
        .await?;
    sqlx::query(&sql.schedule_trim_ticks)
        .bind(&step.id)
        .bind(KEPT_TICKS)
        .execute(&mut *conn)
        .await?;
    Ok(Some(fired))
}

/// The tick as the table holds it (microseconds), so a step's answer and
/// `schedule_fires` agree.
fn stored(at: DateTime<Utc>, recorded: &[DateTime<Utc>]) -> DateTime<Utc> {
    let us = at.timestamp_micros();
    recorded
        .iter()
        .copied()
        .find(|r| r.timestamp_micros() == us)
        .unwrap_or(at)
}

/// A schedule's newest fired ticks, newest first.
pub(crate) async fn fires(
    conn: &mut PgConnection,
    sql: &Sql,
    id: &str,
    limit: u32,
) -> Result<Vec<FiredTick>, sqlx::Error> {
    let rows = sqlx::query(&sql.schedule_fires)
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(FiredTick {
                tick: time_col(row, "tick_at")?,
                job: JobId(row.try_get("job_id")?),
            })
        })
        .collect()
}

fn decode(row: &PgRow) -> Result<ScheduleRecord, sqlx::Error> {
    let stored = |e: StoreError| decode_error(e.to_string());
    let misfire: String = row.try_get("misfire")?;
    let limit: i32 = row.try_get("misfire_limit")?;
    let origin: String = row.try_get("origin")?;
    Ok(ScheduleRecord {
        def: ScheduleDef {
            id: row.try_get("id")?,
            cron: row.try_get("cron")?,
            zone: row.try_get("zone")?,
            kind: row.try_get("kind")?,
            payload: row.try_get("payload")?,
            payload_version: u32_col(row, "payload_version")?,
            queue: row.try_get("queue")?,
            priority: row.try_get("priority")?,
            max_attempts: u32_col(row, "max_attempts")?,
            misfire: Misfire::from_stored(&misfire, i64::from(limit)).map_err(stored)?,
            origin: ScheduleOrigin::parse(&origin).map_err(stored)?,
        },
        paused: row.try_get("paused")?,
        next_at: opt_time_col(row, "next_at")?,
        last_tick: opt_time_col(row, "last_tick")?,
        last_job: row.try_get::<Option<i64>, _>("last_job")?.map(JobId),
        created_at: time_col(row, "created_at")?,
        updated_at: time_col(row, "updated_at")?,
    })
}
