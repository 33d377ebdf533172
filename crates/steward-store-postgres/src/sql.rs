//! Pieces of SQL text shared by the statements in `ops`, and how a
//! statement's `{schema}` placeholder is rendered.
//!
//! Identifiers cannot be bind parameters, so each statement is written with
//! a `{schema}` placeholder and rendered with the store's quoted schema name
//! when the store is created (`ops::Sql`). The rendered text is then fixed
//! for the store's life, so the driver prepares each statement once per
//! connection and reuses it (sqlx caches prepared statements by their text).

/// Replaces `{schema}` in `template` with the quoted schema name.
pub(crate) fn render(template: &str, quoted_schema: &str) -> String {
    template.replace("{schema}", quoted_schema)
}

/// The database's `now()` as RFC 3339 text in UTC with microseconds, as
/// `AttemptError::at` deserializes, for errors the SQL writes itself
/// (rescue, cancel). Independent of the session's `TimeZone`.
macro_rules! now_text {
    () => {
        r#"to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"#
    };
}
pub(crate) use now_text;

/// `now()` plus a delay in bigint microseconds, capped at the store's
/// latest time (`clock::LATEST`; the delay itself is capped in Rust, so the
/// sum never overflows). A `NULL` delay gives `LATEST` (`LEAST` skips
/// `NULL`s): use it only where the delay is set, or under a `coalesce`
/// whose first value is.
macro_rules! after_delay {
    ($us:literal) => {
        concat!(
            "LEAST(now() + ",
            $us,
            " * interval '1 microsecond', '9999-12-31 23:59:59.999999+00'::timestamptz)"
        )
    };
}
pub(crate) use after_delay;

/// `now()` plus a lease length in bigint microseconds. Not capped: a lease
/// too long for a timestamp fails (SQLSTATE 22008, mapped to `Invalid`).
macro_rules! lease_expiry {
    ($us:literal) => {
        concat!("now() + ", $us, " * interval '1 microsecond'")
    };
}
pub(crate) use lease_expiry;

#[cfg(test)]
mod tests {
    #[test]
    fn delays_are_capped_at_the_latest_time() {
        assert!(after_delay!("$1").contains(crate::clock::LATEST));
    }
}
