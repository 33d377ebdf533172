//! Leadership leases: take, renew, resign (see `Store::try_lead`).

use std::time::Duration;

use sqlx::PgConnection;
use steward_core::store::StoreError;

use super::Sql;
use crate::clock::micros;
use crate::sql::lease_expiry;

/// Takes the role if it is free or expired, renews it if `$2` holds it, in
/// one statement on the database's clock. Two nodes racing: the loser's
/// `ON CONFLICT` waits for the winner's row, then re-checks the `WHERE`
/// against it and updates nothing, so it gets no row back. Expired means
/// strictly before now, like job leases.
pub(crate) const LEAD: &str = concat!(
    "INSERT INTO {schema}.leaders AS l (role, holder, elected_at, expires_at)
     VALUES ($1, $2, now(), ",
    lease_expiry!("$3::bigint"),
    ")
     ON CONFLICT (role) DO UPDATE SET
         elected_at = CASE WHEN l.holder = EXCLUDED.holder THEN l.elected_at ELSE now() END,
         holder = EXCLUDED.holder,
         expires_at = EXCLUDED.expires_at
     WHERE l.holder = EXCLUDED.holder OR l.expires_at < now()
     RETURNING l.holder"
);

pub(crate) const RESIGN: &str = "DELETE FROM {schema}.leaders WHERE role = $1 AND holder = $2";

/// Checks a leadership request; returns the lease length in microseconds.
pub(crate) fn validate(role: &str, holder: &str, ttl: Duration) -> Result<i64, StoreError> {
    steward_core::store::validate_leadership(role, holder, ttl)?;
    micros("leadership ttl", ttl)
}

/// Whether `holder` leads `role` after this call.
pub(crate) async fn lead(
    conn: &mut PgConnection,
    sql: &Sql,
    role: &str,
    holder: &str,
    ttl_us: i64,
) -> Result<bool, sqlx::Error> {
    let row: Option<String> = sqlx::query_scalar(&sql.lead)
        .bind(role)
        .bind(holder)
        .bind(ttl_us)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}

/// Drops the role if `holder` holds it.
pub(crate) async fn resign(
    conn: &mut PgConnection,
    sql: &Sql,
    role: &str,
    holder: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(&sql.resign)
        .bind(role)
        .bind(holder)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
