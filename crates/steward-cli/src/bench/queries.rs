//! `steward bench queries`: how fast an operator's reads are on a big
//! store. Seeds N realistic jobs through the store API (or reuses a seeded
//! store), then times pages of 50 (the queries of [`PAGES`]) and the counts
//! (by state, and by queue and kind), several runs each, and prints the
//! medians.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use steward::AnyStore;
use steward::sqlite::Synchronous;
use steward::store::{JobId, JobQuery, JobState, Store};

use super::seed::{self, KINDS, QUEUES};
use crate::store_url::{UsageError, is_postgres, open};

/// Options of `steward bench queries`.
///
/// Example: `steward bench queries --store postgres --jobs 1000000`, or
/// seed once and time again later with
/// `steward bench queries --store sqlite:///tmp/1m.db --reuse`.
#[derive(Args)]
pub struct QueriesArgs {
    /// `sqlite` (a fresh temporary database), a `sqlite://PATH` URL,
    /// `postgres` (`$DATABASE_URL`, default
    /// `postgres://postgres@127.0.0.1:5432/test`) or a `postgres://` URL.
    /// Without `?schema=` PostgreSQL runs in a fresh schema with a random
    /// name, dropped at the end (`steward_bench` with `--reuse`).
    // No STEWARD_STORE here: a deployment's store variable would seed a
    // million benchmark jobs into the production store.
    #[arg(long, default_value = "sqlite")]
    store: String,
    /// How many jobs to seed.
    #[arg(long, default_value_t = 1_000_000)]
    jobs: u64,
    /// Keep the store, and seed it only if it holds no jobs yet (a store
    /// seeded by an earlier run is timed as it is). Needs a store that
    /// outlives the run: a `sqlite://PATH` or a `postgres://` URL.
    #[arg(long)]
    reuse: bool,
    /// Timed runs of each query, after one untimed run.
    #[arg(long, default_value_t = 7)]
    runs: usize,
}

/// What the page queries filter on, found in the seeded store.
struct Probe {
    queue: &'static str,
    kind: &'static str,
    /// The last id of the first page of dead jobs: where the next page
    /// starts.
    dead_cursor: Option<JobId>,
}

/// A page of 50, the size a screen shows.
fn page() -> JobQuery {
    JobQuery::default().limit(50)
}

/// Builds one timed query from what the seeded store holds.
type PageQuery = fn(&Probe) -> JobQuery;

/// The timed page queries, by name. (New `JobQuery` filters get a line
/// here.)
const PAGES: &[(&str, PageQuery)] = &[
    ("page unfiltered", |_| page()),
    ("page state=dead", |_| page().states([JobState::Dead])),
    ("page state=available", |_| {
        page().states([JobState::Available])
    }),
    ("page states=scheduled,retryable", |_| {
        page().states([JobState::Scheduled, JobState::Retryable])
    }),
    ("page queue", |p| page().queue(p.queue)),
    ("page kind", |p| page().kind(p.kind)),
    ("page queue+kind+state", |p| {
        page().queue(p.queue).kind(p.kind).states([JobState::Dead])
    }),
    ("page next (cursor)", |p| {
        let q = page().states([JobState::Dead]);
        match p.dead_cursor {
            Some(id) => q.after(id),
            None => q,
        }
    }),
];

/// The timed counts.
#[derive(Clone, Copy)]
enum Counting {
    ByState,
    ByQueueAndKind,
}

const COUNTS: [(&str, Counting); 2] = [
    ("counts by state", Counting::ByState),
    ("counts by queue and kind", Counting::ByQueueAndKind),
];

/// The server `--store postgres` uses when `$DATABASE_URL` is not set.
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Where the bench runs, and what to remove at the end.
struct Target {
    url: String,
    /// A temporary directory holding the SQLite file, removed on drop.
    _dir: Option<tempfile::TempDir>,
    /// Drop the PostgreSQL schema at the end.
    drop_schema: bool,
}

fn target(args: &QueriesArgs) -> anyhow::Result<Target> {
    let store = match args.store.as_str() {
        "postgres" => {
            std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string())
        }
        other => other.to_string(),
    };
    if store == "sqlite" {
        if args.reuse {
            bail!(UsageError(
                "--reuse needs a store that outlives the run: a sqlite://PATH or a postgres:// URL"
                    .to_string()
            ));
        }
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        return Ok(Target {
            url,
            _dir: Some(dir),
            drop_schema: false,
        });
    }
    if store.starts_with("sqlite://") {
        return Ok(Target {
            url: store,
            _dir: None,
            drop_schema: false,
        });
    }
    if !is_postgres(&store) {
        bail!(UsageError(format!(
            "--store {store}: use `sqlite`, a sqlite:// URL, `postgres` or a postgres:// URL"
        )));
    }
    let parts = steward::postgres::parse_url(&store)
        .map_err(|e| UsageError(format!("--store {store}: {e}")))?;
    if parts.schema.is_some() {
        return Ok(Target {
            url: store,
            _dir: None,
            drop_schema: false,
        });
    }
    let schema = if args.reuse {
        "steward_bench".to_string()
    } else {
        format!("steward_bench_{:016x}", rand::random::<u64>())
    };
    let separator = if parts.connect.contains('?') {
        '&'
    } else {
        '?'
    };
    Ok(Target {
        url: format!("{}{separator}schema={schema}", parts.connect),
        _dir: None,
        drop_schema: !args.reuse,
    })
}

pub async fn run(args: QueriesArgs) -> anyhow::Result<ExitCode> {
    if args.jobs == 0 || args.runs == 0 {
        bail!(UsageError(
            "--jobs and --runs must be at least 1".to_string()
        ));
    }
    let target = target(&args)?;
    let store = open(&target.url, true, Synchronous::Normal).await?;
    let result = bench(&store, &args).await;
    if target.drop_schema {
        if let AnyStore::Postgres(pg) = &*store {
            pg.drop_schema()
                .await
                .context("dropping the benchmark's schema")?;
        }
    }
    store.close().await;
    result?;
    Ok(ExitCode::SUCCESS)
}

async fn bench(store: &Arc<AnyStore>, args: &QueriesArgs) -> anyhow::Result<()> {
    println!("store: {}", store.name());
    let before = store.counts().await?;
    if before.total() == 0 {
        let took = seed::seed(&**store, args.jobs).await?;
        let counts = store.counts().await?;
        println!(
            "seeded: {} jobs in {:.1} s ({})",
            counts.total(),
            took.as_secs_f64(),
            seed::describe(&counts)
        );
    } else if args.reuse {
        println!(
            "reused: {} jobs ({})",
            before.total(),
            seed::describe(&before)
        );
    } else {
        bail!(UsageError(format!(
            "--store {}: it holds {} jobs already; pass --reuse to time it as it is",
            args.store,
            before.total()
        )));
    }
    let first_dead = store.jobs(page().states([JobState::Dead])).await?;
    let probe = Probe {
        queue: QUEUES[2],
        kind: KINDS[7],
        dead_cursor: first_dead.last().map(|r| r.id),
    };

    let mut pages = Vec::new();
    let mut slowest = ("", Duration::ZERO);
    for (name, query) in PAGES {
        let query = query(&probe);
        let times = timed(args.runs, async || {
            store.jobs(query.clone()).await.map(|_| ())
        })
        .await?;
        let median = median(&times);
        println!("  {name}: {} ms", ms(median));
        if median > slowest.1 {
            slowest = (name, median);
        }
        pages.extend(times);
    }
    println!("  slowest page: {} at {} ms", slowest.0, ms(slowest.1));
    let mut counts = Vec::new();
    for (name, counting) in COUNTS {
        let times = timed(args.runs, async || match counting {
            Counting::ByState => store.counts().await.map(|_| ()),
            Counting::ByQueueAndKind => store.grouped_counts().await.map(|_| ()),
        })
        .await?;
        println!("  {name}: {} ms", ms(median(&times)));
        counts.extend(times);
    }
    println!("page of 50: {} ms", ms(median(&pages)));
    println!("counts: {} ms", ms(median(&counts)));
    println!("jobs: {}", store.counts().await?.total());
    Ok(())
}

/// Runs `op` once untimed (caches, prepared statements), then `runs` times
/// timed.
async fn timed<F>(runs: usize, mut op: F) -> anyhow::Result<Vec<Duration>>
where
    F: AsyncFnMut() -> Result<(), steward::store::StoreError>,
{
    op().await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        op().await?;
        times.push(started.elapsed());
    }
    Ok(times)
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}
