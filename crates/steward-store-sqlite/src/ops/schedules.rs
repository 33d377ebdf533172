//! Recurring schedules: definitions, pause, delete and a scheduler's fire
//! on the writer; lists and due schedules on the read pool.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use steward_core::store::{
    DueSchedules, FiredTick, JobId, KEPT_TICKS, Misfire, NewJob, SaveReport, Saved, ScheduleDef,
    ScheduleFire, ScheduleOrigin, ScheduleRecord,
};

use super::enqueue;
use crate::sql::{decode_error, opt_time_col, time_col, u32_col};

const COLUMNS: &str = "id, cron, zone, kind, payload, queue, priority, max_attempts, misfire,
     misfire_limit, origin, paused, next_at, last_tick, last_job, created_at, updated_at,
     payload_version";

fn decode(row: &SqliteRow) -> Result<ScheduleRecord, sqlx::Error> {
    let bad = |e: steward_core::store::StoreError| decode_error(e.to_string());
    let misfire: String = row.try_get("misfire")?;
    let origin: String = row.try_get("origin")?;
    let priority: i64 = row.try_get("priority")?;
    Ok(ScheduleRecord {
        def: ScheduleDef {
            id: row.try_get("id")?,
            cron: row.try_get("cron")?,
            zone: row.try_get("zone")?,
            kind: row.try_get("kind")?,
            payload: row.try_get("payload")?,
            payload_version: u32_col(row, "payload_version")?,
            queue: row.try_get("queue")?,
            priority: i16::try_from(priority)
                .map_err(|_| decode_error(format!("priority {priority} is not an i16")))?,
            max_attempts: u32_col(row, "max_attempts")?,
            misfire: Misfire::from_stored(&misfire, row.try_get("misfire_limit")?).map_err(bad)?,
            origin: ScheduleOrigin::parse(&origin).map_err(bad)?,
        },
        paused: row.try_get::<i64, _>("paused")? != 0,
        next_at: opt_time_col(row, "next_at")?,
        last_tick: opt_time_col(row, "last_tick")?,
        last_job: row.try_get::<Option<i64>, _>("last_job")?.map(JobId),
        created_at: time_col(row, "created_at")?,
        updated_at: time_col(row, "updated_at")?,
    })
}

/// One schedule, or `None`.
pub(crate) async fn get(
    conn: &mut SqliteConnection,
    id: &str,
) -> Result<Option<ScheduleRecord>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM steward_schedules WHERE id = ?1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(decode).transpose()
}

/// Every schedule, by id.
pub(crate) async fn list(conn: &mut SqliteConnection) -> Result<Vec<ScheduleRecord>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM steward_schedules ORDER BY id");
    let rows = sqlx::query(&sql).fetch_all(conn).await?;
    rows.iter().map(decode).collect()
}

/// Unpaused schedules owing a tick at or before `now` (unarmed first), and
/// the earliest tick owed after it. A scan: schedules are few.
pub(crate) async fn due(
    conn: &mut SqliteConnection,
    now: i64,
    limit: u32,
) -> Result<DueSchedules, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM steward_schedules
         WHERE paused = 0 AND (next_at IS NULL OR next_at <= ?1)
         ORDER BY next_at NULLS FIRST, id LIMIT ?2"
    );
    let rows = sqlx::query(&sql)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    let next: Option<i64> = sqlx::query_scalar(
        "SELECT min(next_at) FROM steward_schedules WHERE paused = 0 AND next_at > ?1",
    )
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(DueSchedules {
        now: ms_time(now)?,
        due: rows.iter().map(decode).collect::<Result<_, _>>()?,
        next_due: next.map(ms_time).transpose()?,
    })
}

fn ms_time(ms: i64) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| decode_error(format!("{ms} ms: out of range")))
}

/// The newest `limit` fired ticks of a schedule.
pub(crate) async fn fires(
    conn: &mut SqliteConnection,
    id: &str,
    limit: u32,
) -> Result<Vec<FiredTick>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT tick_at, job_id FROM steward_schedule_ticks
         WHERE schedule_id = ?1 ORDER BY tick_at DESC LIMIT ?2",
    )
    .bind(id)
    .bind(i64::from(limit))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(FiredTick {
                tick: time_col(row, 0)?,
                job: JobId(row.try_get(1)?),
            })
        })
        .collect()
}

/// `Store::save_schedules` on validated definitions, inside the writer's
/// transaction.
pub(crate) async fn save(
    conn: &mut SqliteConnection,
    now: i64,
    defs: &[ScheduleDef],
    remove_undeclared: bool,
) -> Result<SaveReport, sqlx::Error> {
    let mut report = SaveReport::default();
    for def in defs {
        let saved = match get(conn, &def.id).await? {
            None => {
                write(conn, now, def, INSERT).await?;
                Saved::Created
            }
            Some(old) if old.def == *def => Saved::Unchanged,
            Some(old) => {
                let rearm = old.def.cron != def.cron || old.def.zone != def.zone;
                write(conn, now, def, if rearm { REARM } else { UPDATE }).await?;
                Saved::Updated
            }
        };
        report.saved.push(saved);
    }
    if remove_undeclared {
        let declared: BTreeSet<&str> = defs.iter().map(|d| d.id.as_str()).collect();
        let code: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM steward_schedules WHERE origin = 'code' ORDER BY id",
        )
        .fetch_all(&mut *conn)
        .await?;
        for id in code
            .into_iter()
            .filter(|id| !declared.contains(id.as_str()))
        {
            delete(conn, &id).await?;
            report.removed.push(id);
        }
    }
    Ok(report)
}

const INSERT: &str = "INSERT INTO steward_schedules (cron, zone, kind, payload, queue, priority,
     max_attempts, misfire, misfire_limit, origin, id, created_at, updated_at, payload_version)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13)";

const UPDATE: &str = "UPDATE steward_schedules SET cron = ?1, zone = ?2, kind = ?3, payload = ?4,
     queue = ?5, priority = ?6, max_attempts = ?7, misfire = ?8, misfire_limit = ?9,
     origin = ?10, updated_at = ?12, payload_version = ?13 WHERE id = ?11";

/// An update that also re-arms: the expression or zone changed, so the
/// tick owed under the old timing is not owed any more.
const REARM: &str = "UPDATE steward_schedules SET cron = ?1, zone = ?2, kind = ?3, payload = ?4,
     queue = ?5, priority = ?6, max_attempts = ?7, misfire = ?8, misfire_limit = ?9,
     origin = ?10, updated_at = ?12, payload_version = ?13, next_at = NULL WHERE id = ?11";

async fn write(
    conn: &mut SqliteConnection,
    now: i64,
    def: &ScheduleDef,
    sql: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(sql)
        .bind(&def.cron)
        .bind(&def.zone)
        .bind(&def.kind)
        .bind(&def.payload)
        .bind(&def.queue)
        .bind(i64::from(def.priority))
        .bind(i64::from(def.max_attempts))
        .bind(def.misfire.name())
        .bind(i64::from(def.misfire.limit()))
        .bind(def.origin.as_str())
        .bind(&def.id)
        .bind(now)
        .bind(i64::from(def.payload_version))
        .execute(conn)
        .await?;
    Ok(())
}

/// Pauses or resumes; a resume re-arms. Whether the schedule exists.
pub(crate) async fn pause(
    conn: &mut SqliteConnection,
    now: i64,
    id: &str,
    paused: bool,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "UPDATE steward_schedules SET paused = ?2, updated_at = ?3,
             next_at = CASE WHEN ?2 = 0 THEN NULL ELSE next_at END
         WHERE id = ?1 AND paused <> ?2",
    )
    .bind(id)
    .bind(i64::from(paused))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM steward_schedules WHERE id = ?1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// Deletes a schedule and its fired ticks. Whether it existed.
pub(crate) async fn delete(conn: &mut SqliteConnection, id: &str) -> Result<bool, sqlx::Error> {
    sqlx::query("DELETE FROM steward_schedule_ticks WHERE schedule_id = ?1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query("DELETE FROM steward_schedules WHERE id = ?1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// `Store::fire_schedule` on a validated step, inside the writer's
/// transaction (one writer at a time: the checks below cannot race).
/// `None` if the fence refused it; otherwise the ticks fired and whether a
/// job was enqueued.
pub(crate) async fn fire(
    conn: &mut SqliteConnection,
    now: i64,
    fire: &ScheduleFire,
) -> Result<Option<Vec<FiredTick>>, sqlx::Error> {
    let expected = fire.expected.map(|t| t.timestamp_millis());
    // The compare-and-set on the tick owed: a scheduler that read an older
    // state (another one fired meanwhile) changes nothing.
    let moved = sqlx::query(
        "UPDATE steward_schedules SET next_at = ?3
         WHERE id = ?1 AND paused = 0 AND next_at IS ?2",
    )
    .bind(&fire.id)
    .bind(expected)
    .bind(fire.next_at.timestamp_millis())
    .execute(&mut *conn)
    .await?;
    if moved.rows_affected() == 0 {
        return Ok(None);
    }
    // The key per tick: a tick fired before enqueues nothing again.
    let mut fresh: Vec<&NewJob> = Vec::with_capacity(fire.jobs.len());
    for job in &fire.jobs {
        let Some(tick) = job.run_at else { continue };
        let seen: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM steward_schedule_ticks WHERE schedule_id = ?1 AND tick_at = ?2",
        )
        .bind(&fire.id)
        .bind(tick.timestamp_millis())
        .fetch_optional(&mut *conn)
        .await?;
        if seen.is_none() {
            fresh.push(job);
        }
    }
    let (enqueued, _) = enqueue::insert(conn, now, &fresh).await?;
    let mut fired = Vec::with_capacity(fresh.len());
    for (job, e) in fresh.iter().zip(enqueued) {
        let Some(tick) = job.run_at else { continue };
        sqlx::query(
            "INSERT INTO steward_schedule_ticks (schedule_id, tick_at, job_id) VALUES (?1, ?2, ?3)",
        )
        .bind(&fire.id)
        .bind(tick.timestamp_millis())
        .bind(e.id.0)
        .execute(&mut *conn)
        .await?;
        fired.push(FiredTick { tick, job: e.id });
    }
    if let Some(last) = fired.iter().max_by_key(|t| t.tick) {
        sqlx::query("UPDATE steward_schedules SET last_tick = ?2, last_job = ?3 WHERE id = ?1")
            .bind(&fire.id)
            .bind(last.tick.timestamp_millis())
            .bind(last.job.0)
            .execute(&mut *conn)
            .await?;
        // Older ticks can never fire again (the tick owed only moves on);
        // the newest are kept to show what ran.
        sqlx::query(
            "DELETE FROM steward_schedule_ticks WHERE schedule_id = ?1 AND tick_at <
                 (SELECT tick_at FROM steward_schedule_ticks WHERE schedule_id = ?1
                  ORDER BY tick_at DESC LIMIT 1 OFFSET ?2)",
        )
        .bind(&fire.id)
        .bind(KEPT_TICKS - 1)
        .execute(conn)
        .await?;
    }
    Ok(Some(fired))
}
