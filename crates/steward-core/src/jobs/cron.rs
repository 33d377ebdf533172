//! Cron expressions in an IANA time zone: when a schedule fires. Parsing
//! and the daylight-saving rules are `croner`'s (a maintained parser that
//! follows Vixie cron); the zones are `chrono-tz`'s, compiled in, so a fresh
//! machine needs no zone files and no network.
//!
//! Across a daylight-saving change, a job at a fixed time that falls in the
//! skipped hour runs once, right after it (02:30 runs at 03:00); one in the
//! repeated hour runs once, at its first pass. Jobs with a wildcard or step
//! in the seconds, minutes or hours keep their cadence in real time.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};

/// Why a cron expression or zone was refused.
///
/// ```
/// let err = steward_core::jobs::Cron::parse("0 * * * *", "Nowhere/City").unwrap_err();
/// assert!(err.to_string().contains("Nowhere/City"));
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CronError {
    /// The expression does not parse.
    #[error("invalid cron expression `{expression}`: {reason}")]
    Expression {
        /// The expression as given.
        expression: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The zone is not an IANA time zone name.
    #[error("unknown time zone `{zone}`: use an IANA name such as `Europe/Berlin` or `UTC`")]
    Zone {
        /// The zone as given.
        zone: String,
    },
}

/// A cron expression in a time zone: 5 fields (minute to weekday), 6 with
/// seconds first, or an alias (`@hourly`, `@daily`, `@weekly`, `@monthly`,
/// `@yearly`).
///
/// ```
/// use steward_core::jobs::Cron;
/// let cron = Cron::parse("30 2 * * *", "Europe/Berlin")?;
/// let after = "2027-03-27T12:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().expect("a valid time");
/// // The spring-forward day has no 02:30: it runs at 03:00 CEST (01:00 UTC).
/// assert_eq!(cron.next_after(after).expect("a fire time").to_rfc3339(), "2027-03-28T01:00:00+00:00");
/// # Ok::<(), steward_core::jobs::CronError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Cron {
    expression: String,
    zone: Tz,
    cron: croner::Cron,
}

impl Cron {
    /// Parses `expression` for times in `zone`.
    ///
    /// ```
    /// assert!(steward_core::jobs::Cron::parse("*/15 * * * * *", "UTC").is_ok());
    /// assert!(steward_core::jobs::Cron::parse("61 * * * *", "UTC").is_err());
    /// ```
    pub fn parse(expression: &str, zone: &str) -> Result<Cron, CronError> {
        let zone_parsed = Tz::from_str(zone).map_err(|_| CronError::Zone {
            zone: zone.to_string(),
        })?;
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expression)
            .map_err(|err| CronError::Expression {
                expression: expression.to_string(),
                reason: err.to_string(),
            })?;
        Ok(Cron {
            expression: expression.to_string(),
            zone: zone_parsed,
            cron,
        })
    }

    /// The expression as given.
    ///
    /// ```
    /// assert_eq!(steward_core::jobs::Cron::parse("@daily", "UTC")?.expression(), "@daily");
    /// # Ok::<(), steward_core::jobs::CronError>(())
    /// ```
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The zone's IANA name.
    ///
    /// ```
    /// assert_eq!(steward_core::jobs::Cron::parse("@daily", "Europe/Berlin")?.zone(), "Europe/Berlin");
    /// # Ok::<(), steward_core::jobs::CronError>(())
    /// ```
    pub fn zone(&self) -> &str {
        self.zone.name()
    }

    /// The first fire time strictly after `after`; `None` past the parser's
    /// range (the year 5000) or for an expression that never matches.
    ///
    /// ```
    /// let cron = steward_core::jobs::Cron::parse("@hourly", "UTC")?;
    /// let t = "2027-01-01T10:15:00Z".parse::<chrono::DateTime<chrono::Utc>>().expect("a valid time");
    /// assert_eq!(cron.next_after(t).expect("a fire time").to_rfc3339(), "2027-01-01T11:00:00+00:00");
    /// # Ok::<(), steward_core::jobs::CronError>(())
    /// ```
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&after.with_timezone(&self.zone), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The first fire time at or after `at`.
    ///
    /// ```
    /// let cron = steward_core::jobs::Cron::parse("@hourly", "UTC")?;
    /// let t = "2027-01-01T10:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().expect("a valid time");
    /// assert_eq!(cron.at_or_after(t), Some(t));
    /// # Ok::<(), steward_core::jobs::CronError>(())
    /// ```
    pub fn at_or_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Searched from a second before, not inclusively from `at`: a time
        // moved out of a skipped hour (02:30 run at 03:00) is found only by
        // a search that starts before the gap, as `next_after` finds it.
        let mut next = self.next_after(at - chrono::TimeDelta::seconds(1))?;
        while next < at {
            next = self.next_after(next)?;
        }
        Some(next)
    }

    /// The last fire time strictly before `before`.
    ///
    /// ```
    /// let cron = steward_core::jobs::Cron::parse("@hourly", "UTC")?;
    /// let t = "2027-01-01T10:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().expect("a valid time");
    /// assert_eq!(cron.before(t).expect("a fire time").to_rfc3339(), "2027-01-01T09:00:00+00:00");
    /// # Ok::<(), steward_core::jobs::CronError>(())
    /// ```
    pub fn before(&self, before: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&before.with_timezone(&self.zone), false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The next `n` fire times after `after`, in order.
    ///
    /// ```
    /// let cron = steward_core::jobs::Cron::parse("0 0 29 2 *", "UTC")?;
    /// let t = "2025-01-01T00:00:00Z".parse::<chrono::DateTime<chrono::Utc>>().expect("a valid time");
    /// assert_eq!(cron.upcoming(t, 2).len(), 2); // 2028 and 2032
    /// # Ok::<(), steward_core::jobs::CronError>(())
    /// ```
    pub fn upcoming(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut times = Vec::with_capacity(n);
        let mut from = after;
        while times.len() < n {
            // Chained from the value found (not a rounded copy), so the
            // search walks a repeated hour's two passes in order.
            let Some(next) = self.next_after(from) else {
                break;
            };
            times.push(next);
            from = next;
        }
        times
    }
}
