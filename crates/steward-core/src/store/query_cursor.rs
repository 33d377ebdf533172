//! Page tokens for [`JobQuery`]: an opaque string naming the order, the
//! last id seen and a fingerprint of the filter, so that a token is only
//! ever taken back by the query that produced it.
//!
//! The fingerprint is a SHA-256 (stable across runs, platforms and
//! releases, unlike std's hasher) of the filter written out field by field
//! with lengths, the order and the id. It guards against mistakes (a token
//! pasted into another query, or cut short), not against forgery: there is
//! no secret, and a forged token could only move a listing the caller may
//! run anyway.

use sha2::{Digest, Sha256};

use super::query_range::{JobOrder, TimeBound, TimeRange};
use super::{JobId, JobQuery, JobRecord, StoreError};

/// Hex digits of the fingerprint a token carries.
const FINGERPRINT_HEX: usize = 16;

impl JobQuery {
    /// The token for the page after the job `last` in this query.
    ///
    /// ```
    /// use steward_core::store::{JobId, JobQuery};
    /// let q = JobQuery::default().queue("mail");
    /// let token = q.cursor_after(JobId(41));
    /// assert_eq!(q.clone().resume(&token)?.after, Some(JobId(41)));
    /// # Ok::<(), steward_core::store::StoreError>(())
    /// ```
    pub fn cursor_after(&self, last: JobId) -> String {
        format!(
            "{}{}-{}",
            order_letter(self.order),
            last.0,
            self.fingerprint(last)
        )
    }

    /// The token for the page after `page`, a page this query returned, if
    /// there may be one (the page was full); `None` after the last page.
    ///
    /// ```
    /// use steward_core::store::{JobQuery, Store, StoreError};
    /// async fn two_pages<S: Store>(store: &S) -> Result<(), StoreError> {
    ///     let q = JobQuery::default().limit(50);
    ///     let page = store.jobs(q.clone()).await?;
    ///     if let Some(token) = q.next_cursor(&page) {
    ///         let next = store.jobs(q.resume(&token)?).await?;
    ///     }
    ///     Ok(())
    /// }
    /// ```
    pub fn next_cursor(&self, page: &[JobRecord]) -> Option<String> {
        let full = page.len() >= usize::try_from(self.limit).unwrap_or(usize::MAX);
        match page.last() {
            Some(last) if full => Some(self.cursor_after(last.id)),
            _ => None,
        }
    }

    /// This query, continued after the page `token` ends
    /// ([`next_cursor`](Self::next_cursor)). A token made by another query
    /// (another filter or order; the limit may differ) or garbled is
    /// refused with [`StoreError::Invalid`].
    ///
    /// ```
    /// use steward_core::store::{JobId, JobQuery};
    /// let token = JobQuery::default().kind("a").cursor_after(JobId(7));
    /// assert!(JobQuery::default().kind("b").resume(&token).is_err());
    /// assert!(JobQuery::default().kind("a").resume("garbage").is_err());
    /// ```
    pub fn resume(mut self, token: &str) -> Result<JobQuery, StoreError> {
        let garbled = || StoreError::Invalid {
            message: format!(
                "the cursor `{}` is not one steward made (cut short or mistyped?)",
                shorten(token)
            ),
        };
        let mut chars = token.chars();
        let order = match chars.next() {
            Some('o') => JobOrder::OldestFirst,
            Some('n') => JobOrder::NewestFirst,
            _ => return Err(garbled()),
        };
        let (id, fingerprint) = chars.as_str().split_once('-').ok_or_else(garbled)?;
        let digits_only = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
        let id: i64 = id
            .parse()
            .ok()
            .filter(|_| digits_only)
            .ok_or_else(garbled)?;
        if fingerprint.len() != FINGERPRINT_HEX {
            return Err(garbled());
        }
        if order != self.order {
            return Err(StoreError::Invalid {
                message: format!(
                    "the cursor continues a listing {}, not {}: repeat that listing's order",
                    order_name(order),
                    order_name(self.order)
                ),
            });
        }
        if fingerprint != self.fingerprint(JobId(id)) {
            return Err(StoreError::Invalid {
                message: "the cursor belongs to another query (its filter differs) or is garbled: \
                          repeat the filter that gave it, or start without a cursor"
                    .into(),
            });
        }
        self.after = Some(JobId(id));
        Ok(self)
    }

    /// The token's check: everything that selects and orders jobs (not the
    /// limit, nor the cursor itself), and the id.
    fn fingerprint(&self, last: JobId) -> String {
        let mut h = Sha256::new();
        h.update(b"steward jobs cursor 1\n");
        let mut states: Vec<&str> = self.states.iter().map(|s| s.as_str()).collect();
        states.sort_unstable();
        states.dedup();
        field(&mut h, "states", &states.join(","));
        opt_field(&mut h, "queue", self.queue.as_deref());
        opt_field(&mut h, "kind", self.kind.as_deref());
        range(&mut h, "created", &self.created);
        range(&mut h, "run_at", &self.run_at);
        range(&mut h, "finished", &self.finished);
        opt_field(
            &mut h,
            "min_id",
            self.min_id.map(|i| i.0.to_string()).as_deref(),
        );
        opt_field(
            &mut h,
            "max_id",
            self.max_id.map(|i| i.0.to_string()).as_deref(),
        );
        opt_field(&mut h, "error", self.error.as_deref());
        field(&mut h, "order", order_name(self.order));
        field(&mut h, "last", &last.0.to_string());
        let digest = h.finalize();
        digest
            .iter()
            .take(FINGERPRINT_HEX / 2)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A field as `name len:value;`: lengths keep `a`+`bc` apart from `ab`+`c`.
fn field(h: &mut Sha256, name: &str, value: &str) {
    h.update(format!("{name} {}:", value.len()).as_bytes());
    h.update(value.as_bytes());
    h.update(b";");
}

fn opt_field(h: &mut Sha256, name: &str, value: Option<&str>) {
    match value {
        Some(v) => field(h, name, v),
        None => h.update(format!("{name} none;").as_bytes()),
    }
}

fn range(h: &mut Sha256, name: &str, range: &TimeRange) {
    let bound = |b: Option<TimeBound>| match b {
        None => "open".to_string(),
        Some(TimeBound::At(at)) => format!("at {}", at.to_rfc3339()),
        Some(TimeBound::Ago(age)) => format!("ago {}ns", age.as_nanos()),
    };
    field(
        h,
        name,
        &format!("{}..{}", bound(range.from), bound(range.to)),
    );
}

fn order_letter(order: JobOrder) -> char {
    match order {
        JobOrder::OldestFirst => 'o',
        JobOrder::NewestFirst => 'n',
    }
}

fn order_name(order: JobOrder) -> &'static str {
    match order {
        JobOrder::OldestFirst => "oldest first",
        JobOrder::NewestFirst => "newest first",
    }
}

/// At most 40 characters of a token for an error message: a pasted blob
/// must not flood the one line an error gets.
fn shorten(token: &str) -> String {
    let short: String = token.chars().take(40).collect();
    if short.len() < token.len() {
        format!("{short}...")
    } else {
        short
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::{JobState, JobTime};

    /// Tokens must read back in the next release and on every platform: a
    /// fixed query gives a fixed token (SHA-256 of a fixed text), and the
    /// order of the states given does not matter.
    #[test]
    fn a_token_is_the_same_on_every_run_and_platform() {
        let q = JobQuery::default()
            .states([JobState::Dead, JobState::Cancelled])
            .kind("report")
            .since(JobTime::Finished, TimeBound::Ago(Duration::from_secs(3600)))
            .error("timeout")
            .order(JobOrder::NewestFirst);
        assert_eq!(q.cursor_after(JobId(1200)), "n1200-e237238605a52e53");
        let same = q
            .clone()
            .states([JobState::Cancelled, JobState::Dead, JobState::Dead]);
        assert_eq!(same.cursor_after(JobId(1200)), q.cursor_after(JobId(1200)));
    }
}
