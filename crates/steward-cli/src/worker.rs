//! `steward worker`: a worker process for the built-in job kinds, under the
//! host, with health endpoints.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use steward::http::HttpServer;
use steward::jobs::{
    Maintenance, MaintenanceConfig, NodeConfig, QueueConfig, Scheduler, SchedulerConfig, Worker,
    WorkerConfig,
};
use steward::sqlite::Synchronous;
use steward::store::Store;
use steward::{FailurePolicy, Host};

use crate::kinds::{self, Journal};
use crate::store_url::{self, DEFAULT_STORE, UsageError};

/// Options of `steward worker`.
#[derive(Args)]
pub struct WorkerArgs {
    /// The store to work on: `sqlite://PATH` or
    /// `postgres://USER@HOST:PORT/DB[?schema=NAME]`.
    #[arg(long, default_value = DEFAULT_STORE, env = "STEWARD_STORE")]
    store: String,
    /// Jobs run at once, per queue.
    #[arg(long, default_value_t = 10, env = "STEWARD_CONCURRENCY")]
    concurrency: usize,
    /// Queues to serve, in priority order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "default",
        env = "STEWARD_QUEUES"
    )]
    queues: Vec<String>,
    /// Where to serve /healthz, /readyz and /status.
    #[arg(long, default_value = "127.0.0.1:0", env = "STEWARD_HTTP")]
    http: String,
    /// How long a claim holds a job without a heartbeat.
    #[arg(long, default_value = "30s", value_parser = crate::parse_duration, env = "STEWARD_LEASE")]
    lease: Duration,
    /// How often leases are renewed (default: a sixth of the lease).
    #[arg(long, value_parser = crate::parse_duration, env = "STEWARD_HEARTBEAT")]
    heartbeat: Option<Duration>,
    /// How long an idle worker waits for a wake-up before looking for
    /// work anyway (the bound on how late a job whose wake-up was lost
    /// starts).
    #[arg(long, default_value = "1s", value_parser = crate::parse_duration, env = "STEWARD_POLL_INTERVAL")]
    poll_interval: Duration,
    /// How often to look for expired leases.
    #[arg(long, default_value = "5s", value_parser = crate::parse_duration, env = "STEWARD_RESCUE_EVERY")]
    rescue_every: Duration,
    /// Rescues in a row after which a job is dead.
    #[arg(long, default_value_t = 3, env = "STEWARD_MAX_RESCUES")]
    max_rescues: u32,
    /// How long the maintenance leader's lease lasts (only the leader
    /// rescues and prunes). Nodes campaign every third of it, so a killed
    /// leader is replaced within 4/3 of it. Default: 10s, campaigns every 3s.
    #[arg(long, value_parser = crate::parse_duration, env = "STEWARD_LEADER_TTL")]
    leader_ttl: Option<Duration>,
    /// Do not run the scheduler here (by default every worker runs one;
    /// they elect a leader, which enqueues the schedules' ticks).
    #[arg(long, env = "STEWARD_NO_SCHEDULER", value_parser = clap::builder::BoolishValueParser::new())]
    no_scheduler: bool,
    /// How late a schedule's tick may run before it counts as missed and
    /// its misfire policy decides.
    #[arg(long, default_value = "60s", value_parser = crate::parse_duration, env = "STEWARD_MISFIRE_GRACE")]
    misfire_grace: Duration,
    /// How often this process refreshes its row in `steward nodes`.
    #[arg(long, default_value = "5s", value_parser = crate::parse_duration, env = "STEWARD_NODE_REFRESH")]
    node_refresh: Duration,
    /// How long this process stays in `steward nodes` without a refresh
    /// (after a crash); a clean stop removes it at once.
    #[arg(long, default_value = "30s", value_parser = crate::parse_duration, env = "STEWARD_NODE_TTL")]
    node_ttl: Duration,
    /// How long shutdown may take.
    #[arg(long, default_value = "30s", value_parser = crate::parse_duration, env = "STEWARD_SHUTDOWN_TIMEOUT")]
    shutdown_timeout: Duration,
    /// Append `ID ATTEMPT KIND` for every successful run to this file.
    #[arg(long, env = "STEWARD_JOURNAL")]
    journal: Option<PathBuf>,
    /// Also run the built-in `panic` and `abort` kinds, which crash an
    /// attempt or this whole process: for fault tests only, never in
    /// production (anyone who can enqueue could crash every worker).
    #[arg(long, env = "STEWARD_CRASH_KINDS", value_parser = clap::builder::BoolishValueParser::new())]
    crash_kinds: bool,
}

pub async fn run(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    if args.concurrency == 0 {
        anyhow::bail!(UsageError("--concurrency must be at least 1".to_string()));
    }
    let store = store_url::open(&args.store, true, Synchronous::Normal).await?;
    run_with(store, args).await
}

async fn run_with<S: Store>(store: Arc<S>, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let config = WorkerConfig {
        queues: args
            .queues
            .iter()
            .map(|q| QueueConfig {
                name: q.clone(),
                concurrency: args.concurrency,
            })
            .collect(),
        lease: args.lease,
        heartbeat_every: args.heartbeat.unwrap_or(args.lease / 6),
        poll_interval: args.poll_interval,
        node: NodeConfig {
            refresh_every: args.node_refresh,
            ttl: args.node_ttl,
        },
        ..WorkerConfig::default()
    };
    let mut worker = kinds::register(Worker::new(store.clone()));
    if args.crash_kinds {
        worker = kinds::register_crash_kinds(worker);
    }
    let worker = worker
        .config(config)
        .state(Journal::open(args.journal.clone())?);
    let mut maintenance = MaintenanceConfig {
        rescue_every: args.rescue_every,
        max_rescues: args.max_rescues,
        ..MaintenanceConfig::default()
    };
    if let Some(ttl) = args.leader_ttl {
        if ttl < Duration::from_millis(3) {
            anyhow::bail!(UsageError("--leader-ttl must be at least 3ms".to_string()));
        }
        maintenance.leader_ttl = ttl;
        maintenance.leader_every = ttl / 3;
    }
    let scheduler = SchedulerConfig {
        leader_ttl: maintenance.leader_ttl,
        leader_every: maintenance.leader_every,
        grace: args.misfire_grace,
        ..SchedulerConfig::default()
    };
    let maintenance = Maintenance::new(store.clone()).config(maintenance);

    let mut builder = Host::builder();
    builder.shutdown_timeout(args.shutdown_timeout);
    let http = HttpServer::bind(&args.http)?;
    let addr = http.local_addr();
    builder.service("http", http)?;
    builder
        .service("maintenance", maintenance)?
        .policy(FailurePolicy::default());
    if !args.no_scheduler {
        let scheduler = Scheduler::new(store.clone()).config(scheduler);
        builder
            .service("scheduler", scheduler)?
            .policy(FailurePolicy::default());
    }
    builder.service("worker", worker)?;
    let host = builder.build()?;
    tracing::info!(store = %args.store, http = %addr, pid = std::process::id(), "worker ready to start");
    let status = host.run().await;
    let counts = store.counts().await?;
    println!(
        "worker stopped: {} completed, {} available, {} running, {} retryable, {} dead in the store",
        counts.completed, counts.available, counts.running, counts.retryable, counts.dead
    );
    Ok(status.into())
}
