//! The filter flags shared by `steward jobs list` and the bulk actions
//! (`retry|cancel|delete --matching`): one definition, so a filter an
//! operator tried with `list` selects exactly the same jobs when acted on.

use clap::Args;
use steward::store::{JobQuery, JobState};

/// Which jobs: by state, queue and kind.
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
}

impl JobFilterArgs {
    /// The store query these flags select (default page size; callers set
    /// the limit and cursor).
    pub fn query(&self) -> JobQuery {
        let mut query = JobQuery::default().states(self.states.iter().copied());
        query.queue = self.queue.clone();
        query.kind = self.kind.clone();
        query
    }
}

fn parse_state(text: &str) -> Result<JobState, String> {
    text.parse::<JobState>().map_err(|_| {
        let all: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
        format!("expected one of {}", all.join(", "))
    })
}
