//! `PostgresStore::connect` honours the URL's `?schema=` and refuses a
//! parameter it does not know (issue 12): the driver alone would drop both
//! with a logged warning, and the store would migrate into `steward`.

mod common;

use common::TestSchema;
use sqlx::Row as _;
use steward_core::store::{Store, StoreError};
use steward_store_postgres::{PostgresOptions, PostgresStore};

#[tokio::test]
async fn the_urls_schema_is_where_the_store_lives() {
    let schema = TestSchema::new().await;
    let url = format!("{}?schema={}", schema.url, schema.name);
    let options = PostgresOptions {
        pool_size: 2,
        ..PostgresOptions::default()
    };
    let store = PostgresStore::connect(&url, options)
        .await
        .expect("connect with ?schema=");
    store.migrate().await.expect("migrate");
    let mut conn = schema.raw().await;
    let tables: i64 =
        sqlx::query("SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = $1")
            .bind(&schema.name)
            .fetch_one(&mut conn)
            .await
            .expect("count tables")
            .get("n");
    assert!(
        tables > 0,
        "migrate put nothing in {}: the URL's schema was ignored",
        schema.name
    );
    store.close().await;
}

#[tokio::test]
async fn an_unknown_url_parameter_is_refused_by_name() {
    let schema = TestSchema::new().await;
    let url = format!("{}?sslmdoe=require", schema.url);
    let err = PostgresStore::connect(&url, schema.options())
        .await
        .expect_err("a misspelt parameter");
    assert!(
        matches!(&err, StoreError::Invalid { .. }) && err.to_string().contains("sslmdoe"),
        "{err}"
    );
}

/// A server that does not answer is named by host and port (found by a new
/// user: the error said only that no connection came within the timeout).
#[tokio::test]
async fn an_unreachable_server_is_named_by_host_and_port() {
    let options = PostgresOptions {
        acquire_timeout: std::time::Duration::from_secs(2),
        ..PostgresOptions::default()
    };
    let err = PostgresStore::connect("postgres://postgres@127.0.0.1:1/test", options)
        .await
        .expect_err("nothing listens on port 1");
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("127.0.0.1:1"), "{text}");
    // And why: the pool's timeout alone hid the refused connection (found
    // by a second new-user trial).
    assert!(text.to_lowercase().contains("refused"), "{text}");
}
