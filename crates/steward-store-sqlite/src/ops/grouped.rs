//! Counts per queue and per kind, on the read pool.

use sqlx::SqliteConnection;
use steward_core::store::{GroupedCounts, JobState};

use crate::sql::decode_error;

/// One scan grouped by all three columns, folded into both groupings in
/// Rust, so the queue and kind counts come from the same snapshot.
///
/// A scan, not a counter table: a counter kept by triggers halved the raw
/// claim-and-complete throughput (200k/s to 90k/s measured), and any index
/// covering `state` is written at every transition of every job. This read
/// is the dashboard's, the claim and finish are every job's
/// (docs/performance.md has the times at 1,000,000 jobs).
const GROUPED: &str = "SELECT queue, kind, state, count(*) FROM steward_jobs
     GROUP BY queue, kind, state";

/// How many jobs each queue and each kind has in each state.
pub(crate) async fn grouped_counts(
    conn: &mut SqliteConnection,
) -> Result<GroupedCounts, sqlx::Error> {
    let rows: Vec<(String, String, String, i64)> =
        sqlx::query_as(GROUPED).fetch_all(&mut *conn).await?;
    let mut counts = GroupedCounts::default();
    for (queue, kind, state, n) in rows {
        let state = state.parse::<JobState>().map_err(decode_error)?;
        counts.add(&queue, &kind, state, u64::try_from(n).unwrap_or(0));
    }
    Ok(counts)
}
