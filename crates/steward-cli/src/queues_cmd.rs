//! `steward queues ...`: list the queues of any store with their depth per
//! state, and pause or resume one for every worker on every node.
//!
//! Pausing a queue nobody has used (no job, no setting) is refused rather
//! than pre-paused: a mistyped name would otherwise pause a queue no one
//! serves and leave the real one running, silently. Pre-pausing a queue
//! before its first job is a possible `--create` flag, left out until
//! someone needs it.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde::Serialize;
use steward::store::{QueueChange, QueueInfo, StateCounts, Store, validate_queue_name};

use crate::job_view::format_time;
use crate::store_url::{self, DEFAULT_STORE, NotFound, UsageError};

/// `steward queues` subcommands.
#[derive(Subcommand)]
pub enum QueuesCommand {
    /// Every queue with jobs or a setting: its jobs per state and whether
    /// it is paused. A table, or a JSON array with `--json`.
    #[command(after_help = "Example:\n  steward queues list\n  steward queues list --json")]
    List(Common),
    /// Pause a queue for every worker: within one poll interval they stop
    /// claiming its jobs; running jobs finish, jobs claimed but not started
    /// are given back. Jobs can still be enqueued; they wait.
    #[command(after_help = "Example:\n  steward queues pause mail")]
    Pause(NameArgs),
    /// Resume a paused queue: workers claim its jobs again within one poll
    /// interval.
    #[command(after_help = "Example:\n  steward queues resume mail --json")]
    Resume(NameArgs),
}

/// Options every `queues` subcommand has.
#[derive(Args)]
pub struct Common {
    /// Print JSON.
    #[arg(long, env = "STEWARD_JSON", value_parser = clap::builder::BoolishValueParser::new())]
    json: bool,
    /// The store: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB[?schema=NAME]`.
    #[arg(long, default_value = DEFAULT_STORE, env = "STEWARD_STORE")]
    store: String,
}

/// Options of `steward queues pause` and `resume`.
#[derive(Args)]
pub struct NameArgs {
    /// The queue's name.
    name: String,
    #[command(flatten)]
    common: Common,
}

/// One queue as printed; `counts` has one key per state.
#[derive(Serialize)]
struct QueueView {
    name: String,
    paused: bool,
    paused_since: Option<String>,
    counts: StateCounts,
}

impl From<QueueInfo> for QueueView {
    fn from(q: QueueInfo) -> Self {
        QueueView {
            name: q.name,
            paused: q.paused_since.is_some(),
            paused_since: q.paused_since.map(format_time),
            counts: q.counts,
        }
    }
}

/// Runs one `queues` subcommand.
pub async fn run(cmd: QueuesCommand) -> anyhow::Result<ExitCode> {
    let common = match &cmd {
        QueuesCommand::List(common) => common,
        QueuesCommand::Pause(args) | QueuesCommand::Resume(args) => {
            // Before the store is opened: a bad name is reported as such
            // even when the store is also wrong.
            validate_queue_name(&args.name).map_err(|e| UsageError(e.to_string()))?;
            &args.common
        }
    };
    // Never makes a database: a mistyped path is "no database at PATH".
    let store = store_url::open_existing(&common.store).await?;
    let result = run_with(Arc::clone(&store), cmd).await;
    store.close().await;
    result
}

async fn run_with<S: Store>(store: Arc<S>, cmd: QueuesCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        QueuesCommand::List(common) => {
            let all: Vec<QueueView> = store
                .queues()
                .await?
                .into_iter()
                .map(QueueView::from)
                .collect();
            if common.json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                print!("{}", table(&all));
            }
        }
        QueuesCommand::Pause(args) => {
            let change = store.pause_queue(&args.name).await?;
            report(&*store, &args, true, change).await?;
        }
        QueuesCommand::Resume(args) => {
            let change = store.resume_queue(&args.name).await?;
            report(&*store, &args, false, change).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints what a pause or resume did; an unknown queue is an error naming
/// the known ones.
async fn report<S: Store>(
    store: &S,
    args: &NameArgs,
    paused: bool,
    change: QueueChange,
) -> anyhow::Result<()> {
    let name = &args.name;
    let text = match (change, paused) {
        (QueueChange::Unknown, _) => {
            let known: Vec<String> = store.queues().await?.into_iter().map(|q| q.name).collect();
            let known = if known.is_empty() {
                "there are no queues yet".to_string()
            } else {
                format!("known queues: {}", known.join(", "))
            };
            return Err(NotFound(format!(
                "no queue `{name}` (no job or setting names it); {known}"
            ))
            .into());
        }
        (QueueChange::Changed, true) => format!(
            "queue `{name}` paused: workers stop claiming its jobs within one poll interval; running jobs finish"
        ),
        (QueueChange::Changed, false) => {
            format!("queue `{name}` resumed: workers claim its jobs again within one poll interval")
        }
        (QueueChange::Unchanged, true) => {
            format!("queue `{name}` is already paused; nothing changed")
        }
        (QueueChange::Unchanged, false) => format!("queue `{name}` is not paused; nothing changed"),
    };
    if args.common.json {
        let view = serde_json::json!({
            "queue": name,
            "paused": paused,
            "changed": change == QueueChange::Changed,
        });
        println!("{}", serde_json::to_string_pretty(&view)?);
    } else {
        println!("{text}");
    }
    Ok(())
}

/// The queues as a table, one line each.
fn table(all: &[QueueView]) -> String {
    if all.is_empty() {
        return "no queues\n".to_string();
    }
    let header = [
        "queue",
        "paused",
        "scheduled",
        "available",
        "running",
        "retryable",
        "completed",
        "dead",
        "cancelled",
        "paused_since",
    ]
    .map(String::from);
    let rows: Vec<[String; 10]> = all
        .iter()
        .map(|q| {
            let c = &q.counts;
            [
                q.name.clone(),
                if q.paused { "yes" } else { "no" }.to_string(),
                c.scheduled.to_string(),
                c.available.to_string(),
                c.running.to_string(),
                c.retryable.to_string(),
                c.completed.to_string(),
                c.dead.to_string(),
                c.cancelled.to_string(),
                q.paused_since.clone().unwrap_or_else(|| "-".to_string()),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_header_and_a_line_per_queue() {
        let view = QueueView {
            name: "mail".into(),
            paused: true,
            paused_since: Some("2026-12-08T01:00:00.000Z".into()),
            counts: StateCounts {
                available: 12,
                ..StateCounts::default()
            },
        };
        let text = table(&[view]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].starts_with("queue  paused  scheduled  available"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("mail   yes     0          12"),
            "{text}"
        );
        assert_eq!(table(&[]), "no queues\n");
    }
}
