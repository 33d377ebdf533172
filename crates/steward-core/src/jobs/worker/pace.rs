//! How many jobs to claim ahead: just enough to hide the claim round trip.
//!
//! A worker that claims only when a slot frees waits one store round trip
//! per batch with idle slots; one that claims far ahead hoards jobs other
//! workers could run. The buffer that hides the round trip is the number of
//! jobs a queue finishes during one claim: `concurrency × claim time / job
//! time`. Both times are measured (moving averages), so fast jobs get a deep
//! buffer and slow ones almost none.

use std::time::Duration;

/// Weight of a new sample in the moving averages.
const ALPHA: f64 = 0.1;

/// Moving averages of claim round trips and of each queue's job times.
pub(crate) struct Pace {
    claim_secs: f64,
    job_secs: Vec<f64>,
}

impl Pace {
    pub(crate) fn new(queues: usize) -> Self {
        Pace {
            claim_secs: 0.0,
            job_secs: vec![0.0; queues],
        }
    }

    pub(crate) fn claimed(&mut self, took: Duration) {
        self.claim_secs = average(self.claim_secs, took.as_secs_f64());
    }

    pub(crate) fn ran(&mut self, queue: usize, took: Duration) {
        if let Some(avg) = self.job_secs.get_mut(queue) {
            *avg = average(*avg, took.as_secs_f64());
        }
    }

    /// Jobs to keep buffered for `queue`, at most `max`. Twice the jobs
    /// finished during one claim, so the refill (at half) lands in time.
    pub(crate) fn prefetch(&self, queue: usize, concurrency: usize, max: usize) -> usize {
        let job = self.job_secs.get(queue).copied().unwrap_or(0.0);
        if job <= 0.0 || self.claim_secs <= 0.0 {
            // Nothing measured yet: one slot's worth.
            return concurrency.min(max);
        }
        let want = 2.0 * concurrency as f64 * self.claim_secs / job;
        if want >= max as f64 {
            max
        } else {
            want.ceil() as usize
        }
    }
}

fn average(avg: f64, sample: f64) -> f64 {
    if avg <= 0.0 {
        sample
    } else {
        avg + ALPHA * (sample - avg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_jobs_get_a_deep_buffer_and_slow_ones_almost_none() {
        let mut pace = Pace::new(2);
        assert_eq!(pace.prefetch(0, 16, 256), 16, "before any measurement");
        pace.claimed(Duration::from_millis(1));
        pace.ran(0, Duration::from_micros(20));
        pace.ran(1, Duration::from_secs(2));
        assert_eq!(pace.prefetch(0, 16, 256), 256);
        assert_eq!(pace.prefetch(1, 16, 256), 1);
    }
}
