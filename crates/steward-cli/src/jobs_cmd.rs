//! `steward jobs ...`: look at jobs in any store.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use steward::store::{JobAction, JobId, JobOrder, JobQuery, JobState, MAX_PAGE, Store};

use crate::job_filter::JobFilterArgs;
use crate::job_view::JobView;
use crate::jobs_act::{self, ActArgs, RunArgs, UpdateArgs};
use crate::store_url::{self, DEFAULT_STORE, NotFound};

/// `steward jobs` subcommands.
#[derive(Subcommand)]
pub enum JobsCommand {
    /// The number of jobs in each state.
    Counts(CountsArgs),
    /// Jobs by state, queue, kind, time and error, newest first, a page at a time.
    #[command(after_help = "Examples:\n  \
        steward jobs list --state dead --queue mail --limit 20\n  \
        steward jobs list --since 1h --time finished --error timeout\n  \
        steward jobs list --since 2026-01-02T00:00:00Z --until 2026-01-03T00:00:00Z --order oldest\n  \
        steward jobs list --state dead --cursor n1200-3f9c0a1b2c3d4e5f --json\n\n\
        A page that is full ends with `more: --cursor TOKEN` (in JSON: next_cursor);\n\
        repeat the same filters and order with it for the next page.")]
    List(ListArgs),
    /// One job with its attempts.
    Show(ShowArgs),
    /// Run a dead, cancelled or completed job again, with a fresh attempt budget
    /// (one job, or every job --matching filters).
    #[command(after_help = ACT_EXAMPLES)]
    Retry(ActArgs),
    /// Cancel a job: at once if queued, through its worker if running
    /// (one job, or every job --matching filters).
    #[command(after_help = ACT_EXAMPLES)]
    Cancel(ActArgs),
    /// Delete a job with its errors and checkpoint (one job, or every job
    /// --matching filters); a running job is refused: cancel it first.
    #[command(after_help = ACT_EXAMPLES)]
    Delete(ActArgs),
    /// Run a scheduled, available or retryable job now.
    #[command(after_help = "Example:\n  steward jobs run 1234")]
    Run(RunArgs),
    /// Change a waiting job's priority and/or run time.
    #[command(after_help = "Example:\n  steward jobs update 1234 --priority -5\n  \
                            steward jobs update 1234 --delay 10m\n  \
                            steward jobs update 1234 --run-at 2030-01-02T03:04:05Z --json")]
    Update(UpdateArgs),
}

const ACT_EXAMPLES: &str = "Examples:\n  steward jobs retry 1234\n  \
    steward jobs retry --matching --state dead --queue mail --dry-run\n  \
    steward jobs cancel --matching --state scheduled --kind report --chunk 200\n  \
    steward jobs delete --matching --state cancelled --json\n\
    An interrupted --matching run stops between chunks (each chunk is all or nothing);\n\
    run the same command again, or add --cursor LAST_ID, to finish.";

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
    /// The order, by id: newest (the default: what just happened comes
    /// first, and jobs enqueued while paging never shift the pages) or
    /// oldest.
    #[arg(long, default_value = "newest", value_parser = parse_order)]
    order: OrderArg,
    /// Where the previous page ended: the token it printed (`more: --cursor
    /// TOKEN`, or next_cursor in JSON), with the same filters and order.
    #[arg(long, value_name = "TOKEN")]
    cursor: Option<String>,
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

/// The values of `--order`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderArg {
    /// Highest id first.
    Newest,
    /// Lowest id first.
    Oldest,
}

/// One line on a mistake, like `--state`.
fn parse_order(text: &str) -> Result<OrderArg, String> {
    match text {
        "newest" => Ok(OrderArg::Newest),
        "oldest" => Ok(OrderArg::Oldest),
        _ => Err("expected newest or oldest".into()),
    }
}

impl ListArgs {
    /// The query these flags ask for, validated and resumed from the
    /// cursor: the operator's mistakes are usage errors (exit 64), found
    /// before the store is opened.
    fn query(&self) -> anyhow::Result<JobQuery> {
        let usage = |e: steward::store::StoreError| match e {
            steward::store::StoreError::Invalid { message } => {
                anyhow::Error::new(store_url::UsageError(message))
            }
            other => anyhow::Error::new(other),
        };
        let order = match self.order {
            OrderArg::Newest => JobOrder::NewestFirst,
            OrderArg::Oldest => JobOrder::OldestFirst,
        };
        let mut query = self.filter.query().limit(self.limit).order(order);
        if let Some(token) = &self.cursor {
            query = query.resume(token).map_err(usage)?;
        }
        query.validate().map_err(usage)?;
        Ok(query)
    }
}

/// What `jobs list --json` prints: one page and the next page's token.
#[derive(serde::Serialize)]
struct ListPage {
    jobs: Vec<JobView>,
    next_cursor: Option<String>,
}

pub async fn run(cmd: JobsCommand) -> anyhow::Result<ExitCode> {
    if let JobsCommand::List(args) = &cmd {
        args.query()?;
    }
    let url = match &cmd {
        JobsCommand::Counts(a) => &a.store,
        JobsCommand::List(a) => &a.common.store,
        JobsCommand::Show(a) => &a.store,
        JobsCommand::Retry(a) | JobsCommand::Cancel(a) | JobsCommand::Delete(a) => &a.store,
        JobsCommand::Run(a) => &a.store,
        JobsCommand::Update(a) => &a.store,
    };
    // Bad input is refused before the store is opened: it writes nothing.
    match &cmd {
        JobsCommand::Retry(a) => jobs_act::check(JobAction::Retry, a)?,
        JobsCommand::Cancel(a) => jobs_act::check(JobAction::Cancel, a)?,
        JobsCommand::Delete(a) => jobs_act::check(JobAction::Delete, a)?,
        JobsCommand::Run(a) => jobs_act::check_change(a.id, None)?,
        JobsCommand::Update(a) => jobs_act::check_change(a.id, Some(jobs_act::change_of(a)))?,
        _ => {}
    }
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
        JobsCommand::Retry(args) => return jobs_act::act(&*store, JobAction::Retry, &args).await,
        JobsCommand::Cancel(args) => return jobs_act::act(&*store, JobAction::Cancel, &args).await,
        JobsCommand::Delete(args) => return jobs_act::act(&*store, JobAction::Delete, &args).await,
        JobsCommand::Run(args) => return jobs_act::run_now(&*store, &args).await,
        JobsCommand::Update(args) => return jobs_act::update(&*store, &args).await,
    }
    Ok(ExitCode::SUCCESS)
}

/// `steward jobs list`: a JSON array, or a table and where the next page
/// starts.
async fn list<S: Store>(store: &S, args: ListArgs) -> anyhow::Result<()> {
    let query = args.query()?;
    let jobs = store.jobs(query.clone()).await?;
    let next_cursor = query.next_cursor(&jobs);
    if args.common.json {
        let jobs = jobs.into_iter().map(JobView::from).collect();
        let page = ListPage { jobs, next_cursor };
        println!("{}", serde_json::to_string(&page)?);
        return Ok(());
    }
    print!("{}", crate::job_view::table(&jobs));
    if let Some(token) = next_cursor {
        println!("more: --cursor {token}");
    }
    Ok(())
}
