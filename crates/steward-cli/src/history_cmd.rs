//! `steward history`: what the workers did, minute by minute.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use serde::Serialize;
use steward::store::{HistoryCounts, HistoryQuery, HistoryRow, RunTimes, Store};

use crate::store_url::{self, DEFAULT_STORE};

/// Options of `steward history`.
#[derive(Args)]
#[command(after_help = "Example:\n  steward history --since 1h --queue mail\n  \
                        steward history --since 15m --by kind --json")]
pub struct HistoryArgs {
    /// How far back: 15m, 1h, 24h (at most 31 days).
    #[arg(long, default_value = "1h", value_parser = crate::parse_duration)]
    since: Duration,
    /// Only this queue.
    #[arg(long)]
    queue: Option<String>,
    /// Only this kind.
    #[arg(long)]
    kind: Option<String>,
    /// One line per minute, or per minute and queue, or per minute and kind.
    #[arg(long, value_enum, default_value_t = By::Minute)]
    by: By,
    /// Print JSON.
    #[arg(long, env = "STEWARD_JSON", value_parser = clap::builder::BoolishValueParser::new())]
    json: bool,
    /// The store: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB[?schema=NAME]`.
    #[arg(long, default_value = DEFAULT_STORE, env = "STEWARD_STORE")]
    store: String,
}

/// `--by`.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum By {
    Minute,
    Queue,
    Kind,
}

/// One line of the output: a minute, maybe of one queue or kind.
#[derive(Serialize)]
struct Line {
    minute: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    queue: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(flatten)]
    counts: HistoryCounts,
    /// Attempts with a run time (every end but a snooze).
    runs: u64,
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
    p99_ms: Option<f64>,
}

pub async fn run(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let store = store_url::open_existing(&args.store).await?;
    let result = show(store.clone(), args).await;
    store.close().await;
    result
}

async fn show<S: Store>(store: Arc<S>, args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let query = HistoryQuery {
        since: args.since,
        queue: args.queue.clone(),
        kind: args.kind.clone(),
    };
    query
        .validate()
        .map_err(|e| store_url::UsageError(e.to_string()))?;
    let rows = store.history(query).await?;
    let lines = lines(rows, args.by);
    if args.json {
        println!("{}", serde_json::to_string(&lines)?);
    } else {
        print!("{}", table(&lines));
    }
    Ok(ExitCode::SUCCESS)
}

/// Rows added up per minute (and queue or kind, with `--by`).
fn lines(rows: Vec<HistoryRow>, by: By) -> Vec<Line> {
    type Key = (DateTime<Utc>, Option<String>, Option<String>);
    let mut sums: BTreeMap<Key, (HistoryCounts, RunTimes)> = BTreeMap::new();
    for row in rows {
        let key = (
            row.minute,
            (by == By::Queue).then_some(row.queue),
            (by == By::Kind).then_some(row.kind),
        );
        let sum = sums.entry(key).or_default();
        sum.0.add(&row.counts);
        sum.1.merge(&row.run_times);
    }
    let ms = |d: Option<Duration>| d.map(|d| (d.as_secs_f64() * 1e4).round() / 10.0);
    sums.into_iter()
        .map(|((minute, queue, kind), (counts, times))| Line {
            minute: minute.format("%Y-%m-%dT%H:%MZ").to_string(),
            queue,
            kind,
            counts,
            runs: times.count(),
            p50_ms: ms(times.percentile(0.5)),
            p95_ms: ms(times.percentile(0.95)),
            p99_ms: ms(times.percentile(0.99)),
        })
        .collect()
}

fn table(lines: &[Line]) -> String {
    let mut out = String::new();
    let name = |l: &Line| l.queue.clone().or_else(|| l.kind.clone());
    let width = lines
        .iter()
        .filter_map(|l| name(l).map(|n| n.chars().count()))
        .max();
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v} ms"));
    out.push_str(&format!("{:<17}", "minute (UTC)"));
    if let Some(w) = width {
        out.push_str(&format!(" {:<w$}", "name", w = w.max(4)));
    }
    out.push_str(&format!(
        " {:>9} {:>7} {:>7} {:>9} {:>7} {:>10} {:>10} {:>10}\n",
        "succeeded", "failed", "retried", "cancelled", "rescued", "p50", "p95", "p99"
    ));
    for l in lines {
        out.push_str(&format!("{:<17}", l.minute));
        if let Some(w) = width {
            out.push_str(&format!(
                " {:<w$}",
                name(l).unwrap_or_default(),
                w = w.max(4)
            ));
        }
        let c = &l.counts;
        out.push_str(&format!(
            " {:>9} {:>7} {:>7} {:>9} {:>7} {:>10} {:>10} {:>10}\n",
            c.succeeded,
            c.failed,
            c.retried,
            c.cancelled,
            c.rescued,
            ms(l.p50_ms),
            ms(l.p95_ms),
            ms(l.p99_ms)
        ));
    }
    if lines.is_empty() {
        out.push_str("(no jobs ended in this span)\n");
    }
    out
}
