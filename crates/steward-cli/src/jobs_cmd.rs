//! `steward jobs ...`: look at jobs in any store.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use steward::store::{JobId, JobState, MAX_PAGE, Store};

use crate::job_filter::JobFilterArgs;
use crate::job_view::JobView;
use crate::store_url::{self, DEFAULT_STORE, NotFound};

/// `steward jobs` subcommands.
#[derive(Subcommand)]
pub enum JobsCommand {
    /// The number of jobs in each state.
    Counts(CountsArgs),
    /// Jobs by state, queue and kind, oldest first, a page at a time.
    #[command(
        after_help = "Example:\n  steward jobs list --state dead --queue mail --limit 20\n  \
                            steward jobs list --state dead --cursor 1200 --json"
    )]
    List(ListArgs),
    /// One job with its attempts.
    Show(ShowArgs),
    /// Run a dead, cancelled or completed job again, with a fresh attempt budget.
    Retry(IdArgs),
    /// Cancel a job: at once if queued, through its worker if running.
    Cancel(IdArgs),
}

/// Options of `steward jobs retry` and `steward jobs cancel`.
#[derive(Args)]
pub struct IdArgs {
    /// The job's id.
    id: i64,
    /// The store: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB[?schema=NAME]`.
    #[arg(long, default_value = DEFAULT_STORE, env = "STEWARD_STORE")]
    store: String,
}

/// Options of `steward jobs counts`.
#[derive(Args)]
pub struct CountsArgs {
    /// Print JSON.
    #[arg(long, env = "STEWARD_JSON", value_parser = clap::builder::BoolishValueParser::new())]
    json: bool,
    /// The store: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB[?schema=NAME]`.
    #[arg(long, default_value = DEFAULT_STORE, env = "STEWARD_STORE")]
    store: String,
}

/// Options of `steward jobs list`.
#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    filter: JobFilterArgs,
    /// At most this many jobs (1 to 1000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PAGE)))]
    limit: u32,
    /// Only jobs after this id: the last id of the previous page.
    #[arg(long)]
    cursor: Option<i64>,
    #[command(flatten)]
    common: CountsArgs,
}

/// Options of `steward jobs show`.
#[derive(Args)]
pub struct ShowArgs {
    /// The job's id.
    id: i64,
    /// Print JSON.
    #[arg(long, env = "STEWARD_JSON", value_parser = clap::builder::BoolishValueParser::new())]
    json: bool,
    /// The store: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB[?schema=NAME]`.
    #[arg(long, default_value = DEFAULT_STORE, env = "STEWARD_STORE")]
    store: String,
}

pub async fn run(cmd: JobsCommand) -> anyhow::Result<ExitCode> {
    let url = match &cmd {
        JobsCommand::Counts(a) => &a.store,
        JobsCommand::List(a) => &a.common.store,
        JobsCommand::Show(a) => &a.store,
        JobsCommand::Retry(a) | JobsCommand::Cancel(a) => &a.store,
    };
    // None of these commands makes a database: on a mistyped path they say
    // there is none instead of leaving an empty one behind.
    let store = store_url::open_existing(url).await?;
    let result = run_with(store.clone(), cmd).await;
    store.close().await;
    result
}

async fn run_with<S: Store>(store: Arc<S>, cmd: JobsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        JobsCommand::Counts(args) => {
            let counts = store.counts().await?;
            if args.json {
                println!("{}", serde_json::to_string(&counts)?);
            } else {
                for state in JobState::ALL {
                    println!("{:<10} {}", state.as_str(), counts.get(state));
                }
            }
        }
        JobsCommand::List(args) => list(&*store, args).await?,
        JobsCommand::Show(args) => {
            let job = store.job(JobId(args.id)).await?;
            let Some(job) = job else {
                anyhow::bail!(NotFound(format!("no job with id {}", args.id)));
            };
            let view = JobView::from(job);
            if args.json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print!("{}", view.text());
            }
        }
        JobsCommand::Retry(args) => {
            let id = JobId(args.id);
            let found = store.job(id).await?;
            let retried = store.retry(id).await?;
            match (found, retried) {
                (None, _) => anyhow::bail!(NotFound(format!("no job with id {}", args.id))),
                (Some(_), true) => println!("job {id} will run again"),
                (Some(job), false) => anyhow::bail!(store_url::UsageError(format!(
                    "job {id} is {}: only dead, cancelled or completed jobs can be retried",
                    job.state
                ))),
            }
        }
        JobsCommand::Cancel(args) => {
            use steward::store::CancelResult;
            let id = JobId(args.id);
            let result = store.cancel(id).await?;
            match result {
                CancelResult::Cancelled => println!("job {id} cancelled"),
                CancelResult::Requested => {
                    println!("job {id} is running: its worker was asked to cancel it")
                }
                CancelResult::AlreadyFinished => println!("job {id} had already finished"),
                CancelResult::NotFound => {
                    anyhow::bail!(NotFound(format!("no job with id {}", args.id)))
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `steward jobs list`: a JSON array, or a table and where the next page
/// starts.
async fn list<S: Store>(store: &S, args: ListArgs) -> anyhow::Result<()> {
    let mut query = args.filter.query().limit(args.limit);
    query.after = args.cursor.map(JobId);
    let jobs = store.jobs(query).await?;
    let full = jobs.len() == args.limit as usize;
    let last = jobs.last().map(|j| j.id);
    if args.common.json {
        let views: Vec<JobView> = jobs.into_iter().map(JobView::from).collect();
        println!("{}", serde_json::to_string(&views)?);
        return Ok(());
    }
    print!("{}", crate::job_view::table(&jobs));
    if let (true, Some(last)) = (full, last) {
        println!("more: --cursor {last}");
    }
    Ok(())
}
