//! The shared suites (`steward-store-tests`) against the PostgreSQL store:
//! the store contract and the engine suite, every case in a fresh schema of
//! its own on the server at `127.0.0.1:5432` (`STEWARD_TEST_DATABASE_URL`
//! overrides), dropped after the case.

mod common;

use common::TestSchema;
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
}

steward_store_tests::contract!(PgHarness);
steward_store_tests::engine!(PgHarness);
