//! Nodes: register or refresh, list, read, remove (see
//! `Store::register_node`).

use std::time::Duration;

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use steward_core::store::{NodeInfo, NodeRecord, StoreError};

use crate::error::invalid;
use crate::sql::{decode_error, duration_ms, time_col, u32_col};

/// Every other node expired by now (strictly before, as leases): a refresh
/// sweeps dead nodes' rows, so no maintenance pass is needed for them.
const SWEEP: &str = "DELETE FROM steward_nodes WHERE expires_at < ?1 AND id <> ?2";

/// The report replaces the row's; `started_at` stays unless the row had
/// expired (a node back after its ttl starts afresh).
const UPSERT: &str = "INSERT INTO steward_nodes
        (id, host, pid, version, queues, running, services, started_at, last_seen, expires_at)
     VALUES (?2, ?3, ?4, ?5, ?6, ?7, ?8, ?1, ?1, ?1 + ?9)
     ON CONFLICT (id) DO UPDATE SET
         host = excluded.host,
         pid = excluded.pid,
         version = excluded.version,
         queues = excluded.queues,
         running = excluded.running,
         services = excluded.services,
         started_at = CASE WHEN expires_at < excluded.last_seen THEN excluded.started_at
             ELSE started_at END,
         last_seen = excluded.last_seen,
         expires_at = excluded.expires_at";

const COLUMNS: &str = "id, host, pid, version, queues, running, services, started_at, last_seen, \
                       expires_at";

const REMOVE: &str = "DELETE FROM steward_nodes WHERE id = ?1";

/// A report checked and encoded for the writer: the node, its queues and
/// services as JSON, and its ttl in milliseconds.
pub(crate) struct Report {
    info: NodeInfo,
    queues: String,
    services: String,
    ttl_ms: i64,
}

/// Checks a report before it is sent to the writer.
pub(crate) fn validate(info: NodeInfo, ttl: Duration) -> Result<Report, StoreError> {
    info.validate(ttl)?;
    let json = |e: serde_json::Error| invalid(format!("node `{}`: {e}", info.id));
    Ok(Report {
        queues: serde_json::to_string(&info.queues).map_err(json)?,
        services: serde_json::to_string(&info.services).map_err(json)?,
        ttl_ms: duration_ms("node ttl", ttl)?,
        info,
    })
}

/// Registers or refreshes the node at `now`, sweeping expired ones.
pub(crate) async fn register(
    conn: &mut SqliteConnection,
    now: i64,
    r: &Report,
) -> Result<(), sqlx::Error> {
    sqlx::query(SWEEP)
        .bind(now)
        .bind(&r.info.id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(UPSERT)
        .bind(now)
        .bind(&r.info.id)
        .bind(&r.info.host)
        .bind(i64::from(r.info.pid))
        .bind(&r.info.version)
        .bind(&r.queues)
        .bind(i64::from(r.info.running))
        .bind(&r.services)
        .bind(r.ttl_ms)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Every node live at `now`, by id (bytewise: SQLite's `BINARY`).
pub(crate) async fn list(
    conn: &mut SqliteConnection,
    now: i64,
) -> Result<Vec<NodeRecord>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM steward_nodes WHERE expires_at >= ?1 ORDER BY id");
    let rows = sqlx::query(&sql).bind(now).fetch_all(&mut *conn).await?;
    rows.iter().map(decode).collect()
}

/// One node, if live at `now`.
pub(crate) async fn get(
    conn: &mut SqliteConnection,
    now: i64,
    id: &str,
) -> Result<Option<NodeRecord>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM steward_nodes WHERE id = ?1 AND expires_at >= ?2");
    let row = sqlx::query(&sql)
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(decode).transpose()
}

/// Deletes the node's row; whether there was one.
pub(crate) async fn remove(conn: &mut SqliteConnection, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(REMOVE).bind(id).execute(&mut *conn).await?;
    Ok(done.rows_affected() > 0)
}

fn decode(row: &SqliteRow) -> Result<NodeRecord, sqlx::Error> {
    let json = |column: &str| -> Result<String, sqlx::Error> { row.try_get(column) };
    let bad = |e: serde_json::Error| decode_error(format!("a node's JSON column: {e}"));
    Ok(NodeRecord {
        info: NodeInfo {
            id: row.try_get("id")?,
            host: row.try_get("host")?,
            pid: u32_col(row, "pid")?,
            version: row.try_get("version")?,
            queues: serde_json::from_str(&json("queues")?).map_err(bad)?,
            running: u32_col(row, "running")?,
            services: serde_json::from_str(&json("services")?).map_err(bad)?,
        },
        started_at: time_col(row, "started_at")?,
        last_seen: time_col(row, "last_seen")?,
        expires_at: time_col(row, "expires_at")?,
    })
}
