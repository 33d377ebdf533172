//! Cron expressions in a time zone (issue 13, items 1, 2 and 7): when a
//! schedule fires across daylight-saving changes and leap years, and how a
//! bad expression or zone is refused. Times are given, never read from the
//! clock: the tests run the same any day.

use chrono::{DateTime, Utc};
use steward_core::jobs::{Cron, CronError};

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("an RFC 3339 time")
        .with_timezone(&Utc)
}

fn next(cron: &Cron, after: &str, n: usize) -> Vec<String> {
    cron.upcoming(utc(after), n)
        .into_iter()
        .map(|t| t.format("%Y-%m-%dT%H:%MZ").to_string())
        .collect()
}

#[test]
fn a_daily_job_in_the_skipped_hour_runs_once_right_after_it() {
    // Berlin, 2027-03-28: 02:00 CET becomes 03:00 CEST.
    let cron = Cron::parse("30 2 * * *", "Europe/Berlin").unwrap();
    assert_eq!(
        next(&cron, "2027-03-27T12:00:00Z", 3),
        [
            "2027-03-28T01:00Z",
            "2027-03-29T00:30Z",
            "2027-03-30T00:30Z"
        ]
    );
    // New York, 2027-03-14: 02:00 EST becomes 03:00 EDT.
    let cron = Cron::parse("30 2 * * *", "America/New_York").unwrap();
    assert_eq!(
        next(&cron, "2027-03-13T12:00:00Z", 2),
        ["2027-03-14T07:00Z", "2027-03-15T06:30Z"]
    );
}

#[test]
fn a_daily_job_in_the_repeated_hour_runs_once_at_its_first_pass() {
    // Berlin, 2027-10-31: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
    let cron = Cron::parse("30 2 * * *", "Europe/Berlin").unwrap();
    assert_eq!(
        next(&cron, "2027-10-30T12:00:00Z", 2),
        ["2027-10-31T00:30Z", "2027-11-01T01:30Z"]
    );
    // New York, 2027-11-07: 02:00 EDT becomes 01:00 EST; 01:30 happens twice.
    let cron = Cron::parse("30 1 * * *", "America/New_York").unwrap();
    assert_eq!(
        next(&cron, "2027-11-06T12:00:00Z", 2),
        ["2027-11-07T05:30Z", "2027-11-08T06:30Z"]
    );
}

#[test]
fn an_hourly_job_keeps_its_cadence_through_both_changes() {
    let cron = Cron::parse("@hourly", "Europe/Berlin").unwrap();
    for (after, n) in [("2027-03-27T22:30:00Z", 6), ("2027-10-30T21:30:00Z", 7)] {
        let times = cron.upcoming(utc(after), n);
        for pair in times.windows(2) {
            assert_eq!(pair[1] - pair[0], chrono::Duration::hours(1), "{times:?}");
        }
    }
}

#[test]
fn the_29th_of_february_fires_only_in_leap_years() {
    let cron = Cron::parse("0 0 29 2 *", "UTC").unwrap();
    assert_eq!(
        next(&cron, "2025-01-01T00:00:00Z", 3),
        [
            "2028-02-29T00:00Z",
            "2032-02-29T00:00Z",
            "2036-02-29T00:00Z"
        ]
    );
}

#[test]
fn seconds_and_aliases_parse() {
    let cron = Cron::parse("*/15 * * * * *", "UTC").unwrap();
    assert_eq!(
        cron.upcoming(utc("2027-01-01T00:00:00Z"), 2),
        [utc("2027-01-01T00:00:15Z"), utc("2027-01-01T00:00:30Z")]
    );
    let daily = Cron::parse("@daily", "UTC").unwrap();
    assert_eq!(
        next(&daily, "2027-01-01T10:00:00Z", 1),
        ["2027-01-02T00:00Z"]
    );
    assert_eq!(daily.expression(), "@daily");
    assert_eq!(daily.zone(), "UTC");
}

#[test]
fn a_bad_expression_or_zone_is_refused_by_name() {
    let err = Cron::parse("61 * * * *", "UTC").unwrap_err();
    assert!(matches!(err, CronError::Expression { .. }), "{err:?}");
    assert!(err.to_string().contains("`61 * * * *`"), "{err}");
    let err = Cron::parse("0 * * * *", "Mars/Olympus_Mons").unwrap_err();
    assert!(matches!(err, CronError::Zone { .. }), "{err:?}");
    assert!(err.to_string().contains("`Mars/Olympus_Mons`"), "{err}");
    assert!(Cron::parse("", "UTC").is_err());
    assert!(Cron::parse("* * *", "UTC").is_err());
}
