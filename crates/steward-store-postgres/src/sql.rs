//! Every statement of the store, rendered once per schema.
//!
//! Identifiers cannot be bind parameters, so each statement is written with
//! a `{schema}` placeholder and rendered with the store's quoted schema name
//! when the store is created. The rendered text is then fixed for the
//! store's life, so the driver prepares each statement once per connection
//! and reuses it (sqlx caches prepared statements by their text).

use crate::ops::{admin, claim, copy, enqueue, leader, lease, read};
use crate::vacuum;

/// The `{schema}`-placeholder statements, rendered for one schema.
#[derive(Debug)]
pub(crate) struct Sql {
    pub(crate) enqueue_plain: String,
    pub(crate) enqueue_one: String,
    pub(crate) enqueue_unique: String,
    pub(crate) copy_prepare: String,
    pub(crate) copy: String,
    pub(crate) unique_holder: String,
    pub(crate) claim: String,
    pub(crate) heartbeat: String,
    pub(crate) lock_in_order: String,
    pub(crate) complete: String,
    pub(crate) fail_retry: String,
    pub(crate) fail_dead: String,
    pub(crate) snooze: String,
    pub(crate) cancel_attempt: String,
    pub(crate) release: String,
    pub(crate) settle_cancels: String,
    pub(crate) checkpoint: String,
    pub(crate) cancel: String,
    pub(crate) exists: String,
    pub(crate) retry: String,
    pub(crate) retry_without_key: String,
    pub(crate) rescue: String,
    pub(crate) prune_cutoffs: String,
    pub(crate) prune_chunk: String,
    pub(crate) job: String,
    pub(crate) counts: String,
    pub(crate) lead: String,
    pub(crate) resign: String,
    pub(crate) vacuum: String,
}

impl Sql {
    /// Renders every statement for `quoted_schema` (already validated and
    /// quoted, see `options::quoted_schema`).
    pub(crate) fn new(quoted_schema: &str) -> Sql {
        let r = |template: &str| render(template, quoted_schema);
        Sql {
            enqueue_plain: r(enqueue::PLAIN),
            enqueue_one: r(enqueue::ONE),
            enqueue_unique: r(enqueue::UNIQUE),
            copy_prepare: r(copy::PREPARE),
            copy: r(copy::COPY),
            unique_holder: r(enqueue::HOLDER),
            claim: r(claim::CLAIM),
            heartbeat: r(lease::HEARTBEAT),
            lock_in_order: r(lease::LOCK_IN_ORDER),
            complete: r(lease::COMPLETE),
            fail_retry: r(lease::FAIL_RETRY),
            fail_dead: r(lease::FAIL_DEAD),
            snooze: r(lease::SNOOZE),
            cancel_attempt: r(lease::CANCEL),
            release: r(lease::RELEASE),
            settle_cancels: r(lease::SETTLE_CANCELS),
            checkpoint: r(lease::CHECKPOINT),
            cancel: r(admin::CANCEL),
            exists: r(admin::EXISTS),
            retry: r(admin::RETRY),
            retry_without_key: r(admin::RETRY_WITHOUT_KEY),
            rescue: r(admin::RESCUE),
            prune_cutoffs: admin::PRUNE_CUTOFFS.to_string(),
            prune_chunk: r(admin::PRUNE_CHUNK),
            job: r(read::JOB),
            counts: r(read::COUNTS),
            lead: r(leader::LEAD),
            resign: r(leader::RESIGN),
            vacuum: r(vacuum::VACUUM),
        }
    }
}

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
