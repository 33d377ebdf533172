//! The filter flags shared by `steward jobs list` and the bulk actions
//! (`retry|cancel|delete --matching`): one definition, so a filter an
//! operator tried with `list` selects exactly the same jobs when acted on.

use clap::Args;
use steward::store::{JobQuery, JobState, JobTime, TimeBound};

use crate::time_arg::parse_time_bound;

/// Which jobs: by state, queue, kind, a time range and the last error.
#[derive(Args, Clone, Debug, Default)]
pub struct JobFilterArgs {
    /// Only jobs in this state (repeat for several): scheduled, available,
    /// running, retryable, completed, dead or cancelled.
    #[arg(long = "state", value_parser = parse_state)]
    pub states: Vec<JobState>,
    /// Only jobs of this queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// Only jobs of this kind.
    #[arg(long)]
    pub kind: Option<String>,
    /// Only jobs whose time (see --time) is at or after this: an age counted
    /// back from the store's clock (90s, 15m, 1h, 2d, 1w) or an RFC 3339
    /// time (2026-01-02T03:04:05Z).
    #[arg(long, value_name = "AGE|TIME", value_parser = parse_time_bound, allow_hyphen_values = true)]
    pub since: Option<TimeBound>,
    /// Only jobs whose time (see --time) is before this (an age or a time,
    /// as --since).
    #[arg(long, value_name = "AGE|TIME", value_parser = parse_time_bound, allow_hyphen_values = true)]
    pub until: Option<TimeBound>,
    /// Which time --since and --until bound: created (the default), run-at
    /// (when the job runs, or ran last) or finished (unfinished jobs have
    /// none).
    #[arg(long, default_value = "created", value_parser = parse_time_arg)]
    pub time: TimeArg,
    /// Only jobs whose last attempt's error contains this text (ASCII letters
    /// in any case; `%` and `_` are plain characters).
    #[arg(long, value_name = "TEXT")]
    pub error: Option<String>,
}

/// The values of `--time`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeArg {
    /// When the job was enqueued.
    #[default]
    Created,
    /// When the job runs, or ran last.
    RunAt,
    /// When the job completed, died or was cancelled.
    Finished,
}

impl From<TimeArg> for JobTime {
    fn from(time: TimeArg) -> JobTime {
        match time {
            TimeArg::Created => JobTime::Created,
            TimeArg::RunAt => JobTime::RunAt,
            TimeArg::Finished => JobTime::Finished,
        }
    }
}

impl JobFilterArgs {
    /// The store query these flags select (default page size and order;
    /// callers set the limit, order and cursor, then validate).
    pub fn query(&self) -> JobQuery {
        let mut query = JobQuery::default().states(self.states.iter().copied());
        query.queue = self.queue.clone();
        query.kind = self.kind.clone();
        let range = query.range_mut(self.time.into());
        range.from = self.since;
        range.to = self.until;
        query.error = self.error.clone();
        query
    }
}

/// One line on a mistake, like `--state` (clap's own list of values takes
/// a second line).
fn parse_time_arg(text: &str) -> Result<TimeArg, String> {
    match text {
        "created" => Ok(TimeArg::Created),
        "run-at" => Ok(TimeArg::RunAt),
        "finished" => Ok(TimeArg::Finished),
        _ => Err("expected created, run-at or finished".into()),
    }
}

fn parse_state(text: &str) -> Result<JobState, String> {
    text.parse::<JobState>().map_err(|_| {
        let all: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
        format!("expected one of {}", all.join(", "))
    })
}
