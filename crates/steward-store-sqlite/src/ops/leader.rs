//! Leadership leases: take, renew, resign (see `Store::try_lead`).

use std::time::Duration;

use sqlx::SqliteConnection;
use steward_core::store::StoreError;

use crate::sql::{clock_cte, duration_ms};

/// Takes the role if it is free or expired, renews it if `?2` holds it; in
/// one statement, so two writers cannot both win (and SQLite has one writer
/// at a time anyway). A row comes back only if `?2` leads now: when the
/// `DO UPDATE`'s condition fails, the upsert does nothing and returns
/// nothing. Expired means strictly before now, like job leases.
/// On the clock of [`clock_cte`] (`?1` its floor), read once the write
/// lock is held.
const LEAD: &str = concat!(
    clock_cte!(),
    " INSERT INTO steward_leaders (role, holder, elected_at, expires_at)
     SELECT ?2, ?3, now, now + ?4 FROM clock WHERE true
     ON CONFLICT (role) DO UPDATE SET
         elected_at = CASE WHEN holder = excluded.holder THEN elected_at
             ELSE excluded.elected_at END,
         holder = excluded.holder,
         expires_at = excluded.expires_at
     WHERE holder = excluded.holder OR expires_at < excluded.elected_at
     RETURNING holder"
);

const RESIGN: &str = "DELETE FROM steward_leaders WHERE role = ?1 AND holder = ?2";

/// Checks a leadership request before it is sent to the writer; returns the
/// lease length in milliseconds.
pub(crate) fn validate(role: &str, holder: &str, ttl: Duration) -> Result<i64, StoreError> {
    steward_core::store::validate_leadership(role, holder, ttl)?;
    duration_ms("leadership ttl", ttl)
}

/// Whether `holder` leads `role` after this call.
pub(crate) async fn lead(
    conn: &mut SqliteConnection,
    now: i64,
    role: &str,
    holder: &str,
    ttl_ms: i64,
) -> Result<bool, sqlx::Error> {
    let row: Option<String> = sqlx::query_scalar(LEAD)
        .bind(now)
        .bind(role)
        .bind(holder)
        .bind(ttl_ms)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}

/// Drops the role if `holder` holds it.
pub(crate) async fn resign(
    conn: &mut SqliteConnection,
    role: &str,
    holder: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(RESIGN)
        .bind(role)
        .bind(holder)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
