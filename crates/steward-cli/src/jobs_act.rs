//! `steward jobs retry|cancel|delete` (one job, or every job `--matching`
//! the filters of `jobs list`, a chunk at a time), `jobs run` and
//! `jobs update`: acting on stored jobs.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::json;
use steward::jobs::{Bulk, BulkProgress, DEFAULT_CHUNK, Flow, act_on_matching};
use steward::store::{
    ActOn, Acted, CancelResult, JobAction, JobId, JobQuery, Reschedule, Rescheduled, RunAt, Store,
    StoreError, validate_job_id,
};

use crate::job_filter::JobFilterArgs;
use crate::job_view::format_time;
use crate::store_url::{DEFAULT_STORE, NotFound, UsageError};

/// Options of `steward jobs retry|cancel|delete`.
#[derive(Args)]
pub struct ActArgs {
    /// The job's id (or `--matching` and filters, for every matching job).
    #[arg(allow_negative_numbers = true)]
    id: Option<i64>,
    /// Act on every job the filters match (the flags of `steward jobs list`;
    /// at least one is required).
    #[arg(long)]
    matching: bool,
    #[command(flatten)]
    filter: JobFilterArgs,
    /// With `--matching`: only jobs after this id (resume an interrupted run
    /// from the last id it reported).
    #[arg(long, requires = "matching")]
    cursor: Option<i64>,
    /// With `--matching`: count what would be touched, write nothing.
    #[arg(long, requires = "matching")]
    dry_run: bool,
    /// With `--matching`: jobs per chunk (one transaction each, 1 to 1000).
    #[arg(long, default_value_t = DEFAULT_CHUNK, requires = "matching")]
    chunk: u32,
    /// Print JSON.
    #[arg(long, env = "STEWARD_JSON", value_parser = clap::builder::BoolishValueParser::new())]
    pub json: bool,
    /// The store: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB[?schema=NAME]`.
    #[arg(long, default_value = DEFAULT_STORE, env = "STEWARD_STORE")]
    pub store: String,
}

/// Options of `steward jobs run` and `steward jobs update`.
#[derive(Args)]
pub struct UpdateArgs {
    /// The job's id.
    #[arg(allow_negative_numbers = true)]
    pub id: i64,
    /// The new priority (lower runs first).
    #[arg(long, allow_negative_numbers = true)]
    priority: Option<i16>,
    /// Run at this time (RFC 3339, e.g. 2030-01-02T03:04:05Z).
    #[arg(long, conflicts_with = "delay", value_parser = parse_time)]
    run_at: Option<DateTime<Utc>>,
    /// Run this long from now (e.g. 10m).
    #[arg(long, value_parser = crate::parse_duration)]
    delay: Option<Duration>,
    /// Print JSON.
    #[arg(long, env = "STEWARD_JSON", value_parser = clap::builder::BoolishValueParser::new())]
    json: bool,
    /// The store: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB[?schema=NAME]`.
    #[arg(long, default_value = DEFAULT_STORE, env = "STEWARD_STORE")]
    pub store: String,
}

/// Options of `steward jobs run`.
#[derive(Args)]
pub struct RunArgs {
    /// The job's id.
    #[arg(allow_negative_numbers = true)]
    pub id: i64,
    /// Print JSON.
    #[arg(long, env = "STEWARD_JSON", value_parser = clap::builder::BoolishValueParser::new())]
    json: bool,
    /// The store: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB[?schema=NAME]`.
    #[arg(long, default_value = DEFAULT_STORE, env = "STEWARD_STORE")]
    pub store: String,
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e} (expected RFC 3339, e.g. 2030-01-02T03:04:05Z)"))
}

/// A core validation error is the operator's input: exit 64.
fn usage(err: StoreError) -> anyhow::Error {
    match err {
        StoreError::Invalid { message } => UsageError(message).into(),
        other => other.into(),
    }
}

/// Checks the flags before the store is opened: an id or `--matching`
/// (not both), filters only with `--matching`, and at least one filter.
pub fn check(action: JobAction, args: &ActArgs) -> anyhow::Result<()> {
    let filtered = args.filter.query() != JobQuery::default();
    let name = action.as_str();
    match (args.id, args.matching) {
        (Some(_), true) => anyhow::bail!(UsageError(format!(
            "give a job id or --matching, not both (steward jobs {name} ID, or steward jobs {name} --matching --state dead)"
        ))),
        (None, false) => anyhow::bail!(UsageError(format!(
            "give a job id, or --matching with filters (steward jobs {name} --matching --state dead)"
        ))),
        (Some(id), false) if filtered => anyhow::bail!(UsageError(format!(
            "filters select jobs only with --matching (steward jobs {name} {id} takes no filter)"
        ))),
        (None, true) if !filtered => anyhow::bail!(UsageError(format!(
            "--matching needs at least one filter (--state, --queue, --kind), so nothing is {}d by accident",
            if action == JobAction::Delete {
                "delete"
            } else {
                name
            }
        ))),
        (None, true) => bulk(action, args).validate().map_err(usage),
        (Some(id), false) if action == JobAction::Delete => {
            validate_job_id(JobId(id)).map_err(usage)
        }
        (Some(_), false) => Ok(()),
    }
}

fn bulk(action: JobAction, args: &ActArgs) -> Bulk {
    let mut filter = args.filter.query();
    filter.after = args.cursor.map(JobId);
    Bulk::new(action, filter)
        .chunk(args.chunk)
        .dry_run(args.dry_run)
}

/// `steward jobs retry|cancel|delete`, once [`check`] passed.
pub async fn act<S: Store>(
    store: &S,
    action: JobAction,
    args: &ActArgs,
) -> anyhow::Result<ExitCode> {
    match args.id {
        Some(id) => one(store, action, JobId(id), args.json).await,
        None => matching(store, action, args).await,
    }
}

fn done_word(action: JobAction) -> &'static str {
    match action {
        JobAction::Retry => "retried",
        JobAction::Cancel => "cancelled",
        JobAction::Delete => "deleted",
    }
}

/// One job, as `retry ID` and `cancel ID` always answered.
async fn one<S: Store>(
    store: &S,
    action: JobAction,
    id: JobId,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let not_found = || NotFound(format!("no job with id {id}"));
    let (text, value) = match action {
        JobAction::Retry => {
            let found = store.job(id).await?;
            let retried = store.retry(id).await?;
            match (found, retried) {
                (None, _) => anyhow::bail!(not_found()),
                (Some(_), true) => (
                    format!("job {id} will run again"),
                    json!({"id": id, "retried": true}),
                ),
                (Some(job), false) => anyhow::bail!(UsageError(format!(
                    "job {id} is {}: only dead, cancelled or completed jobs can be retried",
                    job.state
                ))),
            }
        }
        JobAction::Cancel => match store.cancel(id).await? {
            CancelResult::Cancelled => (
                format!("job {id} cancelled"),
                json!({"id": id, "cancel": "cancelled"}),
            ),
            CancelResult::Requested => (
                format!("job {id} is running: its worker was asked to cancel it"),
                json!({"id": id, "cancel": "requested"}),
            ),
            CancelResult::AlreadyFinished => (
                format!("job {id} had already finished"),
                json!({"id": id, "cancel": "already_finished"}),
            ),
            CancelResult::NotFound => anyhow::bail!(not_found()),
        },
        JobAction::Delete => match store
            .act_on_jobs(ActOn::new(JobAction::Delete, [id]))
            .await
            .map_err(usage)?[..]
        {
            [Acted::Done] => (
                format!("job {id} deleted"),
                json!({"id": id, "deleted": true}),
            ),
            [Acted::NotFound] => anyhow::bail!(not_found()),
            [Acted::Skipped(state)] => anyhow::bail!(UsageError(format!(
                "job {id} is {state}: its worker still holds it; cancel it first (steward jobs cancel {id}), then delete it once it has stopped"
            ))),
            _ => anyhow::bail!("job {id}: the store answered for another number of jobs"),
        },
    };
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Every matching job, chunk by chunk, with a progress bar on a terminal
/// and a resumable stop on Ctrl-C (between chunks: a chunk is never cut).
async fn matching<S: Store>(
    store: &S,
    action: JobAction,
    args: &ActArgs,
) -> anyhow::Result<ExitCode> {
    let bulk = bulk(action, args);
    let stop = Arc::new(AtomicBool::new(false));
    let on_signal = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::SeqCst);
            }
        })
    };
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    });
    let word = done_word(action);
    let result = act_on_matching(store, &bulk, |p| {
        if let Some(bar) = &bar {
            bar.set_message(format!("{} jobs {word}, {} skipped", p.touched, p.skipped));
        }
        if stop.load(Ordering::SeqCst) {
            Flow::Stop
        } else {
            Flow::Continue
        }
    })
    .await;
    on_signal.abort();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let done = result.map_err(usage)?;
    report(action, args, &done);
    Ok(if done.finished {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::EXIT_INTERRUPTED)
    })
}

fn report(action: JobAction, args: &ActArgs, done: &BulkProgress) {
    if args.json {
        let value = json!({
            "action": action.as_str(),
            "dry_run": args.dry_run,
            "touched": done.touched,
            "skipped": done.skipped,
            "chunks": done.chunks,
            "last_id": done.last_id,
            "finished": done.finished,
        });
        println!("{value}");
        return;
    }
    let word = done_word(action);
    let (touched, skipped) = (done.touched, done.skipped);
    if args.dry_run {
        println!("{touched} jobs would be {word}, {skipped} skipped (dry run: nothing written)");
    } else if done.finished {
        println!("{touched} jobs {word}, {skipped} skipped");
    } else {
        let resume = done
            .last_id
            .map(|id| format!(" (or add --cursor {id} to start where it stopped)"))
            .unwrap_or_default();
        println!(
            "interrupted: {touched} jobs {word}, {skipped} skipped; run the same command again to finish{resume}"
        );
    }
}

/// `steward jobs run ID`: a waiting job due now.
pub async fn run_now<S: Store>(store: &S, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let change = Reschedule::default().run_at(RunAt::Now);
    reschedule(store, args.id, change, args.json).await
}

/// `steward jobs update ID`: a waiting job's new priority and/or run time.
pub async fn update<S: Store>(store: &S, args: &UpdateArgs) -> anyhow::Result<ExitCode> {
    reschedule(store, args.id, change_of(args), args.json).await
}

/// Checks `id` and `change` (in core) before the store is opened.
pub fn check_change(id: i64, change: Option<Reschedule>) -> anyhow::Result<()> {
    validate_job_id(JobId(id)).map_err(usage)?;
    if let Some(change) = change {
        change.validate().map_err(usage)?;
    }
    Ok(())
}

/// The change an `update` asks for (checked by [`check_change`]).
pub fn change_of(args: &UpdateArgs) -> Reschedule {
    Reschedule {
        priority: args.priority,
        run_at: args.run_at.map(RunAt::At).or(args.delay.map(RunAt::In)),
    }
}

async fn reschedule<S: Store>(
    store: &S,
    id: i64,
    change: Reschedule,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let id = JobId(id);
    match store.reschedule(id, change).await.map_err(usage)? {
        Rescheduled::Updated(_) => {}
        Rescheduled::NotFound => anyhow::bail!(NotFound(format!("no job with id {id}"))),
        Rescheduled::NotWaiting(state) => anyhow::bail!(UsageError(format!(
            "job {id} is {state}: only scheduled, available or retryable jobs can be run now or changed"
        ))),
    }
    let Some(job) = store.job(id).await? else {
        anyhow::bail!(NotFound(format!("job {id} was deleted meanwhile")));
    };
    if json {
        let value = json!({
            "id": id,
            "state": job.state.as_str(),
            "priority": job.priority,
            "run_at": format_time(job.run_at),
        });
        println!("{value}");
    } else {
        println!(
            "job {id} is {}, priority {}, runs at {}",
            job.state,
            job.priority,
            format_time(job.run_at)
        );
    }
    Ok(ExitCode::SUCCESS)
}
