//! Queue settings: pause and resume (one statement each), the paused names
//! every worker polls, and the list of queues with their counts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use steward_core::store::{QueueChange, QueueInfo};

use super::Sql;
use crate::error::decode_error;
use crate::sql::render;

/// Whether a queue is known (a setting row or any job): the last step of
/// both statements. The jobs half is not indexed for finished jobs (the
/// claim index holds queued ones only); an operator's command may scan, a
/// worker never runs it.
macro_rules! verdict {
    () => {
        "SELECT CASE
            WHEN EXISTS (SELECT 1 FROM changed) THEN 'changed'
            WHEN EXISTS (SELECT 1 FROM {schema}.queues WHERE name = $1)
              OR EXISTS (SELECT 1 FROM {schema}.jobs WHERE queue = $1) THEN 'unchanged'
            ELSE 'unknown' END"
    };
}

/// Pauses a running queue: its row's pause is set, or a row is made if the
/// queue has jobs but no row yet. A concurrent pause's row wins
/// (`ON CONFLICT DO NOTHING`): this one is then `unchanged`.
const PAUSE: &str = concat!(
    "WITH updated AS (
        UPDATE {schema}.queues SET paused_at = now(), updated_at = now()
        WHERE name = $1 AND paused_at IS NULL
        RETURNING 1
    ), inserted AS (
        INSERT INTO {schema}.queues (name, paused_at, updated_at)
        SELECT $1, now(), now()
        WHERE NOT EXISTS (SELECT 1 FROM {schema}.queues WHERE name = $1)
          AND EXISTS (SELECT 1 FROM {schema}.jobs WHERE queue = $1)
        ON CONFLICT (name) DO NOTHING
        RETURNING 1
    ), changed AS (
        SELECT 1 FROM updated UNION ALL SELECT 1 FROM inserted
    ) ",
    verdict!()
);

/// Resumes a paused queue; its row stays.
const RESUME: &str = concat!(
    "WITH changed AS (
        UPDATE {schema}.queues SET paused_at = NULL, updated_at = now()
        WHERE name = $1 AND paused_at IS NOT NULL
        RETURNING 1
    ) ",
    verdict!()
);

const PAUSED: &str = "SELECT name FROM {schema}.queues WHERE paused_at IS NOT NULL ORDER BY name";

const SETTINGS: &str = "SELECT name, paused_at FROM {schema}.queues";

/// This file's statements, rendered for one schema.
#[derive(Debug)]
pub(crate) struct Statements {
    pause: String,
    resume: String,
    paused: String,
    settings: String,
}

impl Statements {
    pub(crate) fn new(quoted_schema: &str) -> Statements {
        let r = |template: &str| render(template, quoted_schema);
        Statements {
            pause: r(PAUSE),
            resume: r(RESUME),
            paused: r(PAUSED),
            settings: r(SETTINGS),
        }
    }
}

/// Pauses (`paused`) or resumes `queue`, in one statement.
pub(crate) async fn set_paused(
    conn: &mut PgConnection,
    sql: &Sql,
    queue: &str,
    paused: bool,
) -> Result<QueueChange, sqlx::Error> {
    let statement = if paused {
        &sql.queues.pause
    } else {
        &sql.queues.resume
    };
    let verdict: String = sqlx::query_scalar(statement)
        .bind(queue)
        .fetch_one(&mut *conn)
        .await?;
    match verdict.as_str() {
        "changed" => Ok(QueueChange::Changed),
        "unchanged" => Ok(QueueChange::Unchanged),
        "unknown" => Ok(QueueChange::Unknown),
        other => Err(decode_error(format!("a queue change `{other}`"))),
    }
}

/// The paused queues' names, sorted: one read of the settings table.
pub(crate) async fn paused(conn: &mut PgConnection, sql: &Sql) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(&sql.queues.paused)
        .fetch_all(&mut *conn)
        .await
}

/// Every queue with jobs or a setting, by name. Two reads: a queue paused
/// between them is listed with its pause and counts of just before.
pub(crate) async fn list(
    conn: &mut PgConnection,
    sql: &Sql,
) -> Result<Vec<QueueInfo>, sqlx::Error> {
    // The counts of `grouped_counts`: one home for counting jobs by queue.
    let mut counts = super::grouped::grouped_counts(conn, sql).await?.by_queue;
    let settings: Vec<(String, Option<DateTime<Utc>>)> = sqlx::query_as(&sql.queues.settings)
        .fetch_all(&mut *conn)
        .await?;
    let mut since = BTreeMap::new();
    for (name, paused_at) in settings {
        counts.entry(name.clone()).or_default();
        since.insert(name, paused_at);
    }
    Ok(counts
        .into_iter()
        .map(|(name, counts)| QueueInfo {
            paused_since: since.get(&name).copied().flatten(),
            name,
            counts,
        })
        .collect())
}
