//! `steward schedules ...`: add, look at, pause, resume, trigger and delete
//! the cron schedules of any store, through the library's
//! [`Schedules`](steward::jobs::Schedules).

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use steward::jobs::{ScheduleError, Schedules};
use steward::store::{Misfire, Saved, ScheduleDef, Store};

use crate::job_view::format_time;
use crate::schedule_view::{AddView, ScheduleView, ShowView, TickView, table};
use crate::store_url::{self, DEFAULT_STORE, UsageError};

/// How many fire times `schedules add` prints.
const ADD_UPCOMING: usize = 3;

/// How many fired ticks `schedules show` prints: the latest.
const SHOW_FIRED: u32 = 10;

/// `steward schedules` subcommands.
#[derive(Subcommand)]
pub enum SchedulesCommand {
    /// Add a schedule, or change the one with this id (its pause is kept).
    #[command(
        after_help = "Example:\n  steward schedules add nightly-report '0 3 * * *' noop \
                            --tz Europe/Berlin --misfire all:10"
    )]
    Add(AddArgs),
    /// Every schedule: a table, or a JSON array with `--json`.
    #[command(after_help = "Example:\n  steward schedules list --json")]
    List(ListArgs),
    /// One schedule: its definition, its next fire times and the latest
    /// ticks it fired with their jobs.
    #[command(after_help = "Example:\n  steward schedules show nightly-report --next 10")]
    Show(ShowArgs),
    /// Pause a schedule: no tick fires until it is resumed.
    #[command(after_help = "Example:\n  steward schedules pause nightly-report")]
    Pause(IdArgs),
    /// Resume a paused schedule from now: ticks that fell during the pause
    /// do not run.
    #[command(after_help = "Example:\n  steward schedules resume nightly-report")]
    Resume(IdArgs),
    /// Delete a schedule; the jobs it enqueued stay.
    #[command(after_help = "Example:\n  steward schedules delete nightly-report")]
    Delete(IdArgs),
    /// Enqueue the schedule's job now, outside its ticks (paused or not);
    /// prints the job's id.
    #[command(after_help = "Example:\n  steward schedules trigger nightly-report")]
    Trigger(IdArgs),
}

/// Options every `schedules` subcommand has.
#[derive(Args)]
pub struct Common {
    /// Print JSON.
    #[arg(long, env = "STEWARD_JSON", value_parser = clap::builder::BoolishValueParser::new())]
    json: bool,
    /// The store: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB[?schema=NAME]`.
    #[arg(long, default_value = DEFAULT_STORE, env = "STEWARD_STORE")]
    store: String,
}

/// Options of `steward schedules add`.
#[derive(Args)]
pub struct AddArgs {
    /// The schedule's id (unique; up to 200 bytes).
    id: String,
    /// The cron expression: 5 fields (minute to weekday), 6 with seconds
    /// first, or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.
    cron: String,
    /// The job kind each tick enqueues: a built-in one (`noop`, `sleep`,
    /// `fail`, `checkpoint`, `stamp`, `panic`, `abort`), or any kind with
    /// `--any-kind`.
    kind: String,
    /// The IANA time zone the expression is read in.
    #[arg(long, default_value = "UTC")]
    tz: String,
    /// The jobs' JSON payload.
    #[arg(long, default_value = "null")]
    payload: String,
    /// Missed ticks (no scheduler running): `skip` them, run them `once`,
    /// or run `all` of them (the latest 100; `all:N` for the latest N).
    // A string, parsed in `add`: clap's own error would span several
    // lines, and bad input gets one line naming the problem.
    #[arg(long, default_value = "once")]
    misfire: String,
    /// The jobs' queue.
    #[arg(long, default_value = "default")]
    queue: String,
    /// The jobs' priority: lower runs first.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    priority: i16,
    /// The jobs' attempts before they are dead.
    #[arg(long, default_value_t = 25)]
    max_attempts: u32,
    /// Accept a kind that is not built in: for stores whose workers run
    /// your own kinds.
    #[arg(long)]
    any_kind: bool,
    #[command(flatten)]
    common: Common,
}

/// Options of `steward schedules list`.
#[derive(Args)]
pub struct ListArgs {
    #[command(flatten)]
    common: Common,
}

/// Options of `steward schedules show`.
#[derive(Args)]
pub struct ShowArgs {
    /// The schedule's id.
    id: String,
    /// How many next fire times to print.
    #[arg(long, default_value_t = 5)]
    next: usize,
    #[command(flatten)]
    common: Common,
}

/// Options of `pause`, `resume`, `delete` and `trigger`.
#[derive(Args)]
pub struct IdArgs {
    /// The schedule's id.
    id: String,
    #[command(flatten)]
    common: Common,
}

/// Runs one `schedules` subcommand.
pub async fn run(cmd: SchedulesCommand) -> anyhow::Result<ExitCode> {
    // Checked before the store is opened: a bad flag is reported as such
    // even when the store is also wrong.
    let misfire = match &cmd {
        SchedulesCommand::Add(args) => Some(parse_misfire(&args.misfire)?),
        _ => None,
    };
    let common = match &cmd {
        SchedulesCommand::Add(a) => &a.common,
        SchedulesCommand::List(a) => &a.common,
        SchedulesCommand::Show(a) => &a.common,
        SchedulesCommand::Pause(a)
        | SchedulesCommand::Resume(a)
        | SchedulesCommand::Delete(a)
        | SchedulesCommand::Trigger(a) => &a.common,
    };
    // Like `jobs`, never makes a database: a mistyped path is "no database
    // at PATH", not a new empty store holding one schedule no worker sees.
    let store = store_url::open_existing(&common.store).await?;
    let result = run_with(Arc::clone(&store), cmd, misfire).await;
    store.close().await;
    result
}

/// `--misfire`, or a usage error naming the flag (the library's message
/// names the value where it matters).
fn parse_misfire(text: &str) -> Result<Misfire, UsageError> {
    text.parse::<Misfire>()
        .map_err(|err| UsageError(format!("--misfire: {err}")))
}

/// Runs `cmd` on an open store; `misfire` is `add`'s, parsed already.
async fn run_with<S: Store>(
    store: Arc<S>,
    cmd: SchedulesCommand,
    misfire: Option<Misfire>,
) -> anyhow::Result<ExitCode> {
    let schedules = Schedules::new(store);
    match cmd {
        SchedulesCommand::Add(args) => add(schedules, args, misfire.unwrap_or_default()).await?,
        SchedulesCommand::List(args) => {
            let all = schedules.list().await?;
            if args.common.json {
                let views: Vec<ScheduleView> = all.into_iter().map(ScheduleView::from).collect();
                println!("{}", serde_json::to_string_pretty(&views)?);
            } else {
                print!("{}", table(&all));
            }
        }
        SchedulesCommand::Show(args) => {
            let record = schedules.get(&args.id).await?;
            let upcoming = schedules.upcoming(&args.id, args.next).await?;
            let fired = schedules.fired(&args.id, SHOW_FIRED).await?;
            let view = ShowView {
                schedule: ScheduleView::from(record),
                upcoming: upcoming.into_iter().map(format_time).collect(),
                fired: fired.into_iter().map(TickView::from).collect(),
            };
            if args.common.json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print!("{}", view.text());
            }
        }
        SchedulesCommand::Pause(args) => {
            schedules.pause(&args.id).await?;
            print_state(&schedules, &args, "paused").await?;
        }
        SchedulesCommand::Resume(args) => {
            schedules.resume(&args.id).await?;
            print_state(&schedules, &args, "resumed").await?;
        }
        SchedulesCommand::Delete(args) => {
            schedules.delete(&args.id).await?;
            if args.common.json {
                let deleted = serde_json::json!({ "id": args.id, "deleted": true });
                println!("{}", serde_json::to_string_pretty(&deleted)?);
            } else {
                println!("schedule `{}` deleted", args.id);
            }
        }
        SchedulesCommand::Trigger(args) => {
            let job = schedules.trigger(&args.id).await?;
            if args.common.json {
                let triggered = serde_json::json!({ "schedule": args.id, "job": job });
                println!("{}", serde_json::to_string_pretty(&triggered)?);
            } else {
                // The id alone, like `steward enqueue`: `$(steward schedules trigger X)`.
                println!("{job}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `schedules add`: saves the definition and prints what it did.
async fn add<S: Store>(
    schedules: Schedules<S>,
    args: AddArgs,
    misfire: Misfire,
) -> anyhow::Result<()> {
    let schedules = if args.any_kind {
        schedules
    } else {
        schedules.known_kinds(crate::kinds::KINDS.iter().copied())
    };
    let mut def = ScheduleDef::new(&args.id, &args.cron, &args.kind)
        .zone(&args.tz)
        .payload(&args.payload)
        .queue(&args.queue)
        .misfire(misfire);
    // No builder methods for these two in the library: the fields are public.
    def.priority = args.priority;
    def.max_attempts = args.max_attempts;
    let saved = match schedules.add(def).await {
        Ok(saved) => saved,
        Err(err @ ScheduleError::UnknownKind { .. }) => {
            // The library's message lists the built-in kinds; the way out
            // for a kind of the user's own workers is this CLI's flag.
            anyhow::bail!(UsageError(format!(
                "{err}; pass --any-kind to schedule a kind your own workers run"
            )));
        }
        Err(err) => return Err(err.into()),
    };
    let record = schedules.get(&args.id).await?;
    let upcoming = schedules.upcoming(&args.id, ADD_UPCOMING).await?;
    if args.common.json {
        let view = AddView {
            saved,
            schedule: ScheduleView::from(record),
            upcoming: upcoming.into_iter().map(format_time).collect(),
        };
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        let what = match saved {
            Saved::Created => "created",
            Saved::Updated => "updated",
            Saved::Unchanged => "unchanged",
        };
        println!("schedule `{}` {what}", args.id);
        if record.paused {
            println!("paused: no tick fires until `steward schedules resume`");
        } else {
            println!("next fire times:");
            for at in upcoming {
                println!("  {}", format_time(at));
            }
        }
    }
    Ok(())
}

/// After `pause`/`resume`: a line for people, the schedule for scripts.
async fn print_state<S: Store>(
    schedules: &Schedules<S>,
    args: &IdArgs,
    done: &str,
) -> anyhow::Result<()> {
    if args.common.json {
        let record = schedules.get(&args.id).await?;
        println!(
            "{}",
            serde_json::to_string_pretty(&ScheduleView::from(record))?
        );
    } else {
        println!("schedule `{}` {done}", args.id);
    }
    Ok(())
}
