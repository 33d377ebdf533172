//! Steward, graphile_worker and apalis on the same PostgreSQL, the same
//! workload, in one run (issue 5, item 11). Not part of the main workspace,
//! so its tests and CI never build the peers.
//!
//! ```text
//! cargo run --release -- [--jobs 100000] [--concurrency 16] [--probes 200]
//!     [--rounds 10] [--phase-timeout 300] [--only steward,graphile_worker,apalis]
//! ```
//!
//! Each system runs in a child process of its own (its own peak memory, and
//! a stalled one can be killed) against a database of its own, created
//! here and dropped afterwards whatever happened. `$DATABASE_URL` names the
//! server (default `postgres://postgres@127.0.0.1:5432/test`).

mod apalis_sys;
mod graphile_sys;
mod harness;
mod report;
mod steward_sys;

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use harness::{Outcome, Workload};
use sqlx::{Connection as _, Executor as _, PgConnection};
use tokio::io::{AsyncBufReadExt as _, BufReader};

const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const SYSTEMS: [&str; 3] = ["steward", "graphile_worker", "apalis"];

fn main() -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("system") {
        // A child: one system, figures as one JSON line on stdout.
        let [_, name, url, workload] = args.as_slice() else {
            bail!("usage: system NAME URL WORKLOAD_JSON");
        };
        let workload: Workload = serde_json::from_str(workload)?;
        let outcome = runtime.block_on(run_system(name, url, &workload));
        println!("RESULT {}", serde_json::to_string(&outcome)?);
        return Ok(());
    }
    runtime.block_on(orchestrate(&args))
}

async fn run_system(name: &str, url: &str, w: &Workload) -> Outcome {
    let mut outcome = Outcome::default();
    let result = match name {
        "steward" => harness::run::<steward_sys::Steward>(url, w, &mut outcome).await,
        "graphile_worker" => harness::run::<graphile_sys::Graphile>(url, w, &mut outcome).await,
        "apalis" => harness::run::<apalis_sys::Apalis>(url, w, &mut outcome).await,
        other => Err(anyhow!("unknown system {other}")),
    };
    if let Err(e) = result {
        outcome.failure = Some(format!("{e:#}"));
    }
    outcome.peak_mib = harness::peak_mib();
    outcome
}

async fn orchestrate(args: &[String]) -> Result<()> {
    let mut w = Workload {
        jobs: 100_000,
        concurrency: 16,
        probes: 200,
        rounds: 10,
        phase_timeout: Duration::from_secs(300),
    };
    let mut only: Vec<String> = SYSTEMS.iter().map(|s| s.to_string()).collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--jobs" => w.jobs = value.parse()?,
            "--concurrency" => w.concurrency = value.parse()?,
            "--probes" => w.probes = value.parse()?,
            "--rounds" => w.rounds = value.parse()?,
            "--phase-timeout" => w.phase_timeout = Duration::from_secs(value.parse()?),
            "--only" => only = value.split(',').map(str::to_string).collect(),
            other => bail!("unknown option {other}"),
        }
    }
    let server = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.into());
    println!(
        "workload: {} no-op jobs in bulk, 1 worker at concurrency {}, then {} rounds of {} \
         single enqueues 10 ms apart; server {server}",
        w.jobs, w.concurrency, w.rounds, w.probes
    );
    let mut results = Vec::new();
    for name in &only {
        eprintln!("{name}:");
        let outcome = match in_own_database(&server, name, &w).await {
            Ok(outcome) => outcome,
            Err(e) => Outcome {
                failure: Some(format!("{e:#}")),
                ..Outcome::default()
            },
        };
        if let Some(failure) = &outcome.failure {
            eprintln!("  {name} failed: {failure}");
        }
        results.push((name.clone(), outcome));
    }
    report::print(&results);
    Ok(())
}

/// Runs one system in a child process on a fresh database, dropped after.
async fn in_own_database(server: &str, name: &str, w: &Workload) -> Result<Outcome> {
    let database = format!("peer_bench_{name}_{:08x}", rand::random::<u32>());
    let mut admin = PgConnection::connect(server)
        .await
        .with_context(|| format!("connecting to {server}"))?;
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE \"{database}\""
        )))
        .await?;
    let outcome = in_child(&database_url(server, &database)?, name, w).await;
    let dropped = admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE \"{database}\" WITH (FORCE)"
        )))
        .await;
    let _ = admin.close().await;
    let outcome = outcome?;
    dropped.with_context(|| format!("dropping database {database}"))?;
    Ok(outcome)
}

async fn in_child(url: &str, name: &str, w: &Workload) -> Result<Outcome> {
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["system", name, url, &serde_json::to_string(w)?])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().context("child stdout")?;
    let limit = w.phase_timeout * (w.rounds as u32 + 5);
    let read = async {
        let mut lines = BufReader::new(stdout).lines();
        let mut result = None;
        while let Some(line) = lines.next_line().await? {
            match line.strip_prefix("RESULT ") {
                Some(json) => result = Some(serde_json::from_str::<Outcome>(json)?),
                None => eprintln!("  {line}"),
            }
        }
        let status = child.wait().await?;
        result.ok_or_else(|| anyhow!("{name} exited ({status}) without figures"))
    };
    match tokio::time::timeout(limit, read).await {
        Ok(outcome) => outcome,
        // Dropping the child kills it (`kill_on_drop`).
        Err(_) => bail!("stalled: no result within {limit:?}, killed"),
    }
}

/// `server` with its database name replaced by `database`.
fn database_url(server: &str, database: &str) -> Result<String> {
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (server, String::new()),
    };
    let (host, _) = base
        .rsplit_once('/')
        .filter(|(h, _)| h.contains("://") && !h.ends_with('/'))
        .ok_or_else(|| anyhow!("{server}: expected postgres://USER@HOST:PORT/DB"))?;
    Ok(format!("{host}/{database}{query}"))
}
