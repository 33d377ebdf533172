//! Nodes: register or refresh, list, read, remove (see
//! `Store::register_node`).

use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use steward_core::store::{NodeInfo, NodeRecord, StoreError};

use super::Sql;
use super::columns::time_col;
use crate::clock::micros;
use crate::error::{decode_error, invalid};
use crate::sql::{lease_expiry, render};

/// One statement: every other node expired by now (strictly before, as
/// leases) is deleted, so a refresh sweeps dead nodes' rows and no
/// maintenance pass is needed for them; the report replaces the row's, and
/// `started_at` stays unless the row had expired (a node back after its
/// ttl starts afresh).
const REGISTER: &str = concat!(
    "WITH swept AS (DELETE FROM {schema}.nodes WHERE expires_at < now() AND id <> $1)
     INSERT INTO {schema}.nodes AS n
         (id, host, pid, version, queues, running, services, started_at, last_seen, expires_at)
     VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::jsonb, now(), now(), ",
    lease_expiry!("$8::bigint"),
    ")
     ON CONFLICT (id) DO UPDATE SET
         host = EXCLUDED.host,
         pid = EXCLUDED.pid,
         version = EXCLUDED.version,
         queues = EXCLUDED.queues,
         running = EXCLUDED.running,
         services = EXCLUDED.services,
         started_at = CASE WHEN n.expires_at < now() THEN now() ELSE n.started_at END,
         last_seen = now(),
         expires_at = EXCLUDED.expires_at"
);

const COLUMNS: &str = "id, host, pid, version, queues::text AS queues, running, \
                       services::text AS services, started_at, last_seen, expires_at";

const REMOVE: &str = "DELETE FROM {schema}.nodes WHERE id = $1";

/// The node statements, rendered for one schema.
#[derive(Debug)]
pub(crate) struct NodeSql {
    register: String,
    list: String,
    get: String,
    remove: String,
}

impl NodeSql {
    pub(crate) fn new(quoted_schema: &str) -> NodeSql {
        NodeSql {
            register: render(REGISTER, quoted_schema),
            list: render(
                &format!(
                    "SELECT {COLUMNS} FROM {{schema}}.nodes WHERE expires_at >= now() ORDER BY id"
                ),
                quoted_schema,
            ),
            get: render(
                &format!(
                    "SELECT {COLUMNS} FROM {{schema}}.nodes WHERE id = $1 AND expires_at >= now()"
                ),
                quoted_schema,
            ),
            remove: render(REMOVE, quoted_schema),
        }
    }
}

/// A report checked and encoded: its queues and services as JSON, its ttl
/// in microseconds.
pub(crate) struct Report {
    info: NodeInfo,
    queues: String,
    services: String,
    ttl_us: i64,
}

/// Checks a report before anything is sent.
pub(crate) fn validate(info: NodeInfo, ttl: Duration) -> Result<Report, StoreError> {
    info.validate(ttl)?;
    let json = |e: serde_json::Error| invalid(format!("node `{}`: {e}", info.id));
    Ok(Report {
        queues: serde_json::to_string(&info.queues).map_err(json)?,
        services: serde_json::to_string(&info.services).map_err(json)?,
        ttl_us: micros("node ttl", ttl)?,
        info,
    })
}

/// Registers or refreshes the node, sweeping expired ones.
pub(crate) async fn register(
    conn: &mut PgConnection,
    sql: &Sql,
    r: &Report,
) -> Result<(), sqlx::Error> {
    sqlx::query(&sql.nodes.register)
        .bind(&r.info.id)
        .bind(&r.info.host)
        .bind(i64::from(r.info.pid))
        .bind(&r.info.version)
        .bind(&r.queues)
        .bind(i64::from(r.info.running))
        .bind(&r.services)
        .bind(r.ttl_us)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Every live node, by id.
pub(crate) async fn list(
    conn: &mut PgConnection,
    sql: &Sql,
) -> Result<Vec<NodeRecord>, sqlx::Error> {
    let rows = sqlx::query(&sql.nodes.list).fetch_all(&mut *conn).await?;
    rows.iter().map(decode).collect()
}

/// One node, if live.
pub(crate) async fn get(
    conn: &mut PgConnection,
    sql: &Sql,
    id: &str,
) -> Result<Option<NodeRecord>, sqlx::Error> {
    let row = sqlx::query(&sql.nodes.get)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(decode).transpose()
}

/// Deletes the node's row; whether there was one.
pub(crate) async fn remove(
    conn: &mut PgConnection,
    sql: &Sql,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(&sql.nodes.remove)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

fn decode(row: &PgRow) -> Result<NodeRecord, sqlx::Error> {
    let bad = |e: serde_json::Error| decode_error(format!("a node's JSON column: {e}"));
    let small = |column: &str| -> Result<u32, sqlx::Error> {
        let v: i64 = row.try_get(column)?;
        u32::try_from(v).map_err(|_| decode_error(format!("column {column} = {v} is not a u32")))
    };
    let queues: String = row.try_get("queues")?;
    let services: String = row.try_get("services")?;
    Ok(NodeRecord {
        info: NodeInfo {
            id: row.try_get("id")?,
            host: row.try_get("host")?,
            pid: small("pid")?,
            version: row.try_get("version")?,
            queues: serde_json::from_str(&queues).map_err(bad)?,
            running: small("running")?,
            services: serde_json::from_str(&services).map_err(bad)?,
        },
        started_at: time_col(row, "started_at")?,
        last_seen: time_col(row, "last_seen")?,
        expires_at: time_col(row, "expires_at")?,
    })
}
