//! Queues as operators see them: the rule a queue's name follows, a queue's
//! settings (for now, whether it is paused), and what listing them shows.
//!
//! A pause is a setting in the store, so every worker on every node honours
//! it: each reads [`Store::paused_queues`](super::Store::paused_queues) once
//! per poll interval and stops claiming from a paused queue. The store's
//! `claim` itself does not look at pauses, so the claim stays one statement
//! on the jobs table (see `jobs/worker/pauses.rs`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{StateCounts, StoreError};

/// The longest queue name, in bytes. Long enough for any naming scheme
/// (`tenant-42.mail.bulk`), short enough to print in a table and a log line.
///
/// ```
/// assert_eq!(steward_core::store::MAX_QUEUE_NAME, 128);
/// ```
pub const MAX_QUEUE_NAME: usize = 128;

/// Checks a queue's name: not empty, at most [`MAX_QUEUE_NAME`] bytes, no
/// control characters (a name an operator cannot type or see). The same
/// rule holds for a new job's queue and for a queue paused or resumed.
///
/// ```
/// use steward_core::store::validate_queue_name;
/// assert!(validate_queue_name("mail").is_ok());
/// assert!(validate_queue_name("").is_err());
/// assert!(validate_queue_name("bad\nname").is_err());
/// ```
pub fn validate_queue_name(name: &str) -> Result<(), StoreError> {
    queue_name_problem(name).map_or(Ok(()), |reason| {
        Err(StoreError::Invalid {
            message: format!("queue name {name:?}: {reason}"),
        })
    })
}

/// Why `name` is not a queue name, if it is not (shared with the check of
/// new jobs, which words its own message).
pub(crate) fn queue_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("empty queue".into());
    }
    if name.len() > MAX_QUEUE_NAME {
        return Some(format!(
            "queue name is {} bytes long (at most {MAX_QUEUE_NAME})",
            name.len()
        ));
    }
    if name.chars().any(char::is_control) {
        return Some("queue name holds a control character".into());
    }
    None
}

/// What a pause or resume did.
///
/// ```
/// use steward_core::store::QueueChange;
/// assert_ne!(QueueChange::Changed, QueueChange::Unchanged);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueChange {
    /// The queue was running and is paused now (or paused and running now).
    Changed,
    /// It was already so: nothing written.
    Unchanged,
    /// No job and no setting names this queue: nothing written. Refused so
    /// that a mistyped name does not pause a queue nobody uses.
    Unknown,
}

/// One queue as [`Store::queues`](super::Store::queues) lists it: every
/// queue that has jobs or a setting.
///
/// ```
/// # fn demo(q: steward_core::store::QueueInfo) {
/// println!("{}: {} available, paused: {}", q.name, q.counts.available, q.paused_since.is_some());
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueInfo {
    /// Its name.
    pub name: String,
    /// How many of its jobs are in each state.
    pub counts: StateCounts,
    /// When it was paused (the store's clock), or `None` if it runs.
    pub paused_since: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_refused_if_empty_too_long_or_holding_a_control_character() {
        assert!(validate_queue_name("default").is_ok());
        assert!(validate_queue_name(&"q".repeat(MAX_QUEUE_NAME)).is_ok());
        for bad in ["", "tab\there", "nul\0", "\u{7f}"] {
            assert!(validate_queue_name(bad).is_err(), "{bad:?}");
        }
        let long = validate_queue_name(&"q".repeat(MAX_QUEUE_NAME + 1)).expect_err("too long");
        assert!(long.to_string().contains("at most 128"), "{long}");
    }
}
