//! `steward enqueue`: add jobs to any store.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use steward::sqlite::Synchronous;
use steward::store::{NewJob, Store};

use crate::store_url::{self, DEFAULT_STORE, UsageError};

/// Options of `steward enqueue`.
#[derive(Args)]
pub struct EnqueueArgs {
    /// The job kind: a built-in one (`noop`, `sleep`, `fail`, `checkpoint`, `stamp`; `panic`
    /// and `abort` run only by `steward worker --crash-kinds`), or any kind a worker knows.
    kind: String,
    /// The job's JSON payload.
    #[arg(long, default_value = "{}", env = "STEWARD_PAYLOAD")]
    payload: String,
    /// How many identical jobs to enqueue (in one transaction).
    #[arg(long, default_value_t = 1, env = "STEWARD_COUNT")]
    count: usize,
    /// The queue.
    #[arg(long, default_value = "default", env = "STEWARD_QUEUE")]
    queue: String,
    /// Run no earlier than this from now (e.g. 5s).
    #[arg(long, value_parser = crate::parse_duration, env = "STEWARD_DELAY")]
    delay: Option<Duration>,
    /// Lower runs first.
    #[arg(
        long,
        default_value_t = 0,
        allow_negative_numbers = true,
        env = "STEWARD_PRIORITY"
    )]
    priority: i16,
    /// Attempts before the job is dead (default: the kind's own, else 25).
    #[arg(long, env = "STEWARD_MAX_ATTEMPTS")]
    max_attempts: Option<u32>,
    /// The store: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB[?schema=NAME]`.
    #[arg(long, default_value = DEFAULT_STORE, env = "STEWARD_STORE")]
    store: String,
}

pub async fn run(args: EnqueueArgs) -> anyhow::Result<ExitCode> {
    if args.count == 0 {
        anyhow::bail!(UsageError("--count must be at least 1".to_string()));
    }
    if let Err(err) = serde_json::from_str::<serde_json::Value>(&args.payload) {
        anyhow::bail!(UsageError(format!("--payload is not valid JSON: {err}")));
    }
    let store = store_url::open(&args.store, true, Synchronous::Normal).await?;
    let result = enqueue_with(store.clone(), &args).await;
    store.close().await;
    result
}

async fn enqueue_with<S: Store>(store: Arc<S>, args: &EnqueueArgs) -> anyhow::Result<ExitCode> {
    let mut job =
        NewJob::new(&args.kind, &args.payload)
            .queue(&args.queue)
            .priority(args.priority)
            .max_attempts(args.max_attempts.unwrap_or_else(|| {
                crate::kinds::defaults(&args.kind).map_or(25, |o| o.max_attempts)
            }));
    if let Some(delay) = args.delay {
        // Counted from the store's now, not this machine's.
        job = job.delay(delay);
    }
    let ids = store.enqueue(vec![job; args.count]).await?;
    if let [one] = ids.as_slice() {
        println!("{}", one.id);
    } else if let (Some(first), Some(last)) = (ids.first(), ids.last()) {
        println!(
            "enqueued {} jobs (ids {}..={})",
            ids.len(),
            first.id,
            last.id
        );
    }
    Ok(ExitCode::SUCCESS)
}
