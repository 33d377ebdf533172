//! Counts per queue and per kind.

use sqlx::PgConnection;
use steward_core::store::{GroupedCounts, JobState};

use super::Sql;
use crate::error::decode_error;

/// One scan grouped by all three columns, folded into both groupings in
/// Rust, so the queue and kind counts come from the same snapshot (one
/// statement). A scan rather than counters kept at every transition: see
/// docs/performance.md for its time at 1,000,000 jobs.
pub(crate) const GROUPED: &str = "SELECT queue, kind, state, count(*) FROM {schema}.jobs
     GROUP BY queue, kind, state";

/// How many jobs each queue and each kind has in each state.
pub(crate) async fn grouped_counts(
    conn: &mut PgConnection,
    sql: &Sql,
) -> Result<GroupedCounts, sqlx::Error> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(&sql.grouped_counts)
        .fetch_all(&mut *conn)
        .await?;
    let mut counts = GroupedCounts::default();
    for (queue, kind, state, n) in rows {
        let state = state.parse::<JobState>().map_err(decode_error)?;
        counts.add(&queue, &kind, state, u64::try_from(n).unwrap_or(0));
    }
    Ok(counts)
}
