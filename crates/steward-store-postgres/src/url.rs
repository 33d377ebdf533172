//! A store's `postgres://` URL: its own `schema` parameter, and a check of
//! every other one.
//!
//! The driver ignores a query parameter it does not know (it logs a
//! warning), so a misspelt `?sslmode` or a `?schema=` the driver was never
//! meant to see would be dropped silently: the store would connect without
//! TLS, or migrate into the default schema. Every parameter is checked
//! here instead, and an unknown one refuses the URL, naming it.

use steward_core::store::StoreError;
use url::Url;

use crate::error::invalid;

/// The query parameters the driver (sqlx 0.8) understands, besides
/// `options[NAME]`.
const DRIVER_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// A `postgres://` URL split into what the driver connects to and the
/// store's schema (see [`parse_url`]).
///
/// ```
/// let url = steward_store_postgres::parse_url("postgres://u@h/db?schema=app").expect("valid");
/// assert_eq!((url.connect.as_str(), url.schema.as_deref()), ("postgres://u@h/db", Some("app")));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUrl {
    /// The URL without the `schema` parameter.
    pub connect: String,
    /// The `schema` parameter, if given.
    pub schema: Option<String>,
}

/// Splits `schema` off a `postgres://` or `postgresql://` URL, as
/// [`PostgresStore::connect`](crate::PostgresStore::connect) does, and
/// refuses ([`StoreError::Invalid`], naming it) any parameter the driver
/// would ignore.
///
/// ```
/// let err = steward_store_postgres::parse_url("postgres://u@h/db?sslmdoe=require").unwrap_err();
/// assert!(err.to_string().contains("sslmdoe"));
/// ```
pub fn parse_url(text: &str) -> Result<StoreUrl, StoreError> {
    let mut url =
        Url::parse(text).map_err(|e| invalid(format!("bad PostgreSQL URL `{text}`: {e}")))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(invalid(format!(
            "`{text}` is not a PostgreSQL URL: it must start with postgres:// or postgresql://"
        )));
    }
    let mut schema = None;
    let mut kept = Vec::new();
    for (key, value) in url.query_pairs() {
        if key == "schema" {
            if value.is_empty() {
                return Err(invalid("the URL's `schema=` needs a name".to_string()));
            }
            schema = Some(value.into_owned());
        } else if DRIVER_PARAMETERS.contains(&&*key)
            || (key.starts_with("options[") && key.ends_with(']'))
        {
            kept.push((key.into_owned(), value.into_owned()));
        } else {
            return Err(invalid(format!(
                "unknown parameter `{key}` in the PostgreSQL URL; known: schema, {}",
                DRIVER_PARAMETERS.join(", ")
            )));
        }
    }
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok(StoreUrl {
        connect: url.into(),
        schema,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_taken_out_and_driver_parameters_stay() {
        let u = parse_url("postgres://u@h:5432/db?schema=jobs_eu").expect("valid");
        assert_eq!(u.connect, "postgres://u@h:5432/db");
        assert_eq!(u.schema.as_deref(), Some("jobs_eu"));
        let u = parse_url(
            "postgresql://u:p%40ss@h/db?sslmode=disable&schema=x&options[statement_timeout]=5s",
        )
        .expect("valid");
        assert_eq!(
            u.connect,
            "postgresql://u:p%40ss@h/db?sslmode=disable&options%5Bstatement_timeout%5D=5s"
        );
        assert_eq!(u.schema.as_deref(), Some("x"));
        let u = parse_url("postgres://u@h/db").expect("valid");
        assert_eq!((u.connect.as_str(), u.schema), ("postgres://u@h/db", None));
    }

    #[test]
    fn unknown_parameters_and_empty_schemas_are_refused_by_name() {
        let err = parse_url("postgres://u@h/db?sslmdoe=require").expect_err("a typo");
        assert!(
            err.to_string().contains("unknown parameter `sslmdoe`"),
            "{err}"
        );
        let err = parse_url("postgres://u@h/db?schema=").expect_err("empty");
        assert!(err.to_string().contains("schema"), "{err}");
        let err = parse_url("mysql://u@h/db").expect_err("not postgres");
        assert!(err.to_string().contains("postgres://"), "{err}");
    }
}
