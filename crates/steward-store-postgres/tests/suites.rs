//! The shared suites (`steward-store-tests`) against the PostgreSQL store:
//! the store contract and the engine suite, every case in a fresh schema of
//! its own on the server at `127.0.0.1:5432` (`STEWARD_TEST_DATABASE_URL`
//! overrides), dropped after the case.

mod common;

use common::TestSchema;
use sqlx::{Connection as _, Executor as _};
use steward_core::store::JobId;
use steward_store_postgres::PostgresStore;
use steward_store_tests::Harness;

/// Every handle is a separate `PostgresStore::connect` (its own pool), as
/// another process would connect.
struct PgHarness;

impl Harness for PgHarness {
    type Store = PostgresStore;
    type Database = TestSchema;

    async fn database(&self) -> TestSchema {
        TestSchema::new().await
    }

    async fn connect(&self, schema: &TestSchema) -> PostgresStore {
        schema.connect().await
    }

    /// A trigger raises `check_violation` (23514) on the update that would
    /// complete `job`, as a constraint of the application's would: the
    /// store reports it as a database error, not a transient one.
    async fn refuse_completion(&self, schema: &TestSchema, job: JobId) {
        let name = &schema.name;
        let mut raw = schema.raw().await;
        raw.execute(
            format!(
                "CREATE FUNCTION \"{name}\".refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                     RAISE EXCEPTION 'injected: this outcome is refused'
                         USING ERRCODE = 'check_violation';
                 END $$"
            )
            .as_str(),
        )
        .await
        .expect("create the trigger function");
        raw.execute(
            format!(
                "CREATE TRIGGER refuse_one BEFORE UPDATE OF state ON \"{name}\".jobs
                 FOR EACH ROW WHEN (NEW.id = {job} AND NEW.state = 'completed')
                 EXECUTE FUNCTION \"{name}\".refuse_one()"
            )
            .as_str(),
        )
        .await
        .expect("create the trigger");
        raw.close().await.expect("close");
    }
}

steward_store_tests::contract!(PgHarness);
steward_store_tests::engine!(PgHarness);
