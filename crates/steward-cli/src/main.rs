//! The `steward` command: the demo, the benchmarks, a worker and the store
//! operations (enqueue, jobs, queues, schedules, migrate) on SQLite or PostgreSQL.
//!
//! Thin by design: argument parsing, wiring and printing. Everything it runs
//! is a library call.

mod alloc;
mod bench;
mod demo;
mod enqueue;
mod history_cmd;
mod job_filter;
mod job_view;
mod jobs_act;
mod jobs_cmd;
mod kinds;
mod nodes_cmd;
mod queues_cmd;
mod schedule_view;
mod schedules_cmd;
mod store_url;
mod time_arg;
mod worker;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use steward::store::Store as _;

/// Exit code for bad command-line usage (sysexits' EX_USAGE).
const EXIT_USAGE: u8 = 64;
/// Exit code for a configuration the host refused (sysexits' EX_CONFIG).
const EXIT_CONFIG: u8 = 78;
/// Exit code when the store cannot be reached or written (EX_UNAVAILABLE).
const EXIT_UNAVAILABLE: u8 = 69;
/// Exit code for any other store error, e.g. a schema too new (EX_DATAERR).
const EXIT_STORE: u8 = 65;
/// Exit code when the job (or other thing) asked for does not exist,
/// including the database a `jobs` command was pointed at.
const EXIT_NOT_FOUND: u8 = 3;
/// Exit code of a bulk action stopped by Ctrl-C between chunks (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

#[derive(Parser)]
#[command(name = "steward", version, about = "Background work for Rust services")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as text, or as one JSON object per line for log shippers.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "STEWARD_LOG_FORMAT"
    )]
    log_format: LogFormat,
}

/// `--log-format`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the demo host: a periodic service, a producer/consumer pipeline and
    /// a flaky service that faults and restarts, with health endpoints.
    Demo(demo::DemoArgs),
    /// Run a benchmark and print its figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Run a worker process for the built-in job kinds (`noop`, `sleep`,
    /// `fail`, `checkpoint`, `stamp`; `panic` and `abort` with `--crash-kinds`).
    Worker(worker::WorkerArgs),
    /// Enqueue jobs.
    Enqueue(enqueue::EnqueueArgs),
    /// Look at jobs.
    #[command(subcommand)]
    Jobs(jobs_cmd::JobsCommand),
    /// Queues: list them with their depth per state; pause and resume one
    /// for every worker.
    #[command(subcommand)]
    Queues(queues_cmd::QueuesCommand),
    /// Manage cron schedules: add, list, show, pause, resume, delete, trigger.
    #[command(subcommand)]
    Schedules(schedules_cmd::SchedulesCommand),
    /// What the workers did, minute by minute: jobs succeeded, failed,
    /// retried, cancelled and rescued, and run-time percentiles.
    History(history_cmd::HistoryArgs),
    /// The live processes that run workers, with their queues and their
    /// host's services (`nodes show ID` for one).
    Nodes(nodes_cmd::NodesArgs),
    /// Create or upgrade a store's schema.
    Migrate(MigrateArgs),
}

/// Options of `steward migrate`.
#[derive(clap::Args)]
struct MigrateArgs {
    /// The store: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB[?schema=NAME]`.
    #[arg(long, default_value = store_url::DEFAULT_STORE, env = "STEWARD_STORE")]
    store: String,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let usage_error = err.use_stderr();
            let _ = err.print();
            return if usage_error {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let format = cli.log_format;
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => {
                init_logging("info", format);
                demo::run(args).await
            }
            Command::Bench(cmd) => {
                init_logging("warn", format);
                bench::run(cmd).await
            }
            Command::Worker(args) => {
                init_logging("info", format);
                worker::run(args).await
            }
            Command::Enqueue(args) => {
                init_logging("warn", format);
                enqueue::run(args).await
            }
            Command::Jobs(cmd) => {
                init_logging("warn", format);
                jobs_cmd::run(cmd).await
            }
            Command::History(args) => {
                init_logging("warn", format);
                history_cmd::run(args).await
            }
            Command::Queues(cmd) => {
                init_logging("warn", format);
                queues_cmd::run(cmd).await
            }
            Command::Schedules(cmd) => {
                init_logging("warn", format);
                schedules_cmd::run(cmd).await
            }
            Command::Nodes(args) => {
                init_logging("warn", format);
                nodes_cmd::run(args).await
            }
            Command::Migrate(args) => {
                init_logging("warn", format);
                let store =
                    store_url::open(&args.store, true, steward::sqlite::Synchronous::Normal)
                        .await?;
                store.close().await;
                println!("{}: schema is up to date", args.store);
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    // Do not wait on blocking threads a service may have left behind.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::from(exit_code(&err))
        }
    }
}

/// The error and its causes on one line, `: ` between them, like `{:#}`,
/// but a cause whose text its error already printed is left out: an error
/// that shows its source in its own message and also returns it as
/// `source()` would have the operator read the same reason twice.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

/// One exit code per class of failure, so scripts can tell them apart.
fn exit_code(err: &anyhow::Error) -> u8 {
    use steward::jobs::ScheduleError;
    use steward::store::StoreError;
    if err.downcast_ref::<store_url::UsageError>().is_some() {
        EXIT_USAGE
    } else if err.downcast_ref::<store_url::NotFound>().is_some()
        || err.downcast_ref::<store_url::NoDatabase>().is_some()
    {
        EXIT_NOT_FOUND
    } else if err.downcast_ref::<steward::ConfigError>().is_some() {
        EXIT_CONFIG
    } else if let Some(schedule) = err.downcast_ref::<ScheduleError>() {
        match schedule {
            ScheduleError::Cron { .. } | ScheduleError::UnknownKind { .. } => EXIT_USAGE,
            ScheduleError::NotFound { .. } => EXIT_NOT_FOUND,
            // A definition the store refused before writing it (a misfire
            // limit of 0, a payload that is not JSON, a bad id) is the
            // operator's input, not the store's fault.
            ScheduleError::Store(StoreError::Invalid { .. }) => EXIT_USAGE,
            ScheduleError::Store(store) => store_exit_code(store),
            // `ScheduleError` is non-exhaustive: a new case is some failure
            // until it is given its own code here.
            _ => 1,
        }
    } else if let Some(store) = err.downcast_ref::<StoreError>() {
        store_exit_code(store)
    } else {
        1
    }
}

/// The exit code of a store error: a schema not there is "not found", a
/// store that cannot be reached or written "unavailable", the rest a store
/// error.
fn store_exit_code(err: &steward::store::StoreError) -> u8 {
    use steward::store::StoreError;
    match err {
        StoreError::NotMigrated { .. } => EXIT_NOT_FOUND,
        StoreError::Busy { .. } | StoreError::Unavailable { .. } | StoreError::ReadOnly { .. } => {
            EXIT_UNAVAILABLE
        }
        _ => EXIT_STORE,
    }
}

/// Readable terminal logs, or JSON lines; `RUST_LOG` overrides the default level.
fn init_logging(default: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_timer(MillisUtc);
    match format {
        LogFormat::Text => {
            let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            builder.with_ansi(colour).compact().init();
        }
        // Fields at the top level, next to `message`: what log shippers
        // index without a nested-object mapping.
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    // Panics: `Host::run` installs Steward's hook, one ERROR line per panic
    // inside the span it happened in (see HostBuilder::panic_hook).
}

/// Log timestamps in the format `jobs show` prints times in, so a log line
/// and a job's times can be compared by eye (the default has microseconds).
struct MillisUtc;

impl tracing_subscriber::fmt::time::FormatTime for MillisUtc {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        w.write_str(&job_view::format_time(chrono::Utc::now()))
    }
}

/// Parses `250ms`, `5s`, `2m` or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 500ms, 5s or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    /// A cause already in its error's message is not printed again (a bad
    /// cron expression was named twice).
    #[test]
    fn one_line_prints_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("bad field")]
        struct Inner;
        #[derive(Debug, thiserror::Error)]
        #[error("schedule `x`: {0}")]
        struct Repeats(#[source] Inner);
        #[derive(Debug, thiserror::Error)]
        #[error("schedule `x`")]
        struct Chains(#[source] Inner);
        assert_eq!(
            super::one_line(&anyhow::Error::new(Repeats(Inner))),
            "schedule `x`: bad field"
        );
        let chained = anyhow::Error::new(Chains(Inner)).context("opening store");
        assert_eq!(
            super::one_line(&chained),
            "opening store: schedule `x`: bad field"
        );
    }

    #[test]
    fn durations_parse_with_units_and_reject_garbage() {
        assert_eq!(
            parse_duration("250ms").expect("a valid duration"),
            Duration::from_millis(250)
        );
        assert_eq!(
            parse_duration("5s").expect("a valid duration"),
            Duration::from_secs(5)
        );
        assert_eq!(
            parse_duration("2m").expect("a valid duration"),
            Duration::from_secs(120)
        );
        assert_eq!(
            parse_duration("3").expect("a valid duration"),
            Duration::from_secs(3)
        );
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    /// The help of `worker` and `enqueue` names every built-in kind, and
    /// the crash kinds only with their flag (a new user found `stamp`
    /// missing and `panic` listed as if always there).
    #[test]
    fn help_names_every_built_in_kind() {
        use crate::kinds::{Abort, Checkpoint, Fail, Noop, Panic, Sleep, Stamp};
        use clap::CommandFactory;
        use steward::jobs::Job;
        let mut cli = super::Cli::command();
        for command in ["worker", "enqueue"] {
            let help = cli
                .find_subcommand_mut(command)
                .expect("the subcommand")
                .render_long_help()
                .to_string();
            for kind in [
                Noop::KIND,
                Sleep::KIND,
                Fail::KIND,
                Checkpoint::KIND,
                Stamp::KIND,
            ] {
                assert!(
                    help.contains(&format!("`{kind}`")),
                    "{command}: {kind}: {help}"
                );
            }
            for kind in [Panic::KIND, Abort::KIND] {
                assert!(
                    help.contains(&format!("`{kind}`")) && help.contains("--crash-kinds"),
                    "{command}: {kind}: {help}"
                );
            }
        }
    }
}
