//! `steward bench ...`: benchmarks that print their figures. Speed targets
//! live here, never in tests.

mod children;
mod host;
mod in_process;
mod jobs;
mod processes;
mod queries;
mod remote_probes;
mod report;
mod seed;

use std::process::ExitCode;

use clap::Subcommand;

/// The benchmarks.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Start and stop many idle services, measure memory per idle service and
    /// ticker drift.
    Host(host::HostArgs),
    /// Enqueue, process and latency figures of a job store.
    Jobs(jobs::JobsArgs),
    /// Pages of 50 and the counts on a store of N jobs (default 1,000,000),
    /// seeded through the store API: prints `page of 50: X ms`, `counts: X ms`
    /// (medians) and `jobs: N`, with each query's median.
    Queries(queries::QueriesArgs),
    /// The second process of `bench jobs`' cross-process latency probe.
    #[command(hide = true)]
    ProbeEnqueuer(remote_probes::ProbeArgs),
}

/// Runs the chosen benchmark.
pub async fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Host(args) => host::run(args).await,
        BenchCommand::Jobs(args) => jobs::run(args).await,
        BenchCommand::Queries(args) => queries::run(args).await,
        BenchCommand::ProbeEnqueuer(args) => remote_probes::run(args).await,
    }
}
