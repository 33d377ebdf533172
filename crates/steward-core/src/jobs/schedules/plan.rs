//! One scheduler step for one schedule, as a pure function of the tick
//! owed and the store's now: which ticks to enqueue, which missed ones the
//! misfire policy drops, and the tick owed next. No clock is read here, so
//! the daylight-saving and misfire rules are tested with any times at all.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::jobs::Cron;
use crate::store::{LATEST_TIME, Misfire};

/// At most this many ticks per step: a per-second schedule that missed a
/// day does not make one transaction of 86,400 jobs. The rest are owed
/// still, and the next step (at once) goes on from there.
pub(crate) const MAX_TICKS_PER_STEP: usize = 1000;

/// What one step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The ticks to enqueue, oldest first.
    pub(crate) ticks: Vec<DateTime<Utc>>,
    /// Missed ticks the policy drops: those at or after the first and
    /// before the second.
    pub(crate) dropped: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The tick owed after this step.
    pub(crate) next_at: DateTime<Utc>,
}

/// The step for a schedule owing `owed` (`None`: not armed yet) at `now`.
/// Ticks older than `grace` are missed and handled by `misfire`; the
/// others are on time and all run. An armed schedule owes the first tick
/// after `now`: ticks before it were never owed.
pub(crate) fn plan(
    cron: &Cron,
    misfire: Misfire,
    owed: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    grace: Duration,
) -> Plan {
    let after = |t: DateTime<Utc>| cron.next_after(t).unwrap_or(LATEST_TIME);
    let owed = match owed {
        Some(owed) if owed <= now => owed,
        // Not armed: owe the first tick after now. Not due: nothing to do.
        other => {
            return Plan {
                ticks: Vec::new(),
                dropped: None,
                next_at: other.unwrap_or_else(|| after(now)),
            };
        }
    };
    let grace = TimeDelta::from_std(grace).unwrap_or(TimeDelta::MAX);
    let cutoff = now.checked_sub_signed(grace).unwrap_or(owed).max(owed);
    let mut ticks = Vec::new();
    let mut dropped = None;
    if owed < cutoff {
        let keep = match misfire {
            Misfire::Skip => 0,
            Misfire::Once => 1,
            Misfire::All { limit } => usize::try_from(limit).unwrap_or(usize::MAX),
        };
        // Walk back to the `keep`-th missed tick, then forward from there:
        // forward is how ticks are counted everywhere else (a repeated
        // hour's first pass only), so the kept ticks are real ticks.
        let mut start = cutoff;
        // At most `MAX_MISFIRE_LIMIT` steps back (the limit's bound).
        for _ in 0..keep {
            match cron.before(start) {
                Some(t) if t > owed => start = t,
                _ => {
                    start = owed;
                    break;
                }
            }
        }
        let mut missed = if keep == 0 {
            Vec::new()
        } else {
            forward(cron, start, owed, |t| t < cutoff, MAX_TICKS_PER_STEP)
        };
        // A backward search does not see a tick moved out of a skipped
        // hour, so the walk may start one tick early: keep the latest
        // `keep`, when the whole span was seen.
        if missed.len() < MAX_TICKS_PER_STEP && missed.len() > keep {
            missed.drain(..missed.len() - keep);
        }
        let first_kept = missed.first().copied().unwrap_or(cutoff);
        if owed < first_kept && cron.at_or_after(owed).is_some_and(|t| t < first_kept) {
            dropped = Some((owed, first_kept));
        }
        ticks = missed;
    }
    let room = MAX_TICKS_PER_STEP - ticks.len();
    ticks.extend(forward(cron, cutoff, owed, |t| t <= now, room));
    let next_at = if ticks.len() == MAX_TICKS_PER_STEP {
        // Cut short: the rest are owed still.
        ticks.last().map_or_else(|| after(now), |&t| after(t))
    } else {
        after(now)
    };
    Plan {
        ticks,
        dropped,
        next_at,
    }
}

/// Ticks from `from` (inclusive) while `keep_going`, at most `max`. The
/// tick `owed` counts as a tick even if the expression does not match it:
/// it is what the store says is owed (moved by `Store::time_travel`, or
/// armed under a zone's older rules), and it must fire once, not vanish.
fn forward(
    cron: &Cron,
    from: DateTime<Utc>,
    owed: DateTime<Utc>,
    keep_going: impl Fn(DateTime<Utc>) -> bool,
    max: usize,
) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut next = if from == owed {
        Some(owed)
    } else {
        cron.at_or_after(from)
    };
    while let Some(t) = next {
        if out.len() >= max || !keep_going(t) {
            break;
        }
        out.push(t);
        next = cron.next_after(t);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("a valid time")
    }

    fn minutely() -> Cron {
        Cron::parse("* * * * *", "UTC").expect("valid")
    }

    const GRACE: Duration = Duration::from_secs(60);

    #[test]
    fn an_unarmed_schedule_owes_the_first_tick_after_now() {
        let p = plan(
            &minutely(),
            Misfire::Once,
            None,
            t("2027-01-01T10:00:30Z"),
            GRACE,
        );
        assert!(p.ticks.is_empty());
        assert_eq!(p.next_at, t("2027-01-01T10:01:00Z"));
    }

    #[test]
    fn on_time_ticks_all_run_whatever_the_policy() {
        for misfire in [Misfire::Skip, Misfire::Once, Misfire::All { limit: 1 }] {
            let p = plan(
                &Cron::parse("*/10 * * * * *", "UTC").expect("valid"),
                misfire,
                Some(t("2027-01-01T10:00:00Z")),
                t("2027-01-01T10:00:25Z"),
                GRACE,
            );
            assert_eq!(p.ticks.len(), 3, "{misfire}: 00, 10, 20");
            assert_eq!(p.dropped, None);
            assert_eq!(p.next_at, t("2027-01-01T10:00:30Z"));
        }
    }

    #[test]
    fn missed_ticks_follow_the_policy() {
        let owed = Some(t("2027-01-01T09:00:00Z"));
        let now = t("2027-01-01T10:00:30Z");
        let cron = minutely();
        // Missed: 09:00 .. 09:59 (before 09:59:30); on time: 10:00.
        let skip = plan(&cron, Misfire::Skip, owed, now, GRACE);
        assert_eq!(skip.ticks, [t("2027-01-01T10:00:00Z")]);
        assert_eq!(
            skip.dropped,
            Some((t("2027-01-01T09:00:00Z"), t("2027-01-01T09:59:30Z")))
        );
        let once = plan(&cron, Misfire::Once, owed, now, GRACE);
        assert_eq!(
            once.ticks,
            [t("2027-01-01T09:59:00Z"), t("2027-01-01T10:00:00Z")]
        );
        let all = plan(&cron, Misfire::All { limit: 3 }, owed, now, GRACE);
        assert_eq!(
            all.ticks.len(),
            4,
            "the latest 3 missed and the on-time one"
        );
        assert_eq!(all.ticks[0], t("2027-01-01T09:57:00Z"));
        assert_eq!(
            all.dropped,
            Some((t("2027-01-01T09:00:00Z"), t("2027-01-01T09:57:00Z")))
        );
        let every = plan(&cron, Misfire::All { limit: 100 }, owed, now, GRACE);
        assert_eq!((every.ticks.len(), every.dropped), (61, None));
        for p in [skip, once, all, every] {
            assert_eq!(p.next_at, t("2027-01-01T10:01:00Z"));
        }
    }

    #[test]
    fn a_long_outage_is_worked_off_in_bounded_steps_without_losing_a_tick() {
        let cron = Cron::parse("* * * * * *", "UTC").expect("valid");
        let now = t("2027-01-02T00:00:00Z");
        let mut owed = t("2027-01-01T22:00:00Z");
        let mut fired = 0;
        for _ in 0..10 {
            let p = plan(&cron, Misfire::All { limit: 5000 }, Some(owed), now, GRACE);
            assert!(p.ticks.len() <= MAX_TICKS_PER_STEP);
            if let Some(&first) = p.ticks.first() {
                assert!(first >= owed);
                assert!(
                    first >= t("2027-01-01T22:35:40Z"),
                    "within the latest 5000 missed"
                );
            }
            fired += p.ticks.len();
            owed = p.next_at;
            if owed > now {
                break;
            }
        }
        assert_eq!(
            fired,
            5000 + 61,
            "the latest 5000 missed, then 60 s of on-time ticks"
        );
    }

    #[test]
    fn an_absurd_grace_or_owed_time_does_not_panic() {
        let cron = minutely();
        let now = t("2027-01-01T10:00:30Z");
        let p = plan(
            &cron,
            Misfire::Once,
            Some(crate::store::EARLIEST_TIME),
            now,
            Duration::MAX,
        );
        assert_eq!(
            p.ticks.len(),
            MAX_TICKS_PER_STEP,
            "all on time, in bounded steps"
        );
        let never = Cron::parse("0 0 30 2 *", "UTC").expect("valid: Feb 30 never comes");
        assert_eq!(
            plan(&never, Misfire::Once, None, now, GRACE).next_at,
            LATEST_TIME
        );
    }

    /// A scheduler stepping every `every` of a controllable clock from
    /// `from` to `to`, as the service does: every tick it fired.
    fn simulate(expr: &str, zone: &str, from: &str, to: &str, every: i64) -> Vec<DateTime<Utc>> {
        let cron = Cron::parse(expr, zone).expect("valid");
        let (mut now, end) = (t(from), t(to));
        let mut owed = None;
        let mut fired = Vec::new();
        while now <= end {
            let p = plan(&cron, Misfire::Once, owed, now, GRACE);
            fired.extend(p.ticks);
            owed = Some(p.next_at);
            now += TimeDelta::seconds(every);
        }
        fired
    }

    #[test]
    fn across_daylight_saving_a_daily_job_runs_once_a_day_and_an_hourly_one_keeps_its_cadence() {
        for (zone, spring, fall) in [
            ("Europe/Berlin", "2027-03-28", "2027-10-31"),
            ("America/New_York", "2027-03-14", "2027-11-07"),
        ] {
            for day in [spring, fall] {
                let (from, to) = (format!("{day}T00:00:00Z"), format!("{day}T23:59:59Z"));
                // Two days around the change, in UTC, cover its local day.
                let from = (t(&from) - TimeDelta::hours(12)).to_rfc3339();
                let to = (t(&to) + TimeDelta::hours(12)).to_rfc3339();
                let daily = simulate("30 2 * * *", zone, &from, &to, 20);
                let local_day = |x: &DateTime<Utc>| {
                    x.with_timezone(&zone.parse::<chrono_tz::Tz>().expect("zone"))
                        .date_naive()
                };
                let on_the_day: Vec<_> = daily
                    .iter()
                    .filter(|x| local_day(x).to_string() == day)
                    .collect();
                assert_eq!(
                    on_the_day.len(),
                    1,
                    "{zone} {day}: the 02:30 job ran {daily:?}"
                );
                let hourly = simulate("0 * * * *", zone, &from, &to, 20);
                for pair in hourly.windows(2) {
                    assert_eq!(
                        pair[1] - pair[0],
                        TimeDelta::hours(1),
                        "{zone} {day}: {pair:?}"
                    );
                }
                assert!(
                    hourly.len() >= 47,
                    "{zone} {day}: {} hourly ticks",
                    hourly.len()
                );
            }
        }
    }

    #[test]
    fn a_leap_day_job_fires_only_on_leap_days() {
        let fired = simulate(
            "0 0 29 2 *",
            "UTC",
            "2027-01-01T00:00:00Z",
            "2029-01-01T00:00:00Z",
            3600,
        );
        assert_eq!(fired, [t("2028-02-29T00:00:00Z")]);
    }

    #[test]
    fn the_tick_owed_fires_even_when_the_expression_does_not_match_it() {
        // After `Store::time_travel` by 90 minutes, an hourly schedule owes
        // 08:30: it fires once, then the hours go on.
        let cron = Cron::parse("0 * * * *", "UTC").expect("valid");
        let owed = Some(t("2027-01-01T08:30:00Z"));
        let p = plan(
            &cron,
            Misfire::Skip,
            owed,
            t("2027-01-01T09:10:00Z"),
            Duration::MAX,
        );
        assert_eq!(
            p.ticks,
            [t("2027-01-01T08:30:00Z"), t("2027-01-01T09:00:00Z")]
        );
        assert_eq!(p.next_at, t("2027-01-01T10:00:00Z"));
        let once = plan(&cron, Misfire::Once, owed, t("2027-01-01T12:10:00Z"), GRACE);
        assert_eq!(
            once.ticks,
            [t("2027-01-01T12:00:00Z")],
            "the latest missed, once"
        );
        let all = plan(
            &cron,
            Misfire::All { limit: 10 },
            owed,
            t("2027-01-01T10:10:00Z"),
            GRACE,
        );
        assert_eq!(
            all.ticks.first(),
            Some(&t("2027-01-01T08:30:00Z")),
            "the owed one counts"
        );
    }
}
