//! A mergeable histogram of attempts' run times, for percentiles in charts.
//!
//! Written by hand rather than with `hdrhistogram`: the stores keep it as a
//! short text in a history row and merge rows from many nodes and minutes,
//! which needs only a sparse map of log-spaced buckets (a quarter octave
//! each, so a percentile is within about 9 % of the true value), not a
//! dense array of thousands of counters per row.

use std::collections::BTreeMap;
use std::time::Duration;

use super::StoreError;

/// Buckets per doubling of the run time.
const PER_OCTAVE: f64 = 4.0;
/// The last bucket: runs of 2^40 µs (about 12.7 days) or more land in it.
const LAST_BUCKET: u16 = 160;
/// The longest text [`RunTimes::decode`] accepts (every bucket used, each
/// count at its largest, with separators).
const MAX_TEXT: usize = (LAST_BUCKET as usize + 1) * 25;

/// How long attempts ran: counts per log-spaced bucket, from 1 µs up.
///
/// ```
/// use std::time::Duration;
/// use steward_core::store::RunTimes;
/// let mut times = RunTimes::default();
/// for ms in [10, 20, 30, 40, 1000] {
///     times.record(Duration::from_millis(ms));
/// }
/// let p50 = times.percentile(0.5).unwrap_or_default();
/// assert!(p50 > Duration::from_millis(25) && p50 < Duration::from_millis(35));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunTimes {
    buckets: BTreeMap<u16, u64>,
}

impl RunTimes {
    /// Counts one run of `took`.
    ///
    /// ```
    /// let mut t = steward_core::store::RunTimes::default();
    /// t.record(std::time::Duration::from_millis(5));
    /// assert_eq!(t.count(), 1);
    /// ```
    pub fn record(&mut self, took: Duration) {
        *self.buckets.entry(bucket(took)).or_insert(0) += 1;
    }

    /// Adds `other`'s runs to these.
    ///
    /// ```
    /// let mut a = steward_core::store::RunTimes::default();
    /// let mut b = a.clone();
    /// b.record(std::time::Duration::from_secs(1));
    /// a.merge(&b);
    /// assert_eq!(a.count(), 1);
    /// ```
    pub fn merge(&mut self, other: &RunTimes) {
        for (&b, &n) in &other.buckets {
            let slot = self.buckets.entry(b).or_insert(0);
            *slot = slot.saturating_add(n);
        }
    }

    /// How many runs were recorded.
    ///
    /// ```
    /// assert_eq!(steward_core::store::RunTimes::default().count(), 0);
    /// ```
    pub fn count(&self) -> u64 {
        self.buckets.values().fold(0, |a, &n| a.saturating_add(n))
    }

    /// The run time below which a fraction `q` (0 to 1) of the runs fall,
    /// as the middle of its bucket; `None` if there are no runs.
    ///
    /// ```
    /// let t = steward_core::store::RunTimes::default();
    /// assert_eq!(t.percentile(0.99), None);
    /// ```
    pub fn percentile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        // The rank of the run asked for, 1-based: at least the first.
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (&b, &n) in &self.buckets {
            seen = seen.saturating_add(n);
            if seen >= rank {
                return Some(middle(b));
            }
        }
        self.buckets.keys().next_back().map(|&b| middle(b))
    }

    /// The text a store keeps: `bucket:count` pairs, comma-separated.
    ///
    /// ```
    /// let mut t = steward_core::store::RunTimes::default();
    /// t.record(std::time::Duration::from_micros(1));
    /// assert_eq!(t.encode(), "0:1");
    /// ```
    pub fn encode(&self) -> String {
        let pairs: Vec<String> = self
            .buckets
            .iter()
            .map(|(b, n)| format!("{b}:{n}"))
            .collect();
        pairs.join(",")
    }

    /// Reads [`RunTimes::encode`]'s text back; anything else is refused.
    ///
    /// ```
    /// use steward_core::store::RunTimes;
    /// assert_eq!(RunTimes::decode("3:2,40:1").map(|t| t.count()).ok(), Some(3));
    /// assert!(RunTimes::decode("x").is_err());
    /// ```
    pub fn decode(text: &str) -> Result<RunTimes, StoreError> {
        let bad = |why: &str| StoreError::Invalid {
            message: format!(
                "run times `{}`: {why}",
                text.chars().take(40).collect::<String>()
            ),
        };
        if text.len() > MAX_TEXT {
            return Err(bad("too long"));
        }
        let mut times = RunTimes::default();
        for pair in text.split(',').filter(|p| !p.is_empty()) {
            let (b, n) = pair
                .split_once(':')
                .ok_or_else(|| bad("expected bucket:count"))?;
            let b: u16 = b.parse().map_err(|_| bad("a bucket is not a number"))?;
            let n: u64 = n.parse().map_err(|_| bad("a count is not a number"))?;
            if b > LAST_BUCKET {
                return Err(bad("a bucket is out of range"));
            }
            let slot = times.buckets.entry(b).or_insert(0);
            *slot = slot.saturating_add(n);
        }
        Ok(times)
    }
}

/// The bucket of a run of `took`: a quarter octave of microseconds.
fn bucket(took: Duration) -> u16 {
    let micros = took.as_micros().max(1) as f64;
    let b = (micros.log2() * PER_OCTAVE).floor();
    // `as` saturates a float; the clamp keeps the last bucket open-ended.
    (b as u16).min(LAST_BUCKET)
}

/// The geometric middle of bucket `b`.
fn middle(b: u16) -> Duration {
    let micros = 2f64.powf((f64::from(b) + 0.5) / PER_OCTAVE);
    Duration::from_micros(micros.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_within_a_bucket_of_the_truth() {
        let mut t = RunTimes::default();
        for ms in 1..=1000u64 {
            t.record(Duration::from_millis(ms));
        }
        for (q, truth) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let got = t.percentile(q).map(|d| d.as_secs_f64() * 1000.0);
            let got = got.unwrap_or_default();
            assert!(
                (got / truth - 1.0).abs() < 0.1,
                "p{q}: {got} ms, truth {truth} ms"
            );
        }
    }

    #[test]
    fn extremes_land_in_the_first_and_last_bucket() {
        let mut t = RunTimes::default();
        t.record(Duration::ZERO);
        t.record(Duration::MAX);
        assert_eq!(t.encode(), format!("0:1,{LAST_BUCKET}:1"));
        assert_eq!(RunTimes::decode(&t.encode()).ok(), Some(t));
    }

    #[test]
    fn hostile_text_is_refused() {
        for text in ["1", "a:1", "1:b", "999:1", "1:-1", &"1:1,".repeat(10_000)] {
            assert!(RunTimes::decode(text).is_err(), "{text:.20}");
        }
        assert_eq!(RunTimes::decode("").ok(), Some(RunTimes::default()));
    }
}
