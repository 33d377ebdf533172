//! Questions about the server and the schema as a whole, for operators and
//! benchmarks: the durability setting jobs are written under, and removing
//! a store's schema. Neither is part of the engine's [`Store`] contract.

use steward_core::store::StoreError;

use crate::options::quoted_schema;
use crate::store::PostgresStore;

#[cfg(doc)]
use steward_core::store::Store;

impl PostgresStore {
    /// The server's `synchronous_commit` for this store's sessions (`on`,
    /// `off`, `local`, `remote_write` or `remote_apply`): whether a job
    /// reported as written survives a server crash. Benchmarks print it, so
    /// a figure says which durability it was measured with.
    ///
    /// ```no_run
    /// # async fn demo(store: steward_store_postgres::PostgresStore) -> Result<(), steward_core::store::StoreError> {
    /// println!("synchronous_commit={}", store.synchronous_commit().await?);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn synchronous_commit(&self) -> Result<String, StoreError> {
        sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(self.pool())
            .await
            .map_err(|e| self.err(e))
    }

    /// Drops the store's schema with every job and object in it
    /// (`DROP SCHEMA … CASCADE`); does nothing if it does not exist. For
    /// throw-away schemas (benchmarks, tests): later operations fail with
    /// [`StoreError::NotMigrated`] until [`Store::migrate`] runs again.
    ///
    /// Waits for the locks of any transaction still using the schema, so
    /// stop the workers on it first.
    ///
    /// ```no_run
    /// # async fn demo(store: steward_store_postgres::PostgresStore) -> Result<(), steward_core::store::StoreError> {
    /// store.drop_schema().await?;
    /// store.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn drop_schema(&self) -> Result<(), StoreError> {
        // The name was checked when the store connected; quoting it again
        // here keeps this file from depending on the store's internals.
        let quoted = quoted_schema(self.schema())?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {quoted} CASCADE"))
            .execute(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
