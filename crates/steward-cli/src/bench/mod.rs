//! `steward bench ...`: benchmarks that print their figures. Speed targets
//! live here, never in tests.

mod children;
mod host;
mod in_process;
mod jobs;
mod processes;
mod remote_probes;
mod report;

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
    /// The second process of `bench jobs`' cross-process latency probe.
    #[command(hide = true)]
    ProbeEnqueuer(remote_probes::ProbeArgs),
}

/// Runs the chosen benchmark.
pub async fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Host(args) => host::run(args).await,
        BenchCommand::Jobs(args) => jobs::run(args).await,
        BenchCommand::ProbeEnqueuer(args) => remote_probes::run(args).await,
    }
}
